"""The segment cache: rendered segments (and audio tracks) stored on a BlobStore under their
content keys, so each distinct segment is rendered once and reused by every recipient."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from chalicelib.ports import BlobStore


@lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (memoized while the file is unchanged)."""
    st = Path(path).stat()
    return _digest(path, st.st_size, st.st_mtime_ns)


class SegmentCache:
    """Segments under `segments/<key>.mp4`, audio tracks under `audio/<key>.m4a`."""

    def __init__(self, store: BlobStore):
        self.store = store

    @staticmethod
    def segment_key(key: str) -> str:
        return f"segments/{key[:2]}/{key}.mp4"

    @staticmethod
    def audio_key(key: str) -> str:
        return f"audio/{key[:2]}/{key}.m4a"

    def get(self, blob_key: str, scratch: Path) -> Path | None:
        """A local file of the cached object, or None on a miss."""
        try:
            return self.store.fetch(blob_key, scratch)
        except KeyError:
            return None

    def put(self, blob_key: str, source: Path, scratch: Path) -> Path:
        """Store a freshly rendered file and return a local file of the stored object."""
        self.store.put_file(blob_key, source)
        return self.store.fetch(blob_key, scratch)
