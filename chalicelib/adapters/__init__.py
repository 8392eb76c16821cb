"""Adapters: the backends of the ports (local filesystem, SQLite … and later AWS)."""
