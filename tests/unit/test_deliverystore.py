"""The DeliveryStore contract, run against every backend: SQLite and DynamoDB (on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoDeliveryStore
from chalicelib.adapters.sqlite import SqliteDeliveryStore
from chalicelib.connectors.base import Delivery, DeliveryStatus, Outgoing
from chalicelib.ports import DeliveryStore
from tests.aws import create_jobs_table

T0 = 1_714_564_800.25  # 2024-05-01T12:00:00.250Z


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryStore]:
    if request.param == "sqlite":
        yield SqliteDeliveryStore(tmp_path / "reel.db")
        return
    with mock_aws():
        client = create_jobs_table("reel-jobs")

        def no_scan(**_: object) -> None:
            raise AssertionError("DynamoDeliveryStore must never Scan the table")

        client.scan = no_scan  # type: ignore[method-assign]
        yield DynamoDeliveryStore(client, "reel-jobs")


def out(key: str, connector: str = "webhook", **fields: str) -> Outgoing:
    return Outgoing(
        key=key,
        connector=connector,
        action=fields.get("action", "video.played"),
        campaign_id="spring",
        recipient_id="r-1",
        data={"event": {"id": f"evt-{key}"}},
    )


def keys(deliveries: list[Delivery]) -> list[str]:
    return [d.key for d in deliveries]


def moved(d: Delivery, **update: object) -> Delivery:
    return d.model_copy(update=update)


def test_add_stores_pending_deliveries_due_now(store: DeliveryStore) -> None:
    assert store.add([out("a"), out("b")], T0) == 2
    d = store.get("a")
    assert d is not None
    assert d.out == out("a")
    assert d.status is DeliveryStatus.pending
    assert (d.attempts, d.next_at, d.created_at, d.updated_at) == (0, T0, T0, T0)
    assert d.last_error is None
    assert store.get("nope") is None


def test_adding_twice_keeps_the_first(store: DeliveryStore) -> None:
    # GIVEN a delivery that was attempted once
    store.add([out("a", action="video.played")], T0)
    first = store.get("a")
    assert first is not None
    store.save(moved(first, attempts=1, next_at=T0 + 30, updated_at=T0 + 1, last_error="503"))
    # WHEN the same key is added again (the message was relayed twice), with another body
    added = store.add([out("a", action="video.other"), out("b")], T0 + 5)
    # THEN only the new one counts, and the first keeps its body and its state
    assert added == 1
    again = store.get("a")
    assert again is not None
    assert again.out.action == "video.played"
    assert (again.attempts, again.next_at, again.last_error) == (1, T0 + 30, "503")
    assert store.add([out("c"), out("c")], T0) == 1  # a duplicate within one call, too
    # AND the index holds it once
    assert keys(store.due(T0 + 100)).count("a") == 1
    assert keys(store.by_status(DeliveryStatus.pending)).count("a") == 1


def test_due_respects_next_at_and_status_oldest_first_with_a_limit(
    store: DeliveryStore,
) -> None:
    # GIVEN deliveries added at different times, one put off, one delivered
    store.add([out("late")], T0 + 20)
    store.add([out("first")], T0)
    store.add([out("second")], T0 + 10)
    store.add([out("done")], T0 + 5)
    store.add([out("later")], T0 + 1)
    done, later = store.get("done"), store.get("later")
    assert done is not None and later is not None
    store.save(moved(done, status=DeliveryStatus.delivered, attempts=1, updated_at=T0 + 6))
    store.save(moved(later, attempts=1, next_at=T0 + 60, updated_at=T0 + 2))
    # THEN due lists the pending ones whose time has come, oldest next_at first
    assert keys(store.due(T0 + 10)) == ["first", "second"]  # next_at == now is due
    assert keys(store.due(T0 + 9.999)) == ["first"]
    assert keys(store.due(T0 - 1)) == []
    assert keys(store.due(T0 + 30)) == ["first", "second", "late"]
    assert keys(store.due(T0 + 60)) == ["first", "second", "late", "later"]
    assert keys(store.due(T0 + 60, limit=2)) == ["first", "second"]
    assert store.due(T0 + 60, limit=0) == []


def test_save_changes_status_and_moves_between_by_status_lists(store: DeliveryStore) -> None:
    store.add([out("a"), out("b")], T0)
    a = store.get("a")
    assert a is not None
    assert set(keys(store.by_status(DeliveryStatus.pending))) == {"a", "b"}
    # WHEN an attempt fails for good
    failed = moved(
        a, status=DeliveryStatus.failed, attempts=1, last_error="400 bad", updated_at=T0 + 1
    )
    store.save(failed)
    # THEN it is stored as such, no longer due, and listed under its new status only
    assert store.get("a") == failed
    assert keys(store.due(T0 + 100)) == ["b"]
    assert keys(store.by_status(DeliveryStatus.pending)) == ["b"]
    assert keys(store.by_status(DeliveryStatus.failed)) == ["a"]
    assert store.by_status(DeliveryStatus.failed)[0] == failed
    assert store.by_status(DeliveryStatus.delivered) == []
    # WHEN it is redelivered (pending again, due now) and then delivered
    again = moved(failed, status=DeliveryStatus.pending, attempts=0, next_at=T0 + 2)
    store.save(moved(again, last_error=None, updated_at=T0 + 2))
    assert keys(store.due(T0 + 2)) == ["b", "a"]
    assert store.by_status(DeliveryStatus.failed) == []
    delivered = moved(again, status=DeliveryStatus.delivered, attempts=1, updated_at=T0 + 3)
    store.save(delivered)
    assert keys(store.by_status(DeliveryStatus.delivered)) == ["a"]
    assert keys(store.by_status(DeliveryStatus.pending)) == ["b"]
    assert keys(store.due(T0 + 100)) == ["b"]
    # AND saving the same state again changes nothing
    store.save(delivered)
    assert store.by_status(DeliveryStatus.delivered) == [delivered]


def test_save_of_an_unknown_delivery_stores_nothing(store: DeliveryStore) -> None:
    store.add([out("a")], T0)
    a = store.get("a")
    assert a is not None
    store.save(a.model_copy(update={"out": out("ghost")}))
    assert store.get("ghost") is None
    assert keys(store.by_status()) == ["a"]


def test_by_status_is_most_recently_updated_first(store: DeliveryStore) -> None:
    store.add([out("a"), out("b"), out("c"), out("d")], T0)
    for i, (key, status) in enumerate(
        [
            ("c", DeliveryStatus.delivered),
            ("a", DeliveryStatus.failed),
            ("d", DeliveryStatus.delivered),
            ("b", DeliveryStatus.pending),
        ],
        start=1,
    ):
        d = store.get(key)
        assert d is not None
        store.save(moved(d, status=status, attempts=1, updated_at=T0 + i))
    assert keys(store.by_status(DeliveryStatus.delivered)) == ["d", "c"]
    assert keys(store.by_status(DeliveryStatus.delivered, limit=1)) == ["d"]
    assert keys(store.by_status()) == ["b", "d", "a", "c"]  # every status
    assert keys(store.by_status(limit=3)) == ["b", "d", "a"]
    assert store.by_status(DeliveryStatus.disabled) == []


def test_disable_enable_disabled(store: DeliveryStore) -> None:
    assert store.disabled() == {}
    store.disable("hubspot", "hubspot answered 410 Gone")
    store.disable("webhook", "gone")
    store.disable("webhook", "gone again")  # the latest reason wins
    assert store.disabled() == {"hubspot": "hubspot answered 410 Gone", "webhook": "gone again"}
    store.enable("webhook")
    store.enable("salesforce")  # not disabled: nothing to do
    assert store.disabled() == {"hubspot": "hubspot answered 410 Gone"}
