"""Ports: the small interfaces the domain talks to; adapters/ holds their backends."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class BlobStore(Protocol):
    """Immutable-ish objects under string keys ('segments/ab12….mp4').

    Writes are atomic: a reader never sees a half-written object under its final key, and a
    crash mid-write leaves nothing under it. Keys use '/' separators and never start with '/'.
    """

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Store the file at `source` under `key` (replacing any previous object)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; KeyError if absent."""
        ...

    def fetch(self, key: str, scratch: Path) -> Path:
        """A local file holding the object: its own path for a local store, else a download
        into the `scratch` directory. KeyError if absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def url(self, key: str) -> str:
        """Where a client can read the object (a file:// URL locally, a signed URL on AWS)."""
        ...
