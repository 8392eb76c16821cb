"""The adapters' one retry helper: bounded attempts, growing waits, full jitter on request."""

from __future__ import annotations

import pytest

from chalicelib.adapters.retry import GaveUp, Retry


class Busy(Exception):
    pass


def always_busy() -> None:
    raise Busy("busy")


def test_waits_grow_up_to_the_cap_then_it_gives_up() -> None:
    slept: list[float] = []
    retry = Retry(attempts=5, base=0.5, cap=2.0, sleep=slept.append)
    with pytest.raises(GaveUp) as caught:
        retry.run(always_busy, errors=(Busy,), transient=lambda _: True)
    assert caught.value.attempts == 5 and isinstance(caught.value.error, Busy)
    assert slept == [0.5, 1.0, 2.0, 2.0]


def test_jitter_waits_a_random_time_up_to_each_delay() -> None:
    slept: list[float] = []
    retry = Retry(attempts=6, base=0.01, cap=0.1, sleep=slept.append, jitter=True)
    with pytest.raises(GaveUp):
        retry.run(always_busy, errors=(Busy,), transient=lambda _: True)
    # THEN each wait lies between 0 and its delay, and (drawn at random) not the delays
    delays = [retry.delay(n) for n in range(5)]
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.1]
    assert len(slept) == 5 and all(0 <= s <= d for s, d in zip(slept, delays, strict=True))
    assert slept != delays


def test_a_result_after_a_transient_failure() -> None:
    calls: list[int] = []

    def second_time() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Busy("busy")
        return "done"

    retry = Retry(sleep=lambda _: None, jitter=True)
    assert retry.run(second_time, errors=(Busy,), transient=lambda _: True) == "done"
    assert len(calls) == 2
