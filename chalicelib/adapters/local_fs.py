"""BlobStore on a local directory: the embedded default. Atomic writes via temp + rename.

A write goes to a temporary file beside its target (`.{name}.{pid}.{random}.part`), is flushed
and fsynced, then renamed over the target (and the folder fsynced): a reader sees the old
object or the new one, never a part. A write that fails for a reason that may pass (a full
disk, an I/O error, too many open files) is retried a few times with backoff, then reported as
a StorageError naming the key and the reason; its temporary file is removed either way. A
process killed mid-write cannot remove its own: `clean_partials` removes the temporary files of
writers that are no longer alive (a data directory belongs to one machine).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import quote

from chalicelib.adapters.retry import GaveUp, Retry
from chalicelib.errors import StorageError
from chalicelib.landing.tokens import media_signature

# Failures that may pass if we wait a little: space freed, a device back, descriptors closed.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EAGAIN,
        errno.EBUSY,
        errno.EMFILE,
        errno.ENFILE,
        errno.ETIMEDOUT,
        errno.ESTALE,
    }
)
_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "I/O error",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files",
}
# `.{name}.{pid}.{token}.part`: the writer's pid tells a live write from a dead one's leftover.
_PARTIAL = re.compile(r"^\..+\.(\d+)\.[^./]+\.part$")


def _transient(exc: Exception) -> bool:
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def os_error_reason(exc: Exception) -> str:
    """An OSError as a short reason: 'disk full (ENOSPC)'."""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        reason = _REASONS.get(exc.errno) or (exc.strerror or name).lower()
        return f"{reason} ({name})"
    return f"{type(exc).__name__}: {exc}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has ended but is not reaped yet (Linux's /proc says Z): it writes
    nothing more. A render worker killed mid-write stays one until its pool joins it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk too.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system without it
            raise
    finally:
        os.close(fd)


class LocalBlobStore:
    """Objects are files under `root`; the key is the relative path. `retry` governs writes."""

    def __init__(
        self,
        root: Path | str,
        *,
        base_url: str | None = None,
        retry: Retry | None = None,
        secret: str | None = None,
        url_expiry: int = 3600,
        clock: Callable[[], float] = time.time,
    ):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url  # where `reel serve` serves the files; else file:// URLs
        self.retry = retry or Retry()
        # Served URLs are signed like CloudFront's: `secret` (the tracking secret) signs them,
        # valid `url_expiry` s from `clock()`; GET /files checks them.
        if base_url and not secret:
            raise ValueError("served media URLs are signed: a base_url needs the secret")
        self.secret = secret
        self.url_expiry = url_expiry
        self.clock = clock

    def path(self, key: str) -> Path:
        """The file of `key`; refuses keys that would leave the store."""
        pure = PurePosixPath(key)
        if not key or pure.is_absolute() or ".." in pure.parts or "\\" in key or "\0" in key:
            raise ValueError(f"invalid blob key: {key!r}")
        if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in pure.parts):
            raise ValueError(f"invalid blob key: {key!r} (a part over 255 bytes)")
        return self.root / pure

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self.path(key)
        try:
            self.retry.run(
                lambda: self._write_once(target, fill), errors=(OSError,), transient=_transient
            )
        except GaveUp as failed:
            tries = f"{failed.attempts} attempts" if failed.attempts > 1 else "1 attempt"
            raise StorageError(
                f"{os_error_reason(failed.error)} writing {key}: gave up after {tries}"
            ) from failed.error

    def _write_once(self, target: Path, fill: Callable[[BinaryIO], object]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # (the name cut short: a 255-byte key part plus the suffixes would be too long a name)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name[:40]}.{os.getpid()}.", suffix=".part", dir=target.parent
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def put_file(self, key: str, source: Path) -> None:
        def copy(fh: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, fh, 1024 * 1024)

        self._write(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda fh: fh.write(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None  # a folder (`uploads`) or under a file: no blob

    def fetch(self, key: str, scratch: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise KeyError(key)
        return path

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        """`{base_url}/{key}?expires=…&sig=…`, valid `url_expiry` s (see landing/tokens.py),
        or a file:// URL when nothing serves the store."""
        if self.base_url and self.secret:
            self.path(key)  # validates the key
            expires = int(self.clock()) + self.url_expiry
            sig = media_signature(self.secret, key, expires)
            return f"{self.base_url}/{quote(key)}?expires={expires}&sig={sig}"
        return self.path(key).as_uri()

    def location(self, key: str) -> tuple[str, str]:
        """(the store's root folder, the key): where the object is on this machine."""
        self.path(key)  # validates the key
        return str(self.root), key

    def list(self, prefix: str = "") -> list[tuple[str, float]]:
        """(key, modified at, epoch seconds) of the objects whose key starts with `prefix`."""
        found = []
        folder = self.root / prefix.rpartition("/")[0]  # only the folder the prefix is in
        if not folder.is_dir():
            return []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                found.append((key, path.stat().st_mtime))
        return found

    def clean_partials(self) -> int:
        """Remove the temporary files of writes whose process is gone (killed mid-write);
        returns how many. Writes in progress are left alone."""
        removed = 0
        for part in self.root.rglob(".*.part"):
            match = _PARTIAL.match(part.name)
            if match is None or _alive(int(match.group(1))):
                continue
            part.unlink(missing_ok=True)
            removed += 1
        return removed
