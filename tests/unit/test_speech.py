"""The speech port: espeak-ng (bundled wheel, real synthesis), Polly on moto, Piper's
configuration errors, and the engine the settings choose."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from chalicelib import bootstrap
from chalicelib.adapters.espeak import EspeakSpeech, apply_aliases
from chalicelib.adapters.piper import PiperSpeech
from chalicelib.adapters.polly import PollySpeech, lexicon_name, pls, ssml
from chalicelib.settings import Settings
from chalicelib.speech import LexEntry, MarkKind, SpeechError, SpeechRequest


def test_espeak_speaks_with_word_and_sentence_marks() -> None:
    speech = EspeakSpeech().synthesize(SpeechRequest("Hi Ana, welcome. See you.", "en-us"))
    with wave.open(io.BytesIO(speech.wav)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        samples = w.readframes(w.getnframes())
    assert 0.8 < speech.duration < 5
    assert any(samples[i] for i in range(0, len(samples), 2))  # not silence
    words = [m.text for m in speech.marks if m.kind is MarkKind.word]
    assert words == ["Hi", "Ana", "welcome", "See", "you"]
    sentences = [m.time for m in speech.marks if m.kind is MarkKind.sentence]
    assert len(sentences) == 2 and sentences[1] > 0.3
    times = [m.time for m in speech.marks if m.kind is MarkKind.word]
    assert times == sorted(times)


def test_espeak_rate_makes_a_line_shorter() -> None:
    e = EspeakSpeech()
    normal = e.synthesize(SpeechRequest("Welcome aboard, Alexandra.", "en-us")).duration
    fast = e.synthesize(SpeechRequest("Welcome aboard, Alexandra.", "en-us", rate=1.5)).duration
    assert fast < normal * 0.85


def test_espeak_voices_and_unknown_voice() -> None:
    e = EspeakSpeech()
    assert e.has_voice("en-us") and e.has_voice("fr") and e.has_voice("de")
    assert not e.has_voice("klingon-xx")
    with pytest.raises(SpeechError, match="no voice"):
        e.synthesize(SpeechRequest("Hello", "klingon-xx"))


def test_aliases_replace_whole_words_only() -> None:
    lex = (LexEntry("Siobhan", alias="Shivawn"),)
    assert apply_aliases("Hi Siobhan, not Siobhanne.", lex) == "Hi Shivawn, not Siobhanne."


# ── Polly on moto ──────────────────────────────────────────────────────────────────────────


@pytest.fixture
def polly() -> Iterator[PollySpeech]:
    with mock_aws():
        yield PollySpeech(boto3.client("polly", region_name="us-east-1"), engine="neural")


def test_polly_voices(polly: PollySpeech) -> None:
    assert polly.has_voice("Joanna")
    assert not polly.has_voice("Nobody")


def test_polly_speaks_pcm_as_wav_and_puts_the_lexicon(polly: PollySpeech) -> None:
    lex = (LexEntry("Siobhan", alias="Shivawn"), LexEntry("Nguyen", ipa="wɪn"))
    speech = polly.synthesize(SpeechRequest("Hi Siobhan & co", "Joanna", lexicon=lex))
    with wave.open(io.BytesIO(speech.wav)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
    name = lexicon_name(pls(lex))
    stored = polly.client.get_lexicon(Name=name)["Lexicon"]["Content"]
    assert "<alias>Shivawn</alias>" in stored and "<phoneme>wɪn</phoneme>" in stored
    # The same lexicon again is not put again (the adapter remembers it).
    polly.synthesize(SpeechRequest("Hi again", "Joanna", lexicon=lex))
    assert [x["Name"] for x in polly.client.list_lexicons()["Lexicons"]] == [name]


def test_polly_unknown_voice_is_a_speech_error(polly: PollySpeech) -> None:
    with pytest.raises(SpeechError, match="Polly could not speak"):
        polly.synthesize(SpeechRequest("Hello", "Nobody"))


def test_polly_reads_word_marks() -> None:
    # moto answers marks with placeholder bytes: the parsing is checked on Polly's own format.
    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self) -> bytes:
            return self.data

    marks = "\n".join(
        json.dumps(m)
        for m in (
            {"time": 6, "type": "word", "start": 7, "end": 9, "value": "Hi"},
            {"time": 373, "type": "word", "start": 10, "end": 13, "value": "Ana"},
        )
    ).encode()

    class Client:
        def synthesize_speech(self, **kw: object) -> dict[str, object]:
            if kw["OutputFormat"] == "json":
                assert kw["SpeechMarkTypes"] == ["word"] and kw["TextType"] == "ssml"
                return {"AudioStream": Body(marks)}
            return {"AudioStream": Body(b"\x00\x01" * 1600)}

    speech = PollySpeech(Client()).synthesize(SpeechRequest("Hi Ana", "Joanna"))  # type: ignore[arg-type]
    assert [(m.time, m.text) for m in speech.marks] == [(0.006, "Hi"), (0.373, "Ana")]
    assert speech.duration == pytest.approx(0.1)


def test_polly_ssml_escapes_text_and_carries_the_rate() -> None:
    assert (
        ssml(SpeechRequest("Tom & <Jerry>", "Joanna")) == "<speak>Tom &amp; &lt;Jerry&gt;</speak>"
    )
    fast = ssml(SpeechRequest("Hi", "Joanna", rate=1.1))
    assert fast == '<speak><prosody rate="110%">Hi</prosody></speak>'
    own = "<speak>Hi <break time='1s'/></speak>"
    assert ssml(SpeechRequest(own, "Joanna", ssml=True)) == own


# ── Piper: configuration only (no model is downloaded in tests) ────────────────────────────


def test_piper_refuses_a_missing_or_wrong_model(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match=r"not a \.onnx"):
        PiperSpeech(tmp_path / "voice.bin")
    with pytest.raises(SpeechError, match="no voice model"):
        PiperSpeech(tmp_path / "voice.onnx")
    (tmp_path / "voice.onnx").write_bytes(b"x")
    with pytest.raises(SpeechError, match=r"voice\.onnx\.json is missing"):
        PiperSpeech(tmp_path / "voice.onnx")


def test_piper_without_the_package_fails_the_line(tmp_path: Path) -> None:
    # piper-tts is not a dependency (its runtime is large): without it, the line fails clearly.
    import importlib.util

    if importlib.util.find_spec("piper") is not None:
        pytest.skip("piper-tts is installed here")
    (tmp_path / "fr_FR-siwis.onnx").write_bytes(b"x")
    (tmp_path / "fr_FR-siwis.onnx.json").write_text("{}")
    piper = PiperSpeech(tmp_path / "fr_FR-siwis.onnx")
    assert piper.has_voice("fr_FR-siwis") and not piper.has_voice("en-us")
    with pytest.raises(SpeechError, match="pip install piper-tts"):
        piper.synthesize(SpeechRequest("Salut", "fr_FR-siwis"))


# ── the engine the settings choose ─────────────────────────────────────────────────────────


def test_settings_choose_the_engine(tmp_path: Path) -> None:
    assert bootstrap.speech(Settings(backend="local")).name == "espeak"
    with mock_aws():
        assert bootstrap.speech(Settings(backend="aws")).name == "polly"
    with pytest.raises(SpeechError, match="REEL_PIPER_MODEL"):
        bootstrap.speech(Settings(speech_engine="piper"))
    with pytest.raises(SpeechError, match="no voice model"):
        bootstrap.speech(Settings(piper_model=tmp_path / "x.onnx"))
