"""Local speech: libespeak-ng (bundled with its data by the `espeakng-loader` wheel) via ctypes."""

from __future__ import annotations

import ctypes
import re
import threading
import time
from collections.abc import Callable
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

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback
_CHARS_UTF8 = 1
_SSML = 0x10
_RATE, _VOLUME, _PITCH = 1, 2, 3
_EV_END, _EV_WORD, _EV_SENTENCE = 0, 1, 2
NORMAL_WPM = 175  # espeak-ng's default pace: rate 1.0


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
# libespeak-ng keeps one global state: one synthesis at a time in the process.
_LOCK = threading.Lock()
_LIB: dict[str, Any] = {}


def _library() -> tuple[Any, int]:
    if "lib" not in _LIB:
        try:
            import espeakng_loader  # type: ignore[import-untyped]
        except ImportError as exc:
            raise SpeechError("espeak-ng is not installed (pip install espeakng-loader)") from exc
        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise SpeechError(f"espeak-ng failed to start (code {rate})")
        _LIB["lib"], _LIB["rate"] = lib, rate
    return _LIB["lib"], _LIB["rate"]


def apply_aliases(text: str, lexicon: tuple[LexEntry, ...]) -> str:
    """`text` with each lexicon word that has an alias replaced by it (whole words only)."""
    for entry in lexicon:
        if entry.alias:
            pattern = rf"(?<!\w){re.escape(entry.grapheme)}(?!\w)"
            literal = entry.alias.replace("\\", "\\\\")  # a replacement's backslashes are codes
            text = re.sub(pattern, literal, text, flags=re.IGNORECASE)
    return text


class EspeakSpeech:
    """espeak-ng in this process: robotic, real speech, offline; word and sentence marks."""

    name = "espeak"

    def __init__(self, timeout: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock

    def has_voice(self, voice: str) -> bool:
        with _LOCK:
            lib, _ = _library()
            return bool(lib.espeak_SetVoiceByName(voice.encode()) == 0)

    def synthesize(self, request: SpeechRequest) -> Speech:
        # IPA entries are not applied by espeak (it reads its own phoneme codes, not IPA):
        # aliases are, and a lexicon entry meant for espeak should carry one.
        text = apply_aliases(request.text, request.lexicon)
        data = text.encode()
        chunks: list[bytes] = []
        marks: list[Mark] = []
        deadline = [0.0]
        late = [False]

        def collect(wav: Any, count: int, events: Any) -> int:
            # Called for every ~60 ms of audio; returning 1 makes espeak-ng stop this line
            # and drop what is left of it (the next line starts clean).
            if self._clock() >= deadline[0]:
                late[0] = True
                return 1
            if count > 0:
                chunks.append(ctypes.string_at(wav, count * 2))
            i = 0
            while events[i].type != _EV_END:
                ev = events[i]
                if ev.type in (_EV_WORD, _EV_SENTENCE):
                    start = max(0, ev.text_position - 1)
                    length = ev.length if ev.type == _EV_WORD else 0
                    word = text[start : start + length]  # positions count characters
                    kind = MarkKind.word if ev.type == _EV_WORD else MarkKind.sentence
                    marks.append(Mark(kind, ev.audio_position / 1000, word))
                i += 1
            return 0

        callback = _CALLBACK(collect)
        with _LOCK:
            lib, rate = _library()
            if lib.espeak_SetVoiceByName(request.voice.encode()) != 0:
                raise SpeechError(f"espeak-ng has no voice {request.voice!r}")
            lib.espeak_SetSynthCallback(callback)
            lib.espeak_SetParameter(_RATE, max(80, min(450, round(NORMAL_WPM * request.rate))), 0)
            lib.espeak_SetParameter(_PITCH, max(0, min(100, round(50 + request.pitch * 4))), 0)
            lib.espeak_SetParameter(_VOLUME, 100, 0)
            flags = _CHARS_UTF8 | (_SSML if request.ssml else 0)
            deadline[0] = self._clock() + self.timeout
            code = lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, flags, None, None)
        if late[0]:
            raise SpeechError(f"espeak-ng timed out: the line took more than {self.timeout:g}s")
        if code != 0 or not chunks:
            raise SpeechError(f"espeak-ng could not speak the line (code {code})")
        return Speech(pcm_to_wav(b"".join(chunks), rate), tuple(marks))
