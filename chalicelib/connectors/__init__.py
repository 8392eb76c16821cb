"""Reel's connectors package (filled in by later issues)."""
