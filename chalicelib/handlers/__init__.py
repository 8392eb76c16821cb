"""Reel's handlers package (filled in by later issues)."""
