"""Rendering through the segment cache: equivalence with the single pass, and reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.render.cache import SegmentCache
from chalicelib.render.engine import render
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from tests.conftest import Campaign
from tests.media import probe, ssim_per_frame


@pytest.fixture
def cache(tmp_path: Path) -> SegmentCache:
    return SegmentCache(LocalBlobStore(tmp_path / "blobs"))


def crossfaded(campaign: Campaign) -> Campaign:
    text = campaign.template.read_text().replace(
        "transition: {type: cut}", "transition: {type: crossfade, duration: 0.2}"
    )
    campaign.write_template(
        text.replace("- use: outro", "- use: outro\n    transition: {type: fade, duration: 0.4}")
    )
    return campaign


def test_cached_output_matches_the_single_pass(
    campaign: Campaign, out: Path, cache: SegmentCache
) -> None:
    # GIVEN a template with crossfades, a conditional scene, a personal image and a music bed
    crossfaded(campaign)
    plan = bind(
        load_template(campaign.template),
        {"first_name": "Zoë", "plan": "pro", "avatar": "assets/avatar.png"},
    )
    # WHEN it is rendered in one pass and through the segment cache
    single = render(plan, out / "single.mp4").path
    cached = render(plan, out / "cached.mp4", cache=cache)
    # THEN the cached video has the same frames and duration, and every frame looks the same
    a, b = probe(single), probe(cached.path)
    assert cached.segments == 3 and cached.segments_cached == 0
    assert a.frames == b.frames
    assert abs(a.duration - b.duration) < 1 / 10
    scores = ssim_per_frame(single, cached.path, out)
    assert len(scores) == a.frames
    assert min(scores) >= 0.99


def test_second_recipient_reuses_the_static_segments(
    campaign: Campaign, out: Path, cache: SegmentCache
) -> None:
    lt = load_template(campaign.template)
    first = render(bind(lt, {"first_name": "Ann"}), out / "ann.mp4", cache=cache)
    second = render(bind(lt, {"first_name": "Bob"}), out / "bob.mp4", cache=cache)
    again = render(bind(lt, {"first_name": "Ann"}), out / "ann2.mp4", cache=cache)
    assert (first.segments, first.segments_cached) == (3, 0)
    assert (second.segments, second.segments_cached) == (3, 2)  # intro and outro
    assert (again.segments, again.segments_cached) == (3, 3)
    assert probe(second.path).frames == probe(first.path).frames
    assert again.path.read_bytes() == first.path.read_bytes()
