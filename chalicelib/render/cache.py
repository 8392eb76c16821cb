"""The segment cache: rendered segments (and audio tracks) stored on a BlobStore under their
content keys, so each distinct segment is rendered once and reused by every recipient."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path

from chalicelib.ports import BlobStore
from chalicelib.render import disk
from chalicelib.render.disk import DiskBudget


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
    """Segments under `segments/<key>.mp4`, audio tracks under `audio/<key>.m4a`.

    With a `disk` budget the files handed out are pinned for the current lease
    (render/disk.py) and the cache is kept under its cap. `tier` is a local folder in front of
    a remote store (the render Lambda's /tmp before S3): a hit there needs no download, and a
    warm function reuses it from one invocation to the next. Without a tier the store itself
    is the local folder the budget covers. A segment evicted (or expired on S3) is a miss: it
    is simply rendered again.
    """

    def __init__(
        self, store: BlobStore, *, disk: DiskBudget | None = None, tier: Path | None = None
    ):
        self.store = store
        self.disk = disk
        self.tier = tier.resolve() if tier is not None else None

    @staticmethod
    def segment_key(key: str) -> str:
        return f"segments/{key[:2]}/{key}.mp4"

    @staticmethod
    def audio_key(key: str) -> str:
        return f"audio/{key[:2]}/{key}.m4a"

    def lease(self) -> AbstractContextManager[object]:
        """Hold every file this cache hands out until the block ends (a render's whole run)."""
        return disk.lease()

    def get(self, blob_key: str, scratch: Path) -> Path | None:
        """A local file of the cached object, or None on a miss."""
        if self.tier is not None:
            local = self.tier / blob_key
            if self._held(local):
                return local
        try:
            found = self.store.fetch(blob_key, scratch)
        except KeyError:
            return None
        if self.tier is not None:
            return self._keep(blob_key, found, move=True) or found
        if self.disk is not None and not self.disk.pin(found):
            return None  # evicted between the lookup and the pin: a miss
        return found

    def put(self, blob_key: str, source: Path, scratch: Path) -> Path:
        """Store a freshly rendered file and return a local file of the stored object."""
        self.store.put_file(blob_key, source)
        if self.tier is not None:
            return self._keep(blob_key, source, move=False) or source
        found = self.store.fetch(blob_key, scratch)
        if self.disk is not None:
            if not self.disk.pin(found):
                return source  # evicted at once (every other file pinned): the render's copy
            self.disk.trim()
        return found

    def _held(self, local: Path) -> bool:
        if self.disk is None:
            return local.is_file()
        return self.disk.pin(local)

    def _keep(self, blob_key: str, source: Path, *, move: bool) -> Path | None:
        """A copy of `source` in the tier, pinned (None: it could not be kept there)."""
        assert self.tier is not None
        local = self.tier / blob_key
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".part", dir=local.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            shutil.copyfile(source, tmp)
            # Pinned under its temporary name: the same inode is pinned once renamed.
            if self.disk is not None and not self.disk.pin(tmp):
                return None
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        if move:
            source.unlink(missing_ok=True)  # the download: the tier's copy replaces it
        if self.disk is not None:
            self.disk.trim()
        return local
