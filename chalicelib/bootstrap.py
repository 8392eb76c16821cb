"""The one wiring point: builds the adapters from settings, once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.render.cache import SegmentCache
from chalicelib.settings import get_settings


def segment_cache(root: Path | None = None) -> SegmentCache:
    """The segment cache: a local directory (`root`, else `REEL_CACHE_DIR`)."""
    return _segment_cache((root or get_settings().cache_dir).resolve())


@lru_cache(maxsize=8)
def _segment_cache(root: Path) -> SegmentCache:
    return SegmentCache(LocalBlobStore(root))


@lru_cache(maxsize=8)
def output_store(root: Path) -> LocalBlobStore:
    """Where a batch's videos and posters go."""
    return LocalBlobStore(root)
