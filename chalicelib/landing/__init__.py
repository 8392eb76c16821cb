"""Delivery: personal landing pages, their tokens, the player and the email snippet."""
