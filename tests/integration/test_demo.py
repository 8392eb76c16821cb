"""The demo campaign itself: valid, every recipient binds, and the whole video renders in a
single pass (which once stalled ffmpeg: a still repeated by the `loop` filter, in a graph
joining scenes with concat)."""

from __future__ import annotations

from pathlib import Path

from chalicelib.adapters.espeak import EspeakSpeech
from chalicelib.cli import DEMO_DIR
from chalicelib.data.readers import read_rows
from chalicelib.render.engine import render
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template, validate_template_file
from tests.media import probe


def test_the_demo_template_is_valid() -> None:
    assert validate_template_file(DEMO_DIR / "template.yaml") == []


def test_every_demo_recipient_binds_to_a_30_second_video() -> None:
    lt = load_template(DEMO_DIR / "template.yaml")
    rows = list(read_rows(DEMO_DIR / "recipients.csv"))
    assert len(rows) == 20
    durations = {}
    for row in rows:
        fields = row.fields or {}
        durations[fields["recipient_id"]] = bind(lt, fields).duration
    # growth and enterprise recipients (with their month's numbers) get the 5 s chart scene
    # (less its 0.5 s crossfade)
    charted = {
        r.fields["recipient_id"]
        for r in rows
        if r.fields and str(r.fields.get("segment", "")).strip().lower() in ("growth", "enterprise")
    }
    assert len(charted) == 13
    assert {durations[r] for r in charted} == {34.5}
    assert {d for r, d in durations.items() if r not in charted} == {30.0}


def test_the_demo_renders_in_a_single_pass(out: Path) -> None:
    lt = load_template(DEMO_DIR / "template.yaml")
    [row] = [r for r in read_rows(DEMO_DIR / "recipients.csv") if r.line == 3]
    for attempt in range(3):  # the stall was intermittent
        plan = bind(lt, row.fields or {})
        video = render(plan, out / f"{attempt}.mp4", preview=True, speech=EspeakSpeech()).path
        p = probe(video)
        # a growth recipient: the 30 s, and the chart scene (4.5 s more)
        assert (p.width, p.height, p.frames) == (320, 180, 345)


def test_two_demo_recipients_differ_in_the_greeting_audio_and_no_other(tmp_path: Path) -> None:
    # GIVEN Emma and Lukas of the demo (English starters, short names: greetings keep their length)
    import numpy as np

    from chalicelib.adapters.local_fs import LocalBlobStore
    from chalicelib.data.mapping import apply_mapping
    from chalicelib.render import audio
    from chalicelib.render import ffmpeg as ff
    from chalicelib.render.cache import SegmentCache
    from chalicelib.render.engine import cache_context
    from chalicelib.render.profile import EncodingProfile
    from chalicelib.render.voice import speak
    from chalicelib.services.templates import campaign_mapping_file

    lt = load_template(DEMO_DIR / "template.yaml")
    mapping = campaign_mapping_file(DEMO_DIR)
    rows = {
        r.fields["recipient_id"]: r.fields
        for r in read_rows(DEMO_DIR / "recipients.csv")
        if r.fields
    }
    cache = SegmentCache(LocalBlobStore(tmp_path / "cache"))
    sound, tracks = {}, {}
    for rid in ("r010", "r013"):
        plan = bind(lt, apply_mapping(mapping, rows[rid]))
        plan = speak(plan, EspeakSpeech(), cache.store, tmp_path / "clips")
        assert plan.duration == 30.0
        profile = EncodingProfile.for_canvas(plan.canvas, preview=True)
        # WHEN their audio tracks are made (as their renders make them, through one cache)
        tracks[rid] = audio.plan_track(plan, plan.duration, profile, cache_context())
        track = audio.track_file(plan, tracks[rid], cache, tmp_path)
        track = track.rename(tmp_path / f"{rid}.aac")
        raw = tmp_path / f"{rid}.f32"
        ff.run(["-y", "-i", str(track), "-ac", "1", "-ar", "48000", "-f", "f32le", str(raw)])
        sound[rid] = np.frombuffer(raw.read_bytes(), dtype="<f4").astype(np.float64)
    greeting = plan.scenes[1]
    assert greeting.id == "greeting"
    a, b = sound["r010"], sound["r013"]
    assert len(a) == len(b)
    lo, hi = round(greeting.start * 48000), round((greeting.start + greeting.duration) * 48000)

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x * x)))

    # THEN the greeting differs (another name is said) …
    assert rms(a[lo:hi] - b[lo:hi]) > 0.2 * rms(a[lo:hi])
    # … only the blocks around the greeting's voice line are personal, and differ …
    blocks = tracks["r010"].blocks
    differ = [x.key != y.key for x, y in zip(blocks, tracks["r013"].blocks, strict=True)]
    assert differ == [x.personal for x in blocks]
    personal = [x for x in blocks if x.personal]
    assert 0 < len(personal) <= len(blocks) // 3
    first, end = personal[0].first * 1024, personal[-1].end * 1024
    assert first < lo and end > hi and (end - first) / 48000 < greeting.duration + 4
    # … and everything else is the same AAC packets, byte for byte (so the same sound: a
    # decoder's noise substitution draws differ after a personal block: measured 82 dB down)
    packets = {rid: audio.adts_packets((tmp_path / f"{rid}.aac").read_bytes()) for rid in sound}
    p0, p1 = personal[0].packets[0], personal[-1].packets[1]
    assert packets["r010"][:p0] == packets["r013"][:p0]
    assert packets["r010"][p1:] == packets["r013"][p1:]
    assert packets["r010"][p0:p1] != packets["r013"][p0:p1]
    assert np.array_equal(a[: first - 1024], b[: first - 1024])
    rest = slice(end + 2048, None)
    assert rms(a[rest]) > 0.01  # the music is there
    assert rms(a[rest] - b[rest]) < 0.001 * rms(a[rest])
