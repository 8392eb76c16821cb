"""Local speech: libespeak-ng (bundled with its data by the `espeakng-loader` wheel) via ctypes."""

from __future__ import annotations

import ctypes
import re
import threading
import time
import unicodedata
from collections import Counter
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
_PHONEMES = 0x100  # espeakPHONEMES: `[[…]]` in the text is phoneme codes
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
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
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
    return said_as(text, {e.grapheme: e.alias for e in lexicon if e.alias})[0]


def said_as(text: str, say: dict[str, str]) -> tuple[str, list[tuple[int, int, str]]]:
    """`text` with each word of `say` (whole words, any case) replaced by what it maps to, in
    one pass (a replacement is never replaced again); and where each replacement sits in the
    new text (start, end, the word it replaces), to name word marks by what the line says."""
    if not say:
        return text, []
    by_word = {w.casefold(): out for w, out in say.items()}
    words = "|".join(re.escape(w) for w in sorted(by_word, key=len, reverse=True))
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    at = size = 0
    for m in re.finditer(rf"(?<!\w)(?:{words})(?!\w)", text, flags=re.IGNORECASE):
        out.append(text[at : m.start()])
        size += m.start() - at
        replacement = by_word[m.group(0).casefold()]
        spans.append((size, size + len(replacement), m.group(0)))
        out.append(replacement)
        size += len(replacement)
        at = m.end()
    out.append(text[at:])
    return "".join(out), spans


# Words (English, French, German, and names) espeak-ng reads in its two notations, IPA and
# its own phoneme codes: side by side, they are the voice's table from IPA to codes, made
# by espeak-ng itself (its phoneme input reads codes, not IPA).
_CORPUS = """
the cat sat on a mat father bird hot pot caught put boot but bait bite boat bout boy beer
bear tour car four sing finger anchor thin this ship measure vision church judge yes hat
well red love valley about happy city nation butter better music cure near square north
start force letter comma horses bottle button garden hurry air poor Anna Zoe Chloe Kate
Mike Joe Sean Dorothy Xavier
le chat bonjour François été père lune deux peur vin brun bon blanc agneau Paris rouge oui
huit fille joue chien gagner Noël Hélène Éloïse Zoé Jean Thérèse un œuf Léa Chloé Anaïs
Camille Gilles Yves Mathieu Noémie Renée Benoît Aurélie Guillaume feuille lundi parfum
ich ach Buch Bach Mädchen schön Müller über Hütte Köln Straße Zeit Haus Leute Pfanne Tschüss
Jürgen Günther Bär Beet Bitte Bett Boot gut Ring Vater Wasser Zahl Sohn Löwe Hölle Jörg
Björn Uwe Heike Käse Öl Übel Pfeffer Quelle Ähre
"""
_IPA_MODE = 0x02
_SEPARATED = ord("_") << 8  # phonemes parted by "_": the two notations line up
_MARKERS = {"", "|", "||", "!"}  # boundaries espeak-ng writes in codes only
_STRESS = {"ˈ": "'", "ˌ": ","}
# What people type for IPA symbols, as espeak-ng writes them.
_TYPED = str.maketrans({"g": "ɡ", ":": "ː", "'": "ˈ", "\u0361": None, "\u035c": None, ".": None})
_TABLES: dict[str, dict[str, str]] = {}


def _notation(lib: Any, word: str, mode: int) -> list[str]:
    data = ctypes.create_string_buffer(word.encode())
    pointer = ctypes.c_void_p(ctypes.addressof(data))
    said = []
    while pointer.value:
        said.append(lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, mode) or b"")
    return b" ".join(said).decode(errors="replace").split("_")


def _ipa_table(lib: Any, voice: str) -> dict[str, str]:
    """IPA (decomposed) → the current voice's phoneme code, as espeak-ng says the corpus."""
    if voice not in _TABLES:
        seen: dict[str, Counter[str]] = {}
        for word in _CORPUS.split():
            codes = [c.strip() for c in _notation(lib, word, _SEPARATED)]
            if any("(" in c for c in codes):
                continue  # read as another language's word: that language's codes
            codes = [c.lstrip("',") for c in codes if c not in _MARKERS]
            ipa = [i.strip().lstrip("ˈˌ") for i in _notation(lib, word, _IPA_MODE | _SEPARATED)]
            ipa = [unicodedata.normalize("NFD", i) for i in ipa if i.strip()]
            if len(codes) != len(ipa):
                continue
            for code, symbol in zip(codes, ipa, strict=True):
                if code and symbol:
                    seen.setdefault(symbol, Counter())[code] += 1
        _TABLES[voice] = {ipa: codes.most_common(1)[0][0] for ipa, codes in seen.items()}
    return _TABLES[voice]


def ipa_codes(ipa: str, table: dict[str, str]) -> str:
    """`ipa` in espeak-ng's phoneme codes (longest IPA sequence first); ValueError naming
    the first symbol the voice has no code for."""
    text = unicodedata.normalize("NFD", ipa.strip()).translate(_TYPED)
    longest = max((len(k) for k in table), default=1)
    codes = []
    i = 0
    while i < len(text):
        if text[i] in _STRESS or text[i] == " ":
            codes.append(_STRESS.get(text[i], " "))
            i += 1
            continue
        for n in range(min(longest, len(text) - i), 0, -1):
            if text[i : i + n] in table:
                codes.append(table[text[i : i + n]])
                i += n
                break
        else:
            symbol = unicodedata.normalize(
                "NFC", text[i : i + 2] if _combining(text, i) else text[i]
            )
            raise ValueError(f"the IPA symbol {symbol!r} (U+{ord(symbol[0]):04X})")
    return "".join(codes)


def _combining(text: str, i: int) -> bool:
    return i + 1 < len(text) and unicodedata.combining(text[i + 1]) > 0


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

    def cannot_say(self, entry: LexEntry, voice: str) -> str | None:
        """Why `voice` cannot say the entry's IPA (a symbol without a code), or None."""
        if not entry.ipa:
            return None
        with _LOCK:
            lib, _ = _library()
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                return None  # an unknown voice is a problem of its own
            try:
                ipa_codes(entry.ipa, _ipa_table(lib, voice))
            except ValueError as exc:
                return f"{exc} is not one espeak-ng's voice {voice} can say"
        return None

    def _lexicon(self, lib: Any, request: SpeechRequest) -> dict[str, str]:
        """What each lexicon word is said as: its IPA in the voice's phoneme codes `[[…]]`,
        else (a symbol the voice has no code for) its alias; SpeechError naming the entry
        when it has neither."""
        say = {}
        for entry in request.lexicon:
            if entry.ipa:
                try:
                    say[entry.grapheme] = (
                        f"[[{ipa_codes(entry.ipa, _ipa_table(lib, request.voice))}]]"
                    )
                    continue
                except ValueError as exc:
                    if not entry.alias:
                        raise SpeechError(
                            f"lexicon.yaml: {entry.grapheme}: {exc} is not one espeak-ng's "
                            f"voice {request.voice} can say (give the entry an alias)"
                        ) from exc
            if entry.alias:
                say[entry.grapheme] = entry.alias
        return say

    def synthesize(self, request: SpeechRequest) -> Speech:
        chunks: list[bytes] = []
        marks: list[Mark] = []
        deadline = [0.0]
        late = [False]
        text = request.text
        spans: list[tuple[int, int, str]] = []
        named: set[int] = set()

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
                    # A word said by the lexicon is named as the line writes it (once).
                    span = next((k for k, s in enumerate(spans) if s[0] <= start < s[1]), None)
                    if kind is MarkKind.word and span is not None:
                        if span in named:
                            i += 1
                            continue
                        named.add(span)
                        word = spans[span][2]
                    marks.append(Mark(kind, ev.audio_position / 1000, word))
                i += 1
            return 0

        callback = _CALLBACK(collect)
        with _LOCK:
            lib, rate = _library()
            if lib.espeak_SetVoiceByName(request.voice.encode()) != 0:
                raise SpeechError(f"espeak-ng has no voice {request.voice!r}")
            say = self._lexicon(lib, request)
            phonemes = any(v.startswith("[[") for v in say.values())
            if phonemes:
                text = text.replace("[[", "[ [")  # the line's own brackets are not codes
            text, spans[:] = said_as(text, say)
            data = text.encode()
            lib.espeak_SetSynthCallback(callback)
            lib.espeak_SetParameter(_RATE, max(80, min(450, round(NORMAL_WPM * request.rate))), 0)
            lib.espeak_SetParameter(_PITCH, max(0, min(100, round(50 + request.pitch * 4))), 0)
            lib.espeak_SetParameter(_VOLUME, 100, 0)
            flags = _CHARS_UTF8 | (_SSML if request.ssml else 0) | (_PHONEMES if phonemes else 0)
            deadline[0] = self._clock() + self.timeout
            code = lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, flags, None, None)
        if late[0]:
            raise SpeechError(f"espeak-ng timed out: the line took more than {self.timeout:g}s")
        if code != 0 or not chunks:
            raise SpeechError(f"espeak-ng could not speak the line (code {code})")
        return Speech(pcm_to_wav(b"".join(chunks), rate), tuple(marks))
