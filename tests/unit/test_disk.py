"""The disk budget: least recently used first, under the cap, never a pinned file (even one
pinned by another process), and a pin on an evicted file is a miss."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from chalicelib.render import disk
from chalicelib.render.disk import DiskBudget


def write(path: Path, size: int, used: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


@pytest.fixture
def budget(tmp_path: Path) -> DiskBudget:
    return DiskBudget([tmp_path / "segments", tmp_path / "fetched"], 2500, lock_dir=tmp_path)


def test_least_recently_used_go_first_until_under_the_cap(
    budget: DiskBudget, tmp_path: Path
) -> None:
    # GIVEN four 1,000-byte files over two folders (4,000 bytes, cap 2,500), used at 1..4
    files = [
        write(tmp_path / f"{d}/{i}.bin", 1000, 1000.0 + i)
        for i, d in enumerate(["segments/aa", "fetched", "segments/bb", "fetched"])
    ]
    # WHEN the budget is trimmed
    freed = budget.trim()
    # THEN the two least recently used are gone and the cache is under its cap
    assert freed == 2000
    assert [f.exists() for f in files] == [False, False, True, True]
    assert budget.used() <= budget.max_bytes


def test_a_hit_makes_a_file_recent(budget: DiskBudget, tmp_path: Path) -> None:
    old = write(tmp_path / "segments/old.bin", 1000, 1000.0)
    newer = write(tmp_path / "segments/newer.bin", 1000, 2000.0)
    write(tmp_path / "segments/newest.bin", 1000, 3000.0)
    assert budget.pin(old)  # no lease: marks it used, holds nothing
    budget.trim()
    assert old.exists() and not newer.exists()


def _hold(
    path: str, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    b = DiskBudget([Path(path).parent], 10**9, lock_dir=Path(path).parent)
    with disk.lease():
        assert b.pin(Path(path))
        ready.set()
        done.wait(30)


def test_a_file_pinned_by_another_process_is_never_evicted(
    budget: DiskBudget, tmp_path: Path
) -> None:
    # GIVEN the oldest file held by a render in another process
    pinned = write(tmp_path / "segments/pinned.bin", 2000, 1000.0)
    other = write(tmp_path / "segments/other.bin", 1000, 2000.0)
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(pinned), ready, done))
    proc.start()
    try:
        assert ready.wait(60)
        # WHEN the cache is trimmed over its cap
        budget.trim()
        # THEN the pinned file stays (the next one is evicted instead)
        assert pinned.exists() and not other.exists()
    finally:
        done.set()
        proc.join(60)
    # AND once the render is done it may go (when a file used after it needs the room)
    write(tmp_path / "segments/later.bin", 1000, time.time() + 60)
    budget.trim()
    assert not pinned.exists()
    assert budget.used() <= budget.max_bytes


def test_pins_in_a_lease_hold_until_it_ends_then_trim(budget: DiskBudget, tmp_path: Path) -> None:
    a = write(tmp_path / "segments/a.bin", 2000, 1000.0)
    b = write(tmp_path / "segments/b.bin", 2000, 2000.0)
    with disk.lease():
        assert budget.pin(a) and budget.pin(b)
        budget.trim()
        assert a.exists() and b.exists()  # over the cap, but both held
    # leaving the lease trimmed: the least recently used is gone
    assert not a.exists() and b.exists()


def test_a_pin_on_an_evicted_file_is_a_miss(budget: DiskBudget, tmp_path: Path) -> None:
    gone = write(tmp_path / "segments/gone.bin", 3000, 1000.0)
    budget.trim()
    assert not gone.exists()
    assert budget.pin(gone) is False


def test_a_segment_stored_again_under_a_render_does_not_vanish_from_it(tmp_path: Path) -> None:
    # GIVEN a render holding a cached segment (another worker is about to store the same key)
    from chalicelib.adapters.local_fs import LocalBlobStore
    from chalicelib.render.cache import SegmentCache

    root = tmp_path / "cache"
    budget = DiskBudget([root / "segments"], 1500, lock_dir=root)
    cache = SegmentCache(LocalBlobStore(root), disk=budget)
    key = cache.segment_key("ab" * 32)
    first = write(tmp_path / "first.mp4", 1000, 1000.0)
    cache.put(key, first, tmp_path)
    scratch = tmp_path / "render-a"
    with disk.lease():
        held = cache.get(key, scratch)
        assert held is not None and held.parent == scratch
        # WHEN the other worker stores the same key (a new file under the same name) and the
        # cache is trimmed past its cap, evicting that new, unpinned file
        cache.put(key, write(tmp_path / "second.mp4", 1000, 2000.0), tmp_path)
        write(root / "segments" / "zz" / "other.mp4", 1000, time.time() + 60)
        budget.trim()
        # THEN the render still reads its segment, whole
        assert held.read_bytes() == b"x" * 1000
