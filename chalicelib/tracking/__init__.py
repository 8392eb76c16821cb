"""Reel's tracking package (filled in by later issues)."""
