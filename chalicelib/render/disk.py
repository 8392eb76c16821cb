"""A disk budget for local caches: files kept under a byte cap, least recently used first, and
never a file a running render holds (a lease's pins, shared flocks that work across processes).

A render opens a `lease()`; every cached file it is handed (a segment, an audio track, a fetched
asset) is pinned in it: an open descriptor holding a shared `flock`. Eviction takes an exclusive
non-blocking `flock` before it unlinks, so a pinned file is skipped, in this process or any other
of the pool. A pin taken after an eviction unlinked the file sees a different inode at the path
and reports a miss: the caller renders (or fetches) it again. "Recently used" is the file's
access time, set explicitly on every hit (mount options such as relatime do not matter).
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

# A trim lock per budget: one process trims at a time (the others skip, it is only a sweep).
_TRIM_LOCK = ".trim.lock"


@dataclass
class Lease:
    """The files one render holds: pinned until the lease ends."""

    fds: list[int] = field(default_factory=list)
    budgets: set[DiskBudget] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("reel_lease", default=None)


@contextmanager
def lease() -> Iterator[Lease]:
    """Pin every cached file handed out inside the block (threads started with the block's
    context included); on leaving it the pins are released and the budgets used are trimmed.
    Nested leases are one: the outermost releases."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    held = Lease()
    token = _current.set(held)
    try:
        yield held
    finally:
        _current.reset(token)
        with held.lock:
            fds, held.fds = held.fds, []
            budgets = list(held.budgets)
        for fd in fds:
            os.close(fd)  # closing the last descriptor drops the shared flock
        for budget in budgets:
            budget.trim()


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


class DiskBudget:
    """The cached files under `folders`, kept under `max_bytes` together; `lock_dir` holds the
    lock that makes one trim run at a time (the folders' common parent)."""

    def __init__(self, folders: Iterable[Path], max_bytes: int, *, lock_dir: Path):
        if max_bytes < 1:
            raise ValueError("max_bytes is at least 1")
        self.folders = tuple(Path(f).resolve() for f in folders)
        self.max_bytes = max_bytes
        self.lock_dir = Path(lock_dir).resolve()

    def __hash__(self) -> int:
        return id(self)

    def pin(self, path: Path) -> bool:
        """Hold `path` for the current lease (none: nothing is held) and mark it used. False
        when the file is gone (evicted): the caller treats it as a miss."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits out an eviction deciding on this file
            if not _same_file(fd, path):  # unlinked (or replaced) meanwhile
                os.close(fd)
                return False
            now = time.time()
            os.utime(fd, (now, os.fstat(fd).st_mtime))
        except BaseException:
            os.close(fd)
            raise
        held = _current.get()
        if held is None:
            os.close(fd)
            return True
        with held.lock:
            held.fds.append(fd)
            held.budgets.add(self)
        return True

    def files(self) -> list[tuple[float, int, Path]]:
        """(last used, size, path) of every file the budget covers."""
        found = []
        for top in self.folders:
            for folder, _dirs, names in os.walk(top):
                for name in names:
                    if name.startswith("."):  # partial writes, the trim lock
                        continue
                    path = Path(folder) / name
                    with suppress(FileNotFoundError):
                        st = path.stat()
                        found.append((st.st_atime, st.st_size, path))
        return found

    def used(self) -> int:
        """Bytes the covered files take."""
        return sum(size for _, size, _ in self.files())

    def trim(self) -> int:
        """Evict least recently used files not pinned until the total is under the cap;
        returns the bytes freed. Another process trimming meanwhile: skipped."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.lock_dir / _TRIM_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return 0
                raise
            files = self.files()
            total = sum(size for _, size, _ in files)
            freed = 0
            for _, size, path in sorted(files, key=lambda f: f[0]):
                if total - freed <= self.max_bytes:
                    break
                if _evict(path):
                    freed += size
            return freed
        finally:
            os.close(lock)


def _evict(path: Path) -> bool:
    """Unlink `path` unless a render holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False  # pinned
            raise
        if not _same_file(fd, path):
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)
