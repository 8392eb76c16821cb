"""A speech engine built on first use: a misconfigured engine fails the voiced renders only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.ports import SpeechSynth
    from chalicelib.speech import LexEntry, Speech, SpeechRequest


class LazySpeech:
    """Wraps the builder of the configured engine; its errors surface at the first line spoken."""

    def __init__(self, build: Callable[[], SpeechSynth]) -> None:
        self._build = build
        self._engine: SpeechSynth | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> SpeechSynth:
        with self._lock:
            if self._engine is None:
                self._engine = self._build()
            return self._engine

    @property
    def name(self) -> str:
        return self.engine.name

    def has_voice(self, voice: str) -> bool:
        return self.engine.has_voice(voice)

    def synthesize(self, request: SpeechRequest) -> Speech:
        return self.engine.synthesize(request)

    def cannot_say(self, entry: LexEntry, voice: str) -> str | None:
        """Why the engine cannot say the entry's IPA, or None (also for engines that say
        IPA as it is, like Polly)."""
        check = getattr(self.engine, "cannot_say", None)
        return check(entry, voice) if check is not None else None
