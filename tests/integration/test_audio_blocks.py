"""The audio track in blocks (render/audio.py) on real parts: a warm recipient encodes only
the blocks their voice line reaches, the joined track sounds as the single pass does, the MP4
plays it on time, and the stream's audio chunks are personal only there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chalicelib.adapters.espeak import EspeakSpeech
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.render import audio
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache
from chalicelib.render.engine import render
from chalicelib.render.hls import plan_stream
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.voice import speak
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.plan import RenderPlan
from tests.conftest import Campaign

RATE = 48000

LONG = """\
id: long
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true, max_length: 200}
audio: {music: assets/bed.m4a, volume: 0.5}
voices: {en_US: en-us}
scenes:
  - {id: intro, duration: 5.0, background: {color: '#203040'}}
  - id: greeting
    duration: 3.0
    background: {color: '#102040'}
    layers:
      - {type: voice, text: "Hi {{ first_name }}, welcome aboard.", start: 0.3, overflow: speed}
  - {id: outro, duration: 6.0, background: {color: '#000000'}}
"""


@pytest.fixture
def long(campaign: Campaign) -> Campaign:
    campaign.write_template(LONG)
    return campaign


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The runs of blocks encoded (their indices), one list per encoding pass."""
    runs: list[list[int]] = []
    real = audio._encode

    def spy(plan, track, run, *args):  # type: ignore[no-untyped-def]
        runs.append(run)
        return real(plan, track, run, *args)

    monkeypatch.setattr(audio, "_encode", spy)
    return runs


def spoken(campaign: Campaign, name: str, cache: SegmentCache, tmp: Path) -> RenderPlan:
    plan = bind(load_template(campaign.template), {"first_name": name})
    return speak(plan, EspeakSpeech(), cache.store, tmp / "clips")


def samples(path: Path, tmp: Path) -> np.ndarray:
    """Decoded by ffmpeg (which applies the MP4's edit list): stereo float, 48 kHz."""
    raw = tmp / f"{path.stem}.f32"
    ff.run(["-y", "-i", str(path), "-vn", "-ac", "2", "-ar", str(RATE), "-f", "f32le", str(raw)])
    return np.frombuffer(raw.read_bytes(), dtype="<f4").reshape(-1, 2).astype(np.float64)


def level(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def test_a_warm_recipient_encodes_only_the_blocks_its_voice_reaches(
    long: Campaign, tmp_path: Path, encoded: list[list[int]]
) -> None:
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    # GIVEN Ana's video made through the cache (a cold track: one pass over every block)
    ana = spoken(long, "Ana", cache, tmp_path)
    render(ana, tmp_path / "ana.mp4", cache=cache)
    blocks = len(audio.frame_cuts(14.0, RATE))
    assert encoded == [list(range(blocks))]
    # WHEN Bob's is made after it
    encoded.clear()
    bob = spoken(long, "Bob", cache, tmp_path)
    render(bob, tmp_path / "bob.mp4", cache=cache)
    # THEN only the blocks his line reaches are encoded, in one pass: around 5.3–7.3 s
    track = audio.plan_track(bob, 14.0, *_profile_context(bob))
    personal = [i for i, b in enumerate(track.blocks) if b.personal]
    assert encoded == [personal]
    first, last = track.blocks[personal[0]], track.blocks[personal[-1]]
    assert 3.0 <= first.first * 1024 / RATE <= 5.0 and 7.3 <= last.end * 1024 / RATE <= 10.1
    assert len(personal) <= blocks // 2
    # AND a third render of Bob encodes nothing
    encoded.clear()
    render(bob, tmp_path / "bob2.mp4", cache=cache)
    assert encoded == []


def _profile_context(plan: RenderPlan) -> tuple[EncodingProfile, dict[str, str]]:
    from chalicelib.render.engine import cache_context

    return EncodingProfile.for_canvas(plan.canvas), cache_context()


def test_the_joined_track_sounds_as_the_single_pass(long: Campaign, tmp_path: Path) -> None:
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    render(spoken(long, "Ana", cache, tmp_path), tmp_path / "ana.mp4", cache=cache)
    bob = spoken(long, "Bartholomew", cache, tmp_path)
    # WHEN Bob's video is made of Ana's static blocks and his own, and in a single pass
    joined = samples(render(bob, tmp_path / "joined.mp4", cache=cache).path, tmp_path)
    single = samples(render(bob, tmp_path / "single.mp4").path, tmp_path)
    # THEN both are as long as the video (the edit list skips the priming) …
    assert len(joined) == len(single) and abs(len(joined) / RATE - 14.0) < 0.03
    # … and differ only by the encoder's noise (measured −38 dB): over the whole track, and
    # around every join (no click where a personal block meets a static one; measured ≤ −29 dB)
    assert level(joined - single) < 0.02 * level(single)  # −34 dB
    track = audio.plan_track(bob, 14.0, *_profile_context(bob))
    for block in track.blocks[1:]:
        at = block.first * 1024
        around = slice(at - 2048, at + 2048)
        assert level(joined[around] - single[around]) < 0.05 * level(single[around]), block


def test_the_mp4_plays_its_sounds_on_time(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN a silent video with a click at 2.5 s (inside the second audio block)
    click = campaign.root / "assets" / "click.wav"
    ff.run(["-y", "-f", "lavfi", "-i", "sine=f=1000:d=0.05:r=48000", str(click)])
    campaign.write_template(
        """\
        id: click
        canvas: {width: 160, height: 96, fps: 10}
        variables: {first_name: {type: text}}
        scenes:
          - id: only
            duration: 4.0
            background: {color: '#000000'}
            layers:
              - {type: audio, src: assets/click.wav, start: 2.5}
        """
    )
    plan = bind(load_template(campaign.template), {"first_name": "Ada"})
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    for name, kwargs in (("single", {}), ("cached", {"cache": cache})):
        x = samples(render(plan, tmp_path / f"{name}.mp4", **kwargs).path, tmp_path)  # type: ignore[arg-type]
        # THEN the click starts at 2.5 s, to the millisecond, in the decoded MP4
        onset = int(np.argmax(np.abs(x[:, 0]) > 0.05))
        assert onset / RATE == pytest.approx(2.5, abs=0.001), name


def test_the_stream_has_personal_audio_chunks_only_where_the_voice_is(
    long: Campaign, tmp_path: Path
) -> None:
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    ana = plan_stream(spoken(long, "Ana", cache, tmp_path)).audio
    bob = plan_stream(spoken(long, "Bob", cache, tmp_path)).audio
    personal = [g.personal for g in ana]
    assert any(personal) and not personal[0] and not personal[-1]
    for a, b in zip(ana, bob, strict=True):
        # a static chunk is one URL for everyone; a personal one is stored apart, per voice
        assert (a.chunks[0].key == b.chunks[0].key) is not (a.personal or b.personal)
        assert a.chunks[0].blob.startswith("hls/p/" if a.personal else "hls/s/")


def test_a_batch_warm_up_makes_the_blocks_no_voice_can_reach(
    long: Campaign, tmp_path: Path, encoded: list[list[int]]
) -> None:
    from chalicelib.render.engine import warm

    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    # GIVEN the batch's first plan, not spoken yet (as the plan step warms the cache)
    warm(bind(load_template(long.template), {"first_name": "Seed"}), cache)
    warmed = [i for run in encoded for i in run]
    assert warmed and 0 in warmed
    # WHEN a recipient renders after it
    encoded.clear()
    ana = spoken(long, "Ana", cache, tmp_path)
    render(ana, tmp_path / "ana.mp4", cache=cache)
    # THEN it encodes the blocks its line reaches and those the warm-up left (a line may
    # take its whole window: the warm-up keeps off it), nothing the warm-up made
    track = audio.plan_track(ana, 14.0, *_profile_context(ana))
    made = [i for run in encoded for i in run]
    assert {i for i, b in enumerate(track.blocks) if b.personal} <= set(made)
    assert sorted(warmed + made) == list(range(len(track.blocks)))
    assert len(made) <= len(track.blocks) // 2


def test_a_line_that_extends_its_scene_shares_the_blocks_that_sound_the_same(
    long: Campaign, tmp_path: Path, encoded: list[list[int]]
) -> None:
    longer = LONG.replace("overflow: speed", "overflow: extend")
    long.write_template(longer.replace("id: outro, duration: 6.0", "id: outro, duration: 12.0"))
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    render(spoken(long, "Ana", cache, tmp_path), tmp_path / "ana.mp4", cache=cache)
    # GIVEN a name so long that the greeting grows (the video too: the music runs longer)
    encoded.clear()
    name = "Bartholomew Maximilian Fitzgerald Montgomery"
    long_one = spoken(long, name, cache, tmp_path)
    result = render(long_one, tmp_path / "long.mp4", cache=cache)
    assert result.duration > 20.5
    # THEN the blocks before the line, and the music's blocks after it (away from the new
    # end), are the ones made for Ana: only the line's blocks and the end are encoded
    track = audio.plan_track(long_one, result.duration, *_profile_context(long_one))
    made = {i for run in encoded for i in run}
    line = [i for i, b in enumerate(track.blocks) if b.personal]
    assert 0 not in made and 1 not in made
    assert set(line) <= made
    shared = set(range(line[-1] + 1, len(track.blocks))) - made
    assert shared, (line, sorted(made), len(track.blocks))
