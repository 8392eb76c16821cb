"""The relay Queue: the contract on the SQLite outbox and SqsQueue (moto), then SQS's batches,
size limits and retries, and the outbox's at-least-once taking."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.adapters.sqlite import SqliteOutbox
from chalicelib.adapters.sqs import MAX_MESSAGE_BYTES, SqsQueue
from chalicelib.ports import Queue
from tests.aws import create_queue


@pytest.fixture
def sqs_queue() -> Iterator[SqsQueue]:
    with mock_aws():
        client, url = create_queue("reel-relay")
        yield SqsQueue(client, url)


def receive_all(queue: SqsQueue) -> list[dict[str, Any]]:
    bodies = []
    while True:
        response = queue.client.receive_message(
            QueueUrl=queue.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]


def message(i: int, padding: int = 0) -> dict[str, Any]:
    return {"type": "event", "event": {"id": f"evt_{i:08d}", "pad": "x" * padding, "n": "é"}}


def count_batches(queue: SqsQueue) -> list[int]:
    """The number of entries of each SendMessageBatch call the queue makes from now on."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Entries"]))

    queue.client.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
    return sizes


# ── every queue: what is put is received, each message whole ───────────────────────────────


@dataclass
class Ends:
    """A queue, and its other end: `received()` takes every message waiting, in order."""

    queue: Queue
    received: Callable[[], list[dict[str, Any]]]


@pytest.fixture(params=["sqlite", "sqs"])
def ends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ends]:
    if request.param == "sqlite":
        outbox = SqliteOutbox(tmp_path / "reel.db")

        def taken() -> list[dict[str, Any]]:
            # another handle on the same file, as the relay worker's is
            relay = SqliteOutbox(tmp_path / "reel.db")
            found = relay.take(limit=1000)
            relay.ack([i for i, _ in found])
            return [m for _, m in found]

        yield Ends(outbox, taken)
        return
    with mock_aws():
        client, url = create_queue("reel-relay")
        sqs = SqsQueue(client, url)
        yield Ends(sqs, lambda: receive_all(sqs))


def test_what_is_put_is_received_whole(ends: Ends) -> None:
    # GIVEN messages put in three calls (one of them empty), with text beyond ASCII
    sent = [message(i) for i in range(12)]
    sent.append({"type": "event", "event": {"id": "evt_x", "name": "Zoë 🎬", "n": [1, 2.5, None]}})
    ends.queue.put(sent[:5])
    ends.queue.put([])
    ends.queue.put(sent[5:])
    # THEN the other end receives each of them once, equal to what was put
    received = ends.received()
    assert sorted(received, key=json.dumps) == sorted(sent, key=json.dumps)


def test_putting_nothing_sends_nothing(ends: Ends) -> None:
    ends.queue.put([])
    assert ends.received() == []


def test_sqs_put_sends_batches_of_ten(sqs_queue: SqsQueue) -> None:
    # GIVEN 25 messages WHEN they are put
    batches = count_batches(sqs_queue)
    sent = [message(i) for i in range(25)]
    sqs_queue.put(sent)
    # THEN three SendMessageBatch calls carried them, and all 25 arrive, each as sent
    assert batches == [10, 10, 5]
    received = receive_all(sqs_queue)
    assert sorted(received, key=lambda m: m["event"]["id"]) == sent
    # AND within each batch, in the order they were sent
    position = {m["event"]["id"]: n for n, m in enumerate(received)}
    for start in (0, 10, 20):
        ids = [m["event"]["id"] for m in sent[start : start + 10]]
        assert sorted(ids, key=position.__getitem__) == ids


def test_sqs_put_nothing(sqs_queue: SqsQueue) -> None:
    batches = count_batches(sqs_queue)
    sqs_queue.put([])
    assert batches == [] and receive_all(sqs_queue) == []


def test_sqs_batches_stay_under_the_batch_size_limit(sqs_queue: SqsQueue) -> None:
    # GIVEN ten messages of 60 KB each (SQS takes 256 KiB per SendMessageBatch call)
    batches = count_batches(sqs_queue)
    sqs_queue.put([message(i, padding=60_000) for i in range(10)])
    # THEN they went four, four and two at a time, and all arrived
    assert batches == [4, 4, 2]
    assert len(receive_all(sqs_queue)) == 10


def test_sqs_an_oversized_message_is_refused(sqs_queue: SqsQueue) -> None:
    batches = count_batches(sqs_queue)
    with pytest.raises(ValueError, match="bytes"):
        sqs_queue.put([message(0), message(1, padding=MAX_MESSAGE_BYTES)])
    # AND nothing was sent (the check comes first)
    assert batches == [] and receive_all(sqs_queue) == []


def test_sqs_a_message_at_the_limit_is_sent(sqs_queue: SqsQueue) -> None:
    overhead = len(json.dumps(message(0), separators=(",", ":")).encode())
    sqs_queue.put([message(0, padding=MAX_MESSAGE_BYTES - overhead)])
    assert len(receive_all(sqs_queue)) == 1


# ── failed entries, on a scripted client ──────────────────────────────────────────────────


@dataclass
class FlakyClient:
    """Answers SendMessageBatch with the next scripted failures: {entry id: sender fault}."""

    failures: list[dict[str, bool]]
    calls: list[list[str]] = field(default_factory=list)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([json.loads(e["MessageBody"])["event"]["id"] for e in Entries])
        script = self.failures.pop(0) if self.failures else {}
        failed = [
            {"Id": e["Id"], "SenderFault": script[e["Id"]], "Code": "InternalError"}
            for e in Entries
            if e["Id"] in script
        ]
        ok = [{"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "x"} for e in Entries]
        return {"Successful": [s for s in ok if s["Id"] not in script], "Failed": failed}


def test_sqs_failed_entries_are_sent_again() -> None:
    # GIVEN SQS failing two entries of the first call, then one of the retry
    client = FlakyClient(failures=[{"1": False, "3": False}, {"3": False}])
    queue = SqsQueue(client, "https://sqs.invalid/q")  # type: ignore[arg-type]
    # WHEN four messages are put
    queue.put([message(i) for i in range(4)])
    # THEN only the failed ones were sent again, until none failed
    assert client.calls == [
        ["evt_00000000", "evt_00000001", "evt_00000002", "evt_00000003"],
        ["evt_00000001", "evt_00000003"],
        ["evt_00000003"],
    ]


def test_sqs_gives_up_after_a_few_attempts() -> None:
    client = FlakyClient(failures=[{"0": False}] * 10)
    queue = SqsQueue(client, "https://sqs.invalid/q")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="InternalError"):
        queue.put([message(0), message(1)])
    assert len(client.calls) == 4


def test_sqs_a_sender_fault_is_not_retried() -> None:
    client = FlakyClient(failures=[{"0": True}])
    queue = SqsQueue(client, "https://sqs.invalid/q")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refused"):
        queue.put([message(0)])
    assert len(client.calls) == 1


# ── the SQLite outbox ─────────────────────────────────────────────────────────────────────


def test_sqlite_outbox_keeps_messages_until_acked(tmp_path: Path) -> None:
    # GIVEN messages taken by the relay, one of them acknowledged
    outbox = SqliteOutbox(tmp_path / "reel.db")
    outbox.put([message(0), message(1)])
    (first, _), (second, _) = outbox.take()
    outbox.ack([first])
    # THEN the other is taken again (at least once): the relay may have died before its ack
    assert outbox.take() == [(second, message(1))]


def test_sqlite_outbox_keeps_messages_in_order(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "reel.db")
    assert outbox.pending() == []
    outbox.put([message(i) for i in range(3)])
    outbox.put([])
    outbox.put([message(3)])
    # AND another handle on the same file sees them (the relay worker's)
    assert SqliteOutbox(tmp_path / "reel.db").pending() == [message(i) for i in range(4)]
