"""Piper (neural, local) behind the speech port, when a `.onnx` voice model is configured."""

from __future__ import annotations

import io
import threading
import wave
from pathlib import Path
from typing import Any

from chalicelib.adapters.espeak import apply_aliases
from chalicelib.speech import Speech, SpeechError, SpeechRequest


class PiperSpeech:
    """One Piper voice model (its `.onnx` and the `.onnx.json` beside it). No marks: captions
    fall back to sentence timings spread over the clip."""

    name = "piper"

    def __init__(self, model: Path) -> None:
        if model.suffix != ".onnx":
            raise SpeechError(f"REEL_PIPER_MODEL: {model.name} is not a .onnx voice model")
        if not model.is_file():
            raise SpeechError(f"REEL_PIPER_MODEL: no voice model at {model}")
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            raise SpeechError(f"REEL_PIPER_MODEL: its config {config.name} is missing")
        self.model = model
        self._voice: Any = None
        self._lock = threading.Lock()

    def has_voice(self, voice: str) -> bool:
        # One model is one voice: templates name it by the model's stem (or 'default').
        return voice in (self.model.stem, "default")

    def _load(self) -> Any:
        if self._voice is None:
            try:
                from piper import PiperVoice  # type: ignore[import-not-found]
            except ImportError as exc:
                raise SpeechError("piper is not installed (pip install piper-tts)") from exc
            self._voice = PiperVoice.load(str(self.model))
        return self._voice

    def synthesize(self, request: SpeechRequest) -> Speech:
        if request.ssml:
            raise SpeechError("piper does not read SSML: give the line as text")
        text = apply_aliases(request.text, request.lexicon)
        with self._lock:
            voice = self._load()
            from piper import SynthesisConfig

            buf = io.BytesIO()
            with wave.open(buf, "wb") as out:
                voice.synthesize_wav(
                    text, out, syn_config=SynthesisConfig(length_scale=1 / request.rate)
                )
        return Speech(buf.getvalue())
