"""The segment cache under REEL_CACHE_MAX_BYTES: a batch that fills it past its cap still
makes every video right and leaves it under the cap; a segment gone from it is rendered again."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.pipeline.folder import RESULTS, read_results
from chalicelib.render.engine import render
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from tests.conftest import Campaign, run_batch
from tests.integration.test_batch import people, write_csv
from tests.media import probe

CAP = 12_000  # bytes: a few of the tiny template's segments


def cache_files(root: Path) -> list[Path]:
    return [p for d in ("segments", "audio") for p in (root / d).rglob("*") if p.is_file()
            and not p.name.startswith(".")]  # fmt: skip


def test_a_batch_past_the_cap_makes_every_video_and_ends_under_it(
    campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cache capped far below what a batch of eight personal videos renders into it
    monkeypatch.setenv("REEL_CACHE_MAX_BYTES", str(CAP))
    bootstrap.reset()
    n = 8
    data = write_csv(tmp_path / "r.csv", people(n))
    # WHEN the batch runs on two render processes
    summary = run_batch(campaign.template, data, tmp_path / "out", workers=2)
    # THEN every recipient got a whole video: both streams, every frame, the full duration
    assert summary.counts == {"rendered": n, "cached": 0, "failed": 0}
    results = read_results(tmp_path / "out" / RESULTS)
    expected = None
    for r in results:
        assert r.output is not None
        p = probe(Path(r.output.removeprefix("file://")))
        assert (p.video_codec, p.audio_codec) == ("h264", "aac")
        expected = expected or p.frames
        assert p.frames == expected == 26  # intro 1.0 + greeting 1.0 + outro 0.6 s at 10 fps
    # AND the cache was filled past its cap (every recipient stored its own greeting segment,
    # more than fit: some were evicted), yet it ends under the cap
    cache = tmp_path / "segment-cache"
    files = cache_files(cache)
    assert len(files) < n
    assert sum(f.stat().st_size for f in files) <= CAP


def test_a_missing_segment_is_rendered_again(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN a video rendered through the cache, whose segments then vanish (evicted, expired)
    cache = bootstrap.segment_cache()
    plan = bind(load_template(campaign.template), {"first_name": "Ann"})
    first = render(plan, tmp_path / "a.mp4", cache=cache)
    for f in cache_files(cache.store.root):  # type: ignore[attr-defined]
        f.unlink()
    # WHEN the same video is rendered again
    again = render(plan, tmp_path / "b.mp4", cache=cache)
    # THEN every segment was simply rendered again, and the video is whole
    assert first.segments_cached == 0 and again.segments_cached == 0
    assert again.segments == first.segments
    assert probe(tmp_path / "b.mp4").frames == probe(tmp_path / "a.mp4").frames
    # AND they are in the cache again: a third render finds them all
    third = render(plan, tmp_path / "c.mp4", cache=cache)
    assert third.segments_cached == third.segments
