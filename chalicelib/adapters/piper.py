"""Piper (neural, local) behind the speech port, when a `.onnx` voice model is configured."""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.speech import (
    LexEntry,
    Mark,
    MarkKind,
    Speech,
    SpeechError,
    SpeechRequest,
    pcm_to_wav,
)

# Punctuation right after a word said in IPA goes into its phoneme block: Piper's espeak-ng
# drops punctuation that opens the text after a block, and with it the pause.
_AFTER = ",.;:!?"


def _onnx_errors() -> tuple[type[BaseException], ...]:
    """What onnxruntime raises on a bad model or a failed run (none derive from one base)."""
    from onnxruntime.capi import (  # type: ignore[import-untyped]
        onnxruntime_pybind11_state as state,
    )

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile")
    more = ("NoModel", "EngineError", "RuntimeException", "NotImplemented", "EPFail")
    return tuple(getattr(state, n) for n in names + more if hasattr(state, n))


def ipa_phonemes(entry: LexEntry, id_map: Mapping[str, Sequence[int]], voice: str) -> str:
    """The entry's IPA as the phonemes a Piper voice knows: each symbol as it is, else in its
    decomposed form (Piper's espeak-ng gives accents as combining marks); ValueError naming
    the symbol when the voice has no id for it."""
    said = []
    for symbol in unicodedata.normalize("NFC", entry.ipa or "").strip():
        if symbol in id_map:
            said.append(symbol)
            continue
        parts = unicodedata.normalize("NFD", symbol)
        if all(p in id_map for p in parts):
            said.append(parts)
            continue
        raise ValueError(
            f"the IPA symbol {symbol!r} (U+{ord(symbol):04X}) is not one the piper voice "
            f"{voice} knows"
        )
    return "".join(said)


def lexicon_text(
    text: str, lexicon: tuple[LexEntry, ...], id_map: Mapping[str, Sequence[int]], voice: str
) -> str:
    """`text` with each lexicon word said as its entry says: its IPA as a Piper phoneme block
    `[[…]]` (IPA wins, as on Polly), else (no IPA, or a symbol the voice lacks) its alias.
    One pass: a replacement is never replaced again."""
    text = text.replace("[[", "[ [")  # the line's own brackets are not a phoneme block
    said: dict[str, str] = {}
    for entry in lexicon:
        if entry.ipa:
            try:
                said[entry.grapheme.casefold()] = "[[" + ipa_phonemes(entry, id_map, voice)
                continue
            except ValueError as exc:
                if not entry.alias:
                    raise SpeechError(
                        f"lexicon.yaml: {entry.grapheme}: {exc} (give the entry an alias)"
                    ) from exc
        if entry.alias:  # (also when the voice cannot say the entry's IPA)
            said[entry.grapheme.casefold()] = entry.alias
    if not said:
        return text
    words = "|".join(re.escape(w) for w in sorted(said, key=len, reverse=True))
    pattern = rf"(?<!\w)({words})(?!\w)([{re.escape(_AFTER)}]*)"

    def replace(m: re.Match[str]) -> str:
        out = said[m.group(1).casefold()]
        return out + m.group(2) + "]]" if out.startswith("[[") else out + m.group(2)

    return re.sub(pattern, replace, text, flags=re.IGNORECASE)


class PiperSpeech:
    """One Piper voice model (its `.onnx` and the `.onnx.json` beside it). Sentence marks
    (Piper speaks a sentence at a time); lexicon entries said in IPA or by their alias."""

    name = "piper"

    def __init__(
        self, model: Path, timeout: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if model.suffix != ".onnx":
            raise SpeechError(f"REEL_PIPER_MODEL: {model.name} is not a .onnx voice model")
        if not model.is_file():
            raise SpeechError(f"REEL_PIPER_MODEL: no voice model at {model}")
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            raise SpeechError(f"REEL_PIPER_MODEL: its config {config.name} is missing")
        self.model = model
        self.timeout = timeout
        self._clock = clock
        self._voice: Any = None
        self._lock = threading.Lock()

    def has_voice(self, voice: str) -> bool:
        # One model is one voice: templates name it by the model's stem (or 'default').
        return voice in (self.model.stem, "default")

    def cannot_say(self, entry: LexEntry, voice: str) -> str | None:
        """Why the model cannot say the entry's IPA (a symbol it has no id for), or None."""
        if not entry.ipa:
            return None
        with self._lock:
            id_map = self._load().config.phoneme_id_map
        try:
            ipa_phonemes(entry, id_map, self.model.stem)
        except ValueError as exc:
            return str(exc)
        return None

    def _load(self) -> Any:
        if self._voice is None:
            try:
                from piper import PiperVoice  # type: ignore[import-not-found,unused-ignore]
            except ImportError as exc:
                raise SpeechError("piper is not installed (pip install piper-tts)") from exc
            bad_model: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError)
            bad_model += _onnx_errors()
            try:
                self._voice = PiperVoice.load(str(self.model))
            except bad_model as exc:
                raise SpeechError(
                    f"REEL_PIPER_MODEL: piper cannot load {self.model.name}: {exc}"
                ) from exc
        return self._voice

    def synthesize(self, request: SpeechRequest) -> Speech:
        if request.ssml:
            raise SpeechError("piper does not read SSML: give the line as text")
        if not self.has_voice(request.voice):
            raise SpeechError(
                f"piper has no voice {request.voice!r} (its model speaks as "
                f"{self.model.stem!r} or 'default')"
            )
        with self._lock:
            voice = self._load()
            from piper import SynthesisConfig  # type: ignore[import-not-found,unused-ignore]

            text = lexicon_text(
                request.text, request.lexicon, voice.config.phoneme_id_map, self.model.stem
            )
            rate = int(voice.config.sample_rate)
            config = SynthesisConfig(length_scale=1 / request.rate)
            deadline = self._clock() + self.timeout
            pcm: list[bytes] = []
            marks: list[Mark] = []
            samples = 0
            failed: tuple[type[BaseException], ...] = (ValueError, KeyError, RuntimeError)
            failed += _onnx_errors()
            try:
                # One chunk a sentence: the deadline is checked between them (a sentence's
                # inference cannot be stopped halfway).
                for chunk in voice.synthesize(text, syn_config=config):
                    marks.append(Mark(MarkKind.sentence, samples / rate, ""))
                    data = chunk.audio_int16_bytes
                    pcm.append(data)
                    samples += len(data) // 2
                    if self._clock() >= deadline:
                        raise SpeechError(
                            f"piper timed out: the line took more than {self.timeout:g}s"
                        )
            except failed as exc:
                raise SpeechError(f"piper could not speak the line: {exc}") from exc
        if not samples:
            raise SpeechError("piper could not speak the line: it gave no audio")
        return Speech(pcm_to_wav(b"".join(pcm), rate), tuple(marks))
