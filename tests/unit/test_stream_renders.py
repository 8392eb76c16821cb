"""LambdaRenders (the AWS side of just-in-time streams) with fakes: asynchronous invocations in
deadline order, one dispatch per lease, and a short wait made of a few looks, never a poll."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.landing.stream import LambdaRenders, RenderJob
from chalicelib.services.streams import StreamSource

SOURCE = StreamSource(
    token="t", campaign_id="tiny", recipient_id="ada", version="v1", data_hash="h", data={"a": 1}
)


class FakeLambda:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kw: Any) -> dict[str, Any]:
        self.calls.append({**kw, "Payload": json.loads(kw["Payload"])})
        return {"StatusCode": 202}


class FakeClaims:
    def __init__(self) -> None:
        self.held: dict[str, float] = {}

    def claim(self, key: str, expires_at: float) -> bool:
        if key in self.held and self.held[key] > CLOCK[0]:
            return False
        self.held[key] = expires_at
        return True


class FakeStore:
    def __init__(self, appears_after: int | None = None) -> None:
        self.looks = 0
        self.appears_after = appears_after

    def exists(self, key: str) -> bool:
        self.looks += 1
        return self.appears_after is not None and self.looks > self.appears_after


CLOCK = [1000.0]


def job(key: str, index: int) -> RenderJob:
    return RenderJob(key, f"hls/p/{key[:2]}/{key}.m4s", SOURCE, "96p", index, None, None)  # type: ignore[arg-type]


def renders(store: FakeStore, sleeps: list[float]) -> tuple[LambdaRenders, FakeLambda]:
    client = FakeLambda()
    r = LambdaRenders(
        client,  # type: ignore[arg-type]
        "reel-render",
        claims=FakeClaims(),
        store=store,  # type: ignore[arg-type]
        lease=15.0,
        clock=lambda: CLOCK[0],
        sleep=sleeps.append,
    )
    return r, client


def test_groups_go_by_asynchronous_invocation_earliest_deadline_first_once_per_lease() -> None:
    r, client = renders(FakeStore(), [])
    a, b, c = job("a" * 64, 0), job("b" * 64, 1), job("c" * 64, 2)
    # WHEN a playlist starts three groups (given out of order) and a second request repeats it
    r.start([(5.0, c), (1.0, a), (3.0, b)])
    r.start([(0.5, c), (1.0, a)])
    # THEN each is invoked once, asynchronously, earliest deadline first, named by its place
    assert [call["InvocationType"] for call in client.calls] == ["Event"] * 3
    assert [call["Payload"]["key"] for call in client.calls] == ["a" * 64, "b" * 64, "c" * 64]
    first = client.calls[0]["Payload"]
    assert first == {
        "action": "hls_group",
        "campaign_id": "tiny",
        "version": "v1",
        "data": {"a": 1},
        "rendition": "96p",
        "index": 0,
        "key": "a" * 64,
    }
    # AND once the lease has passed (a crashed or frozen render), the next request dispatches
    # the group again
    CLOCK[0] += 16
    r.start([(0.0, a)])
    assert [call["Payload"]["key"] for call in client.calls][-1] == "a" * 64
    assert len(client.calls) == 4


def test_a_missing_chunk_is_looked_for_a_few_times_with_growing_pauses() -> None:
    sleeps: list[float] = []
    store = FakeStore()  # never appears
    r, _ = renders(store, sleeps)
    assert r.wait(job("d" * 64, 0), 2.0) is False
    # 0.1 + 0.2 + 0.4 + 0.8 + 0.5: about 2 s in all, six looks (not a 0.2 s poll: ten)
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 0.5])
    assert store.looks == 6


def test_a_chunk_stored_meanwhile_is_answered_as_soon_as_it_is_seen() -> None:
    sleeps: list[float] = []
    r, _ = renders(FakeStore(appears_after=2), sleeps)
    assert r.wait(job("e" * 64, 0), 2.0) is True
    assert sleeps == [0.1, 0.2]
