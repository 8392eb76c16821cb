"""The segment cache: rendered segments (and audio blocks) stored on a BlobStore under their
content keys, so each distinct segment is rendered once and reused by every recipient."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from contextlib import AbstractContextManager, suppress
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
    """Segments under `segments/<key>.mp4`, audio blocks (ADTS) under `audio/<key>.aac`.

    With a `disk` budget the files handed out are pinned for the current lease
    (render/disk.py), each under a name of the render's own, and the cache is kept under its
    cap. `tier` is a local folder in front of
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
        return f"audio/{key[:2]}/{key}.aac"

    def lease(self) -> AbstractContextManager[object]:
        """Hold every file this cache hands out until the block ends (a render's whole run)."""
        return disk.lease()

    def get(self, blob_key: str, scratch: Path) -> Path | None:
        """A local file of the cached object, or None on a miss. With a budget, the file is
        the render's own name for it in `scratch` (see `_private`)."""
        if self.tier is not None:
            held = self._private(self.tier / blob_key, scratch)
            if held is not None:
                return held
        try:
            found = self.store.fetch(blob_key, scratch)
        except KeyError:
            return None
        if self.tier is not None:
            self._keep(blob_key, found)  # for the next recipient of this warm function
            return found  # the download, in the render's scratch
        if self.disk is None:
            return found
        return self._private(found, scratch)  # None: evicted meanwhile, a miss

    def put(self, blob_key: str, source: Path, scratch: Path) -> Path:
        """Store a freshly rendered file; the render goes on with its own file, `source`."""
        self.store.put_file(blob_key, source)
        if self.tier is not None:
            self._keep(blob_key, source)
        elif self.disk is not None:
            self.disk.trim()
        return source if self.disk is not None else self.store.fetch(blob_key, scratch)

    def _private(self, cached: Path, scratch: Path) -> Path | None:
        """The cached file pinned for the lease (never evicted while in use) and linked into
        the render's scratch: the render reads that name, so a concurrent writer replacing the
        cached name (another worker storing the same segment) cannot take it away. A copy
        where a hard link cannot be made (another file system). None: the file is gone."""
        if self.disk is not None and not self.disk.pin(cached):
            return None
        scratch.mkdir(parents=True, exist_ok=True)
        private = scratch / f"cached-{uuid.uuid4().hex[:12]}-{cached.name}"
        try:
            os.link(cached, private)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            try:
                shutil.copyfile(cached, private)
            except FileNotFoundError:
                return None
        return private

    def _keep(self, blob_key: str, source: Path) -> None:
        """A copy of `source` in the tier, unless one is there already (content-addressed: the
        same bytes), then the tier trimmed to its budget."""
        assert self.tier is not None
        local = self.tier / blob_key
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".part", dir=local.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            shutil.copyfile(source, tmp)
            with suppress(FileExistsError):
                os.link(tmp, local)  # created if absent: a name in use is never replaced
        finally:
            tmp.unlink(missing_ok=True)
        if self.disk is not None:
            self.disk.trim()
