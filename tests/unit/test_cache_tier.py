"""The render Lambda's /tmp tier in front of the S3 segment cache: a warm hit needs no
download, a cold one is kept for the next invocation, the tier stays under its cap, and a
segment gone from both (expired by the lifecycle rule) is a miss, so it is rendered again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.render import disk
from chalicelib.render.cache import SegmentCache
from chalicelib.render.disk import DiskBudget
from tests.aws import create_bucket


@pytest.fixture
def s3_cache(tmp_path: Path) -> Iterator[SegmentCache]:
    with mock_aws():
        s3 = create_bucket("reel-media")
        tier = tmp_path / "tier"
        budget = DiskBudget([tier / "segments", tier / "audio"], 2500, lock_dir=tier)
        yield SegmentCache(S3BlobStore(s3, "reel-media"), disk=budget, tier=tier)


def segment(tmp_path: Path, name: str, size: int = 1000) -> Path:
    path = tmp_path / name
    path.write_bytes(name.encode() * (size // len(name)))
    return path


def test_a_warm_hit_comes_from_tmp_and_a_cold_one_is_kept(
    s3_cache: SegmentCache, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    key = s3_cache.segment_key("ab" * 32)
    source = segment(tmp_path, "one")
    assert s3_cache.put(key, source, scratch) == source  # the render goes on with its file
    stored = tmp_path / "tier" / key
    assert stored.read_bytes() == source.read_bytes() and s3_cache.store.exists(key)
    # GIVEN the object gone from S3 WHEN it is asked for THEN the warm copy in /tmp answers
    # (under a name of the render's own: a hard link in its scratch)
    s3_cache.store.delete(key)
    hit = s3_cache.get(key, scratch)
    assert hit is not None and hit.parent == scratch
    assert hit.stat().st_ino == stored.stat().st_ino
    # GIVEN it gone from /tmp too (evicted) THEN it is a miss: the render makes it again
    stored.unlink()
    assert s3_cache.get(key, scratch) is None
    # GIVEN an object on S3 only (another function rendered it) THEN it is downloaded and kept
    other = s3_cache.segment_key("cd" * 32)
    s3_cache.store.put_file(other, segment(tmp_path, "two"))
    found = s3_cache.get(other, scratch)
    assert found is not None and found.read_bytes() == (tmp_path / "two").read_bytes()
    kept = tmp_path / "tier" / other
    assert kept.read_bytes() == found.read_bytes()  # kept for the next recipient


def test_the_tier_stays_under_its_cap_but_keeps_what_a_render_holds(
    s3_cache: SegmentCache, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with disk.lease():
        for i in range(4):
            s3_cache.put(s3_cache.segment_key(f"{i:02d}" * 32), segment(tmp_path, f"s{i}"), scratch)
        held = [s3_cache.get(s3_cache.segment_key(f"{i:02d}" * 32), scratch) for i in range(4)]
        assert all(p is not None and p.is_file() for p in held)
    assert s3_cache.disk is not None
    assert s3_cache.disk.used() <= 2500
    # every segment is still on S3: what /tmp dropped is downloaded again when needed
    assert all(s3_cache.store.exists(s3_cache.segment_key(f"{i:02d}" * 32)) for i in range(4))
