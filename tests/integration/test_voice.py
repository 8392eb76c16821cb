"""Voice-over on real parts: espeak-ng speaks, ffmpeg mixes (ducking, R128 loudness), the
segment cache shares clips; overflow, engine failure and captions."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from chalicelib.adapters.espeak import EspeakSpeech
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.errors import VoiceError, VoiceOverflowError
from chalicelib.landing.pages import captions
from chalicelib.pipeline.jobs import Status
from chalicelib.pipeline.steps import make_job, render_recipient
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache
from chalicelib.render.engine import render
from chalicelib.render.graph import VoiceInput, audio_args, loudness_args
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.voice import speak
from chalicelib.speech import Speech, SpeechError, SpeechRequest
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.model import Canvas
from tests.conftest import Campaign

RATE = 48000

VOICED = """\
id: voiced
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true, max_length: 200}
  city: {type: text}
audio: {music: assets/bed.m4a, volume: 0.5}
voices: {en_US: en-us}
scenes:
  - id: intro
    duration: 1.0
    background: {color: '#203040'}
  - id: greeting
    duration: 3.0
    background: {color: '#102040'}
    layers:
      - {type: text, text: "{{ city }}", at: [0.5, 0.5], size: [140, 40]}
      - {type: voice, text: "Hi {{ first_name }}, welcome aboard.", start: 0.3, overflow: OVERFLOW}
  - id: outro
    duration: 1.5
    background: {color: '#000000'}
"""


@pytest.fixture
def voiced(campaign: Campaign) -> Campaign:
    campaign.write_template(VOICED.replace("OVERFLOW", "speed"))
    return campaign


@pytest.fixture
def cache(tmp_path: Path) -> SegmentCache:
    return SegmentCache(LocalBlobStore(tmp_path / "cache"))


def pcm(video: Path, tmp: Path) -> np.ndarray:
    """The decoded audio of `video`: float samples, mono mix, 48 kHz."""
    raw = tmp / f"{video.stem}.f32"
    ff.run(["-y", "-i", str(video), "-vn", "-ac", "1", "-ar", str(RATE), "-f", "f32le", str(raw)])
    return np.frombuffer(raw.read_bytes(), dtype="<f4")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0


def render_for(campaign: Campaign, record: dict[str, str], out: Path, cache: SegmentCache) -> Path:
    plan = bind(load_template(campaign.template), record)
    return render(plan, out, cache=cache, speech=EspeakSpeech()).path


def test_two_recipients_differ_in_the_greeting_audio_only(
    voiced: Campaign, out: Path, cache: SegmentCache, tmp_path: Path
) -> None:
    # GIVEN a template whose greeting says the recipient's name over a music bed
    ana = pcm(
        render_for(voiced, {"first_name": "Ana", "city": "Oslo"}, out / "ana.mp4", cache), tmp_path
    )
    bob = pcm(
        render_for(voiced, {"first_name": "Bartholomew", "city": "Oslo"}, out / "bob.mp4", cache),
        tmp_path,
    )
    assert len(ana) == len(bob) and abs(len(ana) / RATE - 5.5) < 0.05
    greeting = slice(round(1.0 * RATE), round(4.0 * RATE))
    # THEN the greeting's audio differs (another name is spoken) …
    assert rms(ana[greeting] - bob[greeting]) > 0.2 * rms(ana[greeting])
    # … and nothing else does (AAC frames straddling the scene edges aside: 50 ms)
    margin = round(0.05 * RATE)
    before = slice(0, round(1.0 * RATE) - margin)
    after = slice(round(4.0 * RATE) + margin, None)
    for part in (before, after):
        assert rms(ana[part]) > 0.01  # the music is there
        assert rms(ana[part] - bob[part]) < 0.02 * rms(ana[part])


def test_the_programme_is_at_minus_16_lufs_with_true_peak_under_minus_1(
    voiced: Campaign, out: Path, cache: SegmentCache
) -> None:
    video = render_for(voiced, {"first_name": "Ana"}, out / "ana.mp4", cache)
    import ffmpeg

    measured = ff.loudness(loudness_args(ffmpeg.input(str(video)).audio))
    assert -17.0 <= measured.integrated <= -15.0, measured
    assert measured.true_peak <= -1.0, measured


def test_music_ducks_smoothly_under_a_voice(tmp_path: Path) -> None:
    # GIVEN a loud steady bed and a silent "voice" from 1 s to 2 s (so only the bed is heard)
    bed = tmp_path / "bed.wav"
    ff.run(["-y", "-f", "lavfi", "-i", "sine=f=220:d=3:r=48000", str(bed)])
    silence = tmp_path / "quiet.wav"
    ff.run(["-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1", str(silence)])
    from chalicelib.render.graph import AudioInput

    profile = EncodingProfile.for_canvas(Canvas(width=160, height=96, fps=10))
    mixed = tmp_path / "mixed.m4a"
    voice = VoiceInput(str(silence), start=1.0, length=1.0)
    ff.run(audio_args([AudioInput(str(bed), 0, 3.0)], 3.0, profile, str(mixed), [voice]))
    x = pcm(mixed, tmp_path)
    level = [rms(x[round(t * RATE) : round((t + 0.1) * RATE)]) for t in np.arange(0, 2.9, 0.1)]
    # THEN the bed is 12 dB down while the voice speaks, at full level away from it …
    assert level[15] / level[3] == pytest.approx(0.25, abs=0.03)
    assert level[27] / level[3] == pytest.approx(1.0, abs=0.05)
    # … and it goes down gradually (a ramp even in dB: no 100 ms window steps by 4 dB)
    steps = [abs(20 * np.log10(b / a)) for a, b in pairwise(level[2:26])]
    assert max(steps) < 4.0 and sorted(steps)[-3] > 2.0


def test_the_same_line_is_spoken_once(voiced: Campaign, out: Path, cache: SegmentCache) -> None:
    lt = load_template(voiced.template)
    calls: list[str] = []

    class Counting(EspeakSpeech):
        def synthesize(self, request: SpeechRequest) -> Speech:
            calls.append(request.text)
            return super().synthesize(request)

    engine = Counting()
    for record in ({"first_name": "Ana", "city": "Oslo"}, {"first_name": "Ana", "city": "Rome"}):
        speak(bind(lt, record), engine, cache.store, out / "clips")
    speak(bind(lt, {"first_name": "Bob"}), engine, cache.store, out / "clips")
    assert calls == ["Hi Ana, welcome aboard.", "Hi Bob, welcome aboard."]
    assert len([k for k, _ in cache.store.list("voice/") if k.endswith(".wav")]) == 2


LONG_NAME = "Maximiliana Konstantinopoulou-Vanderbilt " * 3


@pytest.mark.parametrize("overflow", ["speed", "error"])
def test_a_line_too_long_for_its_window_is_refused(
    campaign: Campaign, cache: SegmentCache, out: Path, overflow: str
) -> None:
    campaign.write_template(VOICED.replace("OVERFLOW", overflow))
    plan = bind(load_template(campaign.template), {"first_name": LONG_NAME})
    with pytest.raises(VoiceOverflowError) as info:
        speak(plan, EspeakSpeech(), cache.store, out / "clips")
    assert info.value.field == "scenes[1].layers[1]"
    assert info.value.code == "voice_overflow"


def test_speed_fits_a_slightly_long_line(
    campaign: Campaign, cache: SegmentCache, out: Path
) -> None:
    campaign.write_template(
        VOICED.replace("OVERFLOW", "speed").replace("start: 0.3", "start: 1.15")
    )
    plan = speak(
        bind(load_template(campaign.template), {"first_name": "Alexandra"}),
        EspeakSpeech(),
        cache.store,
        out / "c",
    )
    cue = plan.voices[0]
    assert cue.duration > cue.window and 1 < cue.tempo <= 1.15
    assert cue.duration / cue.tempo == pytest.approx(cue.window, abs=0.01)


def test_extend_grows_the_scene(campaign: Campaign, cache: SegmentCache, out: Path) -> None:
    campaign.write_template(VOICED.replace("OVERFLOW", "extend"))
    plan = bind(load_template(campaign.template), {"first_name": LONG_NAME})
    result = render(plan, out / "long.mp4", cache=cache, speech=EspeakSpeech())
    assert result.plan is not None
    cue = result.plan.voices[0]
    greeting = result.plan.scenes[1]
    assert greeting.duration > 3.0 and greeting.duration >= cue.duration + 0.3
    assert result.plan.scenes[2].start == pytest.approx(1.0 + greeting.duration)
    assert result.duration == pytest.approx(result.plan.duration, abs=0.1)


def test_an_engine_failure_fails_that_recipient_alone(
    voiced: Campaign, cache: SegmentCache, tmp_path: Path
) -> None:
    class Broken:
        name = "broken"

        def has_voice(self, voice: str) -> bool:
            return True

        def synthesize(self, request: SpeechRequest) -> Speech:
            raise SpeechError("timed out after 30 s")

    outputs = LocalBlobStore(tmp_path / "outputs")
    job = make_job(load_template(voiced.template), {"first_name": "Ana"}, "ana", 2)
    result = render_recipient(job, outputs, cache, speech=Broken())
    assert (result.status, result.code) == (Status.failed, "voice_failed")
    assert result.field == "scenes[1].layers[1]" and "timed out" in (result.reason or "")
    # nothing half-written: no video, no poster, no clip
    assert outputs.list() == [] and cache.store.list("voice/") == []
    assert cache.store.list("audio/") == []


def test_an_espeak_line_past_its_deadline_fails_that_recipient_alone(
    voiced: Campaign, cache: SegmentCache, tmp_path: Path
) -> None:
    # The real engine, given no time at all: it stops at its first audio and says why.
    outputs = LocalBlobStore(tmp_path / "outputs")
    job = make_job(load_template(voiced.template), {"first_name": "Ana"}, "ana", 2)
    result = render_recipient(job, outputs, cache, speech=EspeakSpeech(timeout=0))
    assert (result.status, result.code) == (Status.failed, "voice_failed")
    assert result.field == "scenes[1].layers[1]"
    assert "espeak-ng timed out" in (result.reason or "")
    assert outputs.list() == [] and cache.store.list("voice/") == []
    # The next recipient, with time to speak, renders.
    job = make_job(load_template(voiced.template), {"first_name": "Ana"}, "ana2", 2)
    assert render_recipient(job, outputs, cache, speech=EspeakSpeech()).status is Status.rendered


def test_without_an_engine_a_voiced_render_fails_naming_the_line(
    voiced: Campaign, out: Path
) -> None:
    plan = bind(load_template(voiced.template), {"first_name": "Ana"})
    with pytest.raises(VoiceError, match="no speech engine") as info:
        render(plan, out / "x.mp4")
    assert info.value.field == "scenes[1].layers[1]"
    assert list(out.iterdir()) == []


def test_voice_lines_join_the_captions(voiced: Campaign, cache: SegmentCache, out: Path) -> None:
    plan = speak(
        bind(load_template(voiced.template), {"first_name": "Ana", "city": "Oslo"}),
        EspeakSpeech(),
        cache.store,
        out / "c",
    )
    cues = captions(plan)
    spoken = [c for c in cues if "welcome" in c.text]
    assert len(spoken) == 1
    assert spoken[0].text == "Hi Ana welcome aboard"  # word marks, grouped
    assert spoken[0].start == pytest.approx(1.3, abs=0.05)
    assert spoken[0].end <= 4.0


def test_a_stream_carries_the_voice_in_its_audio_rendition(
    voiced: Campaign, cache: SegmentCache, out: Path
) -> None:
    from chalicelib.render.hls import AudioGroup, plan_stream

    lt = load_template(voiced.template)

    def stream(record: dict[str, str]) -> tuple[AudioGroup, ...]:
        plan = speak(bind(lt, record), EspeakSpeech(), cache.store, out / "c")
        return plan_stream(plan).audio

    ana, ana_rome, bob = (
        stream({"first_name": "Ana", "city": "Oslo"}),
        stream({"first_name": "Ana", "city": "Rome"}),
        stream({"first_name": "Bob", "city": "Oslo"}),
    )
    # The audio chunks are keyed by what is said: the same for two Anas; for Bob, another
    # where the line is heard (personal chunks), the same elsewhere.
    assert [g.key for g in ana] == [g.key for g in ana_rome]
    pairs = list(zip(ana, bob, strict=True))
    assert [a.key != b.key for a, b in pairs] == [a.personal or b.personal for a, b in pairs]
    assert any(g.personal for g in ana)
    assert all(g.chunks[0].personal == g.personal for g in ana)


def test_a_voiced_render_with_polly_on_moto(
    voiced: Campaign, out: Path, cache: SegmentCache
) -> None:
    # moto's Polly answers any line with a few silent samples: what is checked is the way
    # through (SSML, voices per engine, the clip cached, the mix), not the sound.
    import boto3
    from moto import mock_aws

    from chalicelib.adapters.polly import PollySpeech

    voiced.write_template(
        VOICED.replace("OVERFLOW", "speed").replace(
            "voices: {en_US: en-us}", "voices: {en_US: {espeak: en-us, polly: Joanna}}"
        )
    )
    with mock_aws():
        polly = PollySpeech(boto3.client("polly", region_name="us-east-1"))
        plan = bind(load_template(voiced.template), {"first_name": "Ana"})
        result = render(plan, out / "ana.mp4", cache=cache, speech=polly)
    assert result.plan is not None
    cue = result.plan.voices[0]
    assert cue.clip is not None and cache.store.exists(cue.clip)
    assert result.path.is_file() and abs(result.duration - 5.5) < 0.1


def test_a_voiced_video_is_named_by_its_speech_engine(voiced: Campaign) -> None:
    from chalicelib.render.config import RenderConfig

    lt = load_template(voiced.template)
    record = {"first_name": "Ada"}

    def output(speech: str) -> str:
        return make_job(lt, record, "r1", 1, config=RenderConfig(speech=speech)).output_key

    # another engine says the line in another voice: a video made by espeak is not Polly's
    assert output("espeak") == output("espeak")
    assert output("espeak") != output("polly")
    # a video without voice lines is the same whichever engine is configured
    lines = VOICED.splitlines(keepends=True)
    voiced.write_template("".join(line for line in lines if "type: voice" not in line))
    silent = load_template(voiced.template)
    keys = {
        make_job(silent, record, "r1", 1, config=RenderConfig(speech=s)).output_key
        for s in ("espeak", "polly")
    }
    assert len(keys) == 1
