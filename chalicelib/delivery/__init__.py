"""Reel's delivery package (filled in by later issues)."""
