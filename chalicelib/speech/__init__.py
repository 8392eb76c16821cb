"""Speech: what a speech engine is asked (`SpeechRequest`) and gives back (`Speech`), pure."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from enum import StrEnum


class MarkKind(StrEnum):
    word = "word"
    sentence = "sentence"


@dataclass(frozen=True)
class Mark:
    """Where a word or a sentence starts in the clip (seconds), and its text."""

    kind: MarkKind
    time: float
    text: str


@dataclass(frozen=True)
class LexEntry:
    """How a word is said: an alias (other spelling) or an IPA transcription."""

    grapheme: str
    alias: str | None = None
    ipa: str | None = None


@dataclass(frozen=True)
class SpeechRequest:
    """One line to speak. `rate` multiplies the engine's normal pace; `pitch` is in semitones."""

    text: str
    voice: str
    ssml: bool = False
    rate: float = 1.0
    pitch: float = 0.0
    lexicon: tuple[LexEntry, ...] = field(default=())


@dataclass(frozen=True)
class Speech:
    """A spoken clip: a mono 16-bit WAV, and the marks the engine gave (maybe none)."""

    wav: bytes
    marks: tuple[Mark, ...] = ()

    @property
    def duration(self) -> float:
        with wave.open(io.BytesIO(self.wav)) as w:
            return float(w.getnframes() / w.getframerate())


def pcm_to_wav(pcm: bytes, rate: int) -> bytes:
    """Raw mono signed 16-bit little-endian samples as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm[: len(pcm) // 2 * 2])
    return buf.getvalue()


class SpeechError(Exception):
    """An engine could not speak a line (failed, timed out, or is misconfigured)."""
