"""Tracking: the player's events (model, ingest) and the analytics computed from them."""
