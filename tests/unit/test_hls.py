"""HLS planning (no rendering): chunks aligned with the static/personal runs, durations that
add up to the video's, keys that follow content, playlists, and static vs personal URLs."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from chalicelib.landing.stream import _uri
from chalicelib.render import hls
from chalicelib.render.audio import frame_cuts
from chalicelib.render.profile import StreamProfile
from chalicelib.render.segments import plan_runs
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.model import Canvas
from chalicelib.template.plan import RenderPlan
from tests.conftest import Campaign


def plan_of(campaign: Campaign, **data: Any) -> RenderPlan:
    return bind(load_template(campaign.template), {"first_name": "Ada", **data})


def test_chunk_cuts_are_at_most_a_gop_from_the_run_start() -> None:
    assert hls.chunk_cuts(165, 60) == [(0, 60), (60, 120), (120, 165)]
    assert hls.chunk_cuts(60, 60) == [(0, 60)]
    assert hls.chunk_cuts(7, 60) == [(0, 7)]


def test_audio_blocks_are_whole_aac_frames_of_about_two_seconds() -> None:
    # 30 s at 48 kHz: 1406.25 frames of 1024 samples, the last one partial
    cuts = frame_cuts(30.0, 48000)
    assert cuts[0] == (0, 94) and cuts[-1][1] == 1407 and len(cuts) == 15
    assert all(a == b for (_, a), (b, _) in pairwise(cuts))
    assert {b - a for a, b in cuts} == {93, 94, 95}  # 2 s = 93.75 frames; the last takes the rest
    assert frame_cuts(3.4, 48000) == [(0, 94), (94, 160)]
    assert frame_cuts(0.01, 48000) == [(0, 1)]


def test_renditions_are_the_canvas_and_a_smaller_one() -> None:
    demo = hls.renditions(Canvas(width=1280, height=720, fps=30))
    assert [(r.name, r.profile.width, r.profile.height) for r in demo] == [
        ("720p", 1280, 720),
        ("360p", 640, 360),
    ]
    assert demo[1].profile.scale == 0.5 and demo[0].bandwidth > demo[1].bandwidth
    tiny = hls.renditions(Canvas(width=160, height=96, fps=10))
    assert [r.name for r in tiny] == ["96p", "48p"]
    # No B-frames: each chunk's first frame is presented when decoded (no hole at the start).
    assert isinstance(demo[0].profile, StreamProfile)
    assert demo[0].profile.video_args()["bf"] == 0


def test_chunks_align_with_the_runs_and_add_up(campaign: Campaign) -> None:
    plan = plan_of(campaign, plan="pro")
    stream = hls.plan_stream(plan, {"engine": "test"})
    for rendition in stream.renditions:
        runs = plan_runs(plan, rendition.profile)
        groups = stream.groups[rendition.name]
        assert [g.run.start for g in groups] == [r.start for r in runs]
        fps = rendition.profile.fps
        for group in groups:
            # every chunk inside its run, ≤ 2 s, back to back, of the run's kind
            assert group.chunks[0].start == group.run.start / fps
            assert sum(c.duration for c in group.chunks) == pytest.approx(group.run.frames / fps)
            assert all(c.duration <= 2 for c in group.chunks)
            assert {c.personal for c in group.chunks} == {group.run.personal}
            assert all(c.group == group.key for c in group.chunks)
        chunks = stream.chunks(rendition.name)
        assert sum(c.duration for c in chunks) == pytest.approx(stream.duration)
        ends = [c.start + c.duration for c in chunks]
        assert [c.start for c in chunks[1:]] == pytest.approx(ends[:-1])
    assert stream.duration == pytest.approx(3.4)
    # the audio chunks: back to back, whole frames, the priming frame first (~21 ms more)
    audio = [g.chunks[0] for g in stream.audio]
    assert [c.start for c in audio[1:]] == pytest.approx([c.start + c.duration for c in audio[:-1]])
    assert sum(c.duration for c in audio) == pytest.approx(stream.duration + 1024 / 48000, abs=0.03)


def test_static_chunks_are_shared_and_personal_ones_follow_the_data(campaign: Campaign) -> None:
    context = {"engine": "test"}
    ada = hls.plan_stream(plan_of(campaign), context)
    grace = hls.plan_stream(plan_of(campaign, first_name="Grace"), context)
    again = hls.plan_stream(plan_of(campaign), context)
    name = ada.renditions[0].name
    a, g, a2 = ada.chunks(name), grace.chunks(name), again.chunks(name)
    assert [c.key for c in a] == [c.key for c in a2]  # same data, same keys
    for x, y in zip(a, g, strict=True):
        assert (x.key == y.key) is (not x.personal)
    # no voice in this template: every audio chunk is static and shared
    assert [g.key for g in ada.audio] == [g.key for g in grace.audio]
    assert not any(g.personal for g in ada.audio)
    # the renditions never share a chunk; each has one initialization segment, shared by all
    assert not {c.key for c in a} & {c.key for c in ada.chunks(ada.renditions[1].name)}
    assert ada.inits == grace.inits and len({i.key for i in ada.inits.values()}) == 3
    assert all(i.blob.startswith("hls/s/") and i.blob.endswith(".mp4") for i in ada.inits.values())
    # URLs: static ones under /hls/s/ (shared), personal ones under the token
    for c in a:
        assert _uri(c) == (f"p/{c.key}.m4s" if c.personal else f"../s/{c.key}.m4s")
        assert c.blob.startswith("hls/p/" if c.personal else "hls/s/")
    assert any(c.personal for c in a) and any(not c.personal for c in a)


def test_playlists() -> None:
    media = hls.media_playlist([(2.0, "../s/a.m4s"), (1.5, "p/b.m4s")], "../s/i.mp4")
    assert media.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="../s/i.mp4"',
        "#EXTINF:2.000000,",
        "../s/a.m4s",
        "#EXTINF:1.500000,",
        "p/b.m4s",
        "#EXT-X-ENDLIST",
    ]
    master = hls.master_playlist(hls.renditions(Canvas(width=1280, height=720, fps=30)), "a.m3u8")
    lines = master.splitlines()
    assert lines[3].startswith('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"')
    assert 'URI="a.m3u8"' in lines[3]
    assert "RESOLUTION=1280x720" in lines[4] and 'AUDIO="audio"' in lines[4]
    assert lines[5] == "720p.m3u8" and lines[7] == "360p.m3u8"
