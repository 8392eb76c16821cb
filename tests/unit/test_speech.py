"""The speech port: espeak-ng (bundled wheel, real synthesis), Polly on moto, Piper (the real
package on a tiny test voice), and the engine the settings choose."""

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


def test_espeak_a_line_past_its_deadline_stops_and_the_next_speaks() -> None:
    looks = [0]

    def clock() -> float:  # each look: one second later
        looks[0] += 1
        return float(looks[0])

    e = EspeakSpeech(timeout=1e9, clock=clock)
    long_line = "This sentence goes on and on, as long lines do. " * 20
    before = e.synthesize(SpeechRequest("Hello there.", "en-us")).duration
    e.timeout, looks[0] = 3, 0
    with pytest.raises(SpeechError, match="espeak-ng timed out: the line took more than 3s"):
        e.synthesize(SpeechRequest(long_line, "en-us"))
    # espeak-ng stopped at once: no audio callback came after the one that said stop.
    assert looks[0] == 4
    # and dropped the rest of the line: the next one is itself alone, at its normal length.
    e.timeout = 1e9
    after = e.synthesize(SpeechRequest("Hello there.", "en-us"))
    assert after.duration == pytest.approx(before, rel=0.01)
    assert [m.text for m in after.marks if m.kind is MarkKind.word] == ["Hello", "there"]


def test_espeak_says_a_lexicon_ipa_in_its_own_phoneme_codes() -> None:
    # The voice's table from IPA to codes is espeak-ng's own (its two notations side by side).
    from chalicelib.adapters.espeak import _ipa_table, _library, ipa_codes

    e = EspeakSpeech()
    assert e.has_voice("en-us")  # the voice is set: its table is read
    table = _ipa_table(_library()[0], "en-us")
    assert ipa_codes("nˈiːv", table) == "n'i:v"
    assert ipa_codes("ʃɪˈvɔːn", table) == "SI'vO:n"
    assert ipa_codes("t͡ʃaɪ", table) == "tSaI"  # tie bars dropped, diphthongs whole
    with pytest.raises(ValueError, match=r"'ʁ' \(U\+0281\)"):
        ipa_codes("ʁoz", table)


def test_espeak_a_lexicon_ipa_changes_what_is_said() -> None:
    e = EspeakSpeech()

    def spoken(text: str, *lex: LexEntry) -> tuple[float, list[tuple[float, str]]]:
        speech = e.synthesize(SpeechRequest(text, "en-us", lexicon=lex))
        return speech.duration, [(m.time, m.text) for m in speech.marks if m.kind is MarkKind.word]

    plain, plain_words = spoken("Hi Niamh, welcome.")  # espeak-ng guesses "nˈaɪəm"
    ipa, ipa_words = spoken("Hi Niamh, welcome.", LexEntry("Niamh", ipa="nˈiːv", alias="Nyam"))
    neeve, neeve_words = spoken("Hi Neeve, welcome.")  # spelled the way the IPA says
    # The IPA wins over the alias: the line is said as "Neeve" is, not as "Niamh" was
    # (espeak-ng's audio varies by a few samples from run to run: lengths and word times).
    assert ipa == pytest.approx(neeve, rel=0.002) and abs(ipa - plain) > 0.01
    assert [t for t, _ in ipa_words] == pytest.approx([t for t, _ in neeve_words], abs=0.005)
    assert ipa_words[2][0] < plain_words[2][0] - 0.01
    # Its word marks name the word as the line writes it (the captions show them).
    assert [w for _, w in ipa_words] == ["Hi", "Niamh", "welcome"]


def test_espeak_ipa_it_cannot_say_falls_back_to_the_alias_or_fails() -> None:
    e = EspeakSpeech()
    only_ipa = (LexEntry("Rose", ipa="ʁoz"),)  # ʁ: no code in the English voice
    with pytest.raises(SpeechError, match=r"lexicon\.yaml: Rose: the IPA symbol 'ʁ'.*en-us"):
        e.synthesize(SpeechRequest("Hi Rose.", "en-us", lexicon=only_ipa))
    both = (LexEntry("Rose", ipa="ʁoz", alias="Rohz"),)
    fallback = e.synthesize(SpeechRequest("Hi Rose.", "en-us", lexicon=both))
    assert fallback.duration == pytest.approx(
        e.synthesize(SpeechRequest("Hi Rohz.", "en-us")).duration, rel=0.002
    )
    # The French voice has the symbol: the same entry is said in IPA there.
    fr = e.synthesize(SpeechRequest("Salut Rose.", "fr", lexicon=only_ipa))
    assert [m.text for m in fr.marks if m.kind is MarkKind.word] == ["Salut", "Rose"]


def test_espeak_reads_a_lines_own_brackets_as_text() -> None:
    # With phoneme codes on (an IPA entry), a line's own "[[" stays text, not codes.
    e = EspeakSpeech()
    lex = (LexEntry("Niamh", ipa="nˈiːv"),)
    speech = e.synthesize(SpeechRequest("Hi Niamh [[tS'aI]] ok", "en-us", lexicon=lex))
    # (read as codes, "tS'aI" would be one word, "chai")
    words = [m.text for m in speech.marks if m.kind is MarkKind.word]
    assert words == ["Hi", "Niamh", "t", "S", "I", "ok"]


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


# ── Piper: the real piper package and onnxruntime, on a tiny test voice (tests/fakes) ──────


@pytest.fixture(scope="module")
def piper_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("piper", reason="piper-tts (a dev dependency) is not installed")
    from tests.fakes.piper_voice import make_voice

    return make_voice(tmp_path_factory.mktemp("piper"))


def test_piper_speaks_through_the_model(piper_model: Path) -> None:
    from tests.fakes.piper_voice import SAMPLE_RATE, phonemes_in

    speech = PiperSpeech(piper_model).synthesize(SpeechRequest("Hi Ana.", "en_US-test-low"))
    with wave.open(io.BytesIO(speech.wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
    # What reached the model is espeak-ng's IPA of the line, through Piper's id map.
    assert phonemes_in(speech.wav) == "hˈaɪʲ ˈɑːnə."
    assert [(m.kind, m.time) for m in speech.marks] == [(MarkKind.sentence, 0.0)]


def test_piper_longer_lines_and_slower_rates_last_longer(piper_model: Path) -> None:
    piper = PiperSpeech(piper_model)
    short = piper.synthesize(SpeechRequest("Hi Ana.", "default")).duration
    longer = piper.synthesize(SpeechRequest("Hi Ana, welcome aboard.", "default")).duration
    slow = piper.synthesize(SpeechRequest("Hi Ana.", "default", rate=0.5)).duration
    assert longer > short * 1.8
    assert slow == pytest.approx(short * 2, rel=0.01)


def test_piper_gives_a_mark_per_sentence(piper_model: Path) -> None:
    speech = PiperSpeech(piper_model).synthesize(SpeechRequest("Hi Ana. See you.", "default"))
    times = [m.time for m in speech.marks]
    assert len(times) == 2 and times[0] == 0 and 0 < times[1] < speech.duration


def test_piper_applies_the_lexicon_alias_and_ipa(piper_model: Path) -> None:
    from tests.fakes.piper_voice import phonemes_in

    piper = PiperSpeech(piper_model)

    def said(text: str, *lex: LexEntry) -> str:
        return phonemes_in(piper.synthesize(SpeechRequest(text, "default", lexicon=lex)).wav)

    plain = said("Hi Nguyen, welcome.")
    assert "nˈuːjɛn" in plain
    # The IPA replaces espeak-ng's guess for that word alone (and wins over an alias).
    ipa = said("Hi Nguyen, welcome.", LexEntry("nguyen", alias="Noo-yen", ipa="wˈɪn"))
    assert ipa == plain.replace("nˈuːjɛn", "wˈɪn")
    assert said("Hi Siobhan.", LexEntry("Siobhan", alias="Shivawn")) == said("Hi Shivawn.")
    # A precomposed symbol the voice lacks (ã) reaches it as espeak-ng gives accents:
    # decomposed (a, then the combining tilde).
    assert "ʒwˈa\u0303w" in said("Hi Joao.", LexEntry("Joao", ipa="ʒwˈ\u00e3w"))


def test_piper_ipa_its_voice_has_no_id_for_falls_back_to_the_alias_or_fails(
    piper_model: Path,
) -> None:
    from tests.fakes.piper_voice import phonemes_in

    piper = PiperSpeech(piper_model)
    lex = (LexEntry("Xhosa", ipa="ǀʰosa☃"),)
    with pytest.raises(SpeechError, match=r"lexicon\.yaml: Xhosa: the IPA symbol '☃'"):
        piper.synthesize(SpeechRequest("Hi Xhosa", "default", lexicon=lex))
    both = (LexEntry("Xhosa", ipa="ǀʰosa☃", alias="Kosa"),)
    fallback = piper.synthesize(SpeechRequest("Hi Xhosa", "default", lexicon=both)).wav
    assert phonemes_in(fallback) == phonemes_in(
        piper.synthesize(SpeechRequest("Hi Kosa", "default")).wav
    )


def test_piper_errors_are_clear(piper_model: Path, tmp_path: Path) -> None:
    piper = PiperSpeech(piper_model)
    with pytest.raises(SpeechError, match="does not read SSML"):
        piper.synthesize(SpeechRequest("<speak>Hi</speak>", "default", ssml=True))
    with pytest.raises(SpeechError, match="piper has no voice 'fr_FR-siwis'"):
        piper.synthesize(SpeechRequest("Salut", "fr_FR-siwis"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    broken.with_name("broken.onnx.json").write_text(
        piper_model.with_name(piper_model.name + ".json").read_text()
    )
    with pytest.raises(SpeechError, match=r"piper cannot load broken\.onnx"):
        PiperSpeech(broken).synthesize(SpeechRequest("Hi", "broken"))


def test_piper_a_line_past_its_deadline_fails_and_the_next_speaks(piper_model: Path) -> None:
    ticks = iter(range(0, 1000, 10))  # each look at the clock: 10 s later
    piper = PiperSpeech(piper_model, timeout=15, clock=lambda: next(ticks))
    with pytest.raises(SpeechError, match="piper timed out: the line took more than 15s"):
        piper.synthesize(SpeechRequest("One. Two. Three. Four.", "default"))
    piper.timeout = 1000
    assert piper.synthesize(SpeechRequest("Hi Ana.", "default")).duration > 0.5


def test_piper_refuses_a_missing_or_wrong_model(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match=r"not a \.onnx"):
        PiperSpeech(tmp_path / "voice.bin")
    with pytest.raises(SpeechError, match="no voice model"):
        PiperSpeech(tmp_path / "voice.onnx")
    (tmp_path / "voice.onnx").write_bytes(b"x")
    with pytest.raises(SpeechError, match=r"voice\.onnx\.json is missing"):
        PiperSpeech(tmp_path / "voice.onnx")


def test_piper_without_the_package_fails_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    (tmp_path / "fr_FR-siwis.onnx").write_bytes(b"x")
    (tmp_path / "fr_FR-siwis.onnx.json").write_text("{}")
    piper = PiperSpeech(tmp_path / "fr_FR-siwis.onnx")
    assert piper.has_voice("fr_FR-siwis") and not piper.has_voice("en-us")
    with pytest.raises(SpeechError, match="pip install piper-tts"):
        piper.synthesize(SpeechRequest("Salut", "fr_FR-siwis"))


# ── the engine the settings choose ─────────────────────────────────────────────────────────


def test_settings_choose_the_engine(tmp_path: Path) -> None:
    assert bootstrap.speech(Settings(backend="local")).name == "espeak"
    # REEL_SPEECH_TIMEOUT reaches the engines that keep the deadline themselves.
    local = bootstrap.speech(Settings(backend="local", speech_timeout=7))
    assert isinstance(local, EspeakSpeech) and local.timeout == 7
    (tmp_path / "v.onnx").write_bytes(b"x")
    (tmp_path / "v.onnx.json").write_text("{}")
    piper = bootstrap.speech(Settings(piper_model=tmp_path / "v.onnx", speech_timeout=7))
    assert isinstance(piper, PiperSpeech) and piper.timeout == 7
    with mock_aws():
        polly = bootstrap.speech(Settings(backend="aws", speech_timeout=7))
        assert isinstance(polly, PollySpeech) and polly.client.meta.config.read_timeout == 7
    with mock_aws():
        assert bootstrap.speech(Settings(backend="aws")).name == "polly"
    with pytest.raises(SpeechError, match="REEL_PIPER_MODEL"):
        bootstrap.speech(Settings(speech_engine="piper"))
    with pytest.raises(SpeechError, match="no voice model"):
        bootstrap.speech(Settings(piper_model=tmp_path / "x.onnx"))
