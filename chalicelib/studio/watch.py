"""Edits made on disk by another editor, seen by the Studio: a watchfiles thread counts
changes to a campaign folder, and the page asks for what changed since the revision it has.
Only `reel studio`'s long-lived process watches (a folder on this machine); a registered
template never changes under a version."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import watchfiles

MAX_CHANGES = 500  # changed paths remembered; a page further behind reloads everything


class Watcher:
    """A revision counter and the paths changed at each revision, fed by a daemon thread."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.revision = 0
        self._changes: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for batch in watchfiles.watch(self.root, stop_event=self._stop, debounce=200, step=50):
            self.record(Path(p) for _, p in batch)

    def record(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self.revision += 1
            for path in paths:
                rel = path.resolve()
                if rel.is_relative_to(self.root):
                    text = rel.relative_to(self.root).as_posix()
                    if not any(part.startswith(".") for part in text.split("/")):
                        self._changes.append((self.revision, text))
            del self._changes[:-MAX_CHANGES]

    def since(self, revision: int) -> dict[str, object]:
        """The current revision and the paths changed after `revision` (all: None)."""
        with self._lock:
            oldest = self._changes[0][0] if self._changes else self.revision + 1
            complete = revision >= oldest - 1 or revision == self.revision
            files = sorted({p for r, p in self._changes if r > revision})
            return {"revision": self.revision, "files": files if complete else None}

    def stop(self) -> None:
        self._stop.set()


_WATCHERS: dict[Path, Watcher] = {}  # `reel studio` opens one folder
_LOCK = threading.Lock()


def watcher(root: Path) -> Watcher:
    """The folder's watcher, started on first use (`reel studio` starts it before serving)."""
    root = root.resolve()
    with _LOCK:
        if root not in _WATCHERS:
            _WATCHERS[root] = Watcher(root)
        return _WATCHERS[root]
