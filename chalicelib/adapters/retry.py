"""One small retry helper for the adapters: a bounded number of attempts with exponential
backoff (with full jitter where writers race); the sleep is injectable, so tests replay a fault
without waiting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class GaveUp(Exception):
    """The action failed for good: `error` is its last failure, after `attempts` attempts (1
    when the failure was not worth retrying)."""

    def __init__(self, error: Exception, attempts: int) -> None:
        super().__init__(f"{error} (after {attempts} attempt{'s' if attempts > 1 else ''})")
        self.error = error
        self.attempts = attempts


@dataclass(frozen=True)
class Retry:
    """`attempts` tries in all, waiting `base`·2^n seconds (at most `cap`) after try n; with
    `jitter`, a random time up to that (racing writers then part instead of meeting again)."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    jitter: bool = False

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try `attempt` (counted from 0)."""
        return min(self.cap, self.base * 2.0**attempt)

    def run(
        self,
        action: Callable[[], T],
        *,
        errors: tuple[type[Exception], ...],
        transient: Callable[[Exception], bool],
    ) -> T:
        """`action()`'s result; GaveUp when it raised one of `errors` that is not `transient`,
        or raised transient ones on every attempt. Other exceptions pass through untouched."""
        for attempt in range(max(1, self.attempts)):
            try:
                return action()
            except errors as exc:
                if not transient(exc) or attempt + 1 >= self.attempts:
                    raise GaveUp(exc, attempt + 1) from exc
            delay = self.delay(attempt)
            self.sleep(random.uniform(0, delay) if self.jitter else delay)
        raise AssertionError("unreachable")  # the loop returns or raises
