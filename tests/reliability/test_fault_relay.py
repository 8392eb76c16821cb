"""A CRM down for several attempts, then up, end to end: the player's beacons go through
`POST /events` (the HTTP app), the relay worker runs in its own thread as `reel serve` runs it,
and the signed webhooks go over real HTTP to a fake receiver on 127.0.0.1 that answers 503 at
first and keeps each `webhook-id` once. On the way the relay is restarted mid-outage, and a
delivery is "lost" after the CRM accepted it (the store could not record it), so it is sent
again. Every event arrives; the receiver keeps none twice; nothing is left pending or dead.

(tests/integration/test_relay.py replays outages step by step with a frozen clock; here the
relay runs free, on a clock a thousand times faster than the wall, so its backoff — up to an
hour between attempts — passes in milliseconds.)"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.backends import Backends
from chalicelib.connectors.base import Delivery, DeliveryStatus
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.connectors.webhook import WebhookConnector
from chalicelib.landing.tokens import signed_token
from chalicelib.services import recipients
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import ingest
from tests.conftest import Campaign
from tests.fakes.crm import WEBHOOK_SECRETS, FakeWebhookReceiver

RULES = """\
    rules:
      - id: watched
        when: "event.kind == 'play' || event.kind == 'ended' || event.kind == 'cta_click'"
        do: [{connector: webhook, action: event}]
    """
OUTAGE = 5  # the receiver's first answers are 503
DEADLINE = 30.0


class FastClock:
    """Epoch seconds, frozen until `run`, then passing a thousand times faster than the wall's."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def run(self) -> None:
        self.origin = time.monotonic()

    def __call__(self) -> float:
        if self.origin is None:
            return 1_800_000_000.0
        return 1_800_000_000.0 + (time.monotonic() - self.origin) * 1000


@pytest.fixture
def client(campaign: Campaign, request: pytest.FixtureRequest) -> Client:
    (campaign.root / "rules.yaml").write_text(textwrap.dedent(RULES))
    app_client: Client = request.getfixturevalue("local_app")
    return app_client


def beacon(token: str, rid: str, kinds: list[str]) -> dict[str, Any]:
    events = []
    for kind in kinds:
        event: dict[str, Any] = {"id": f"{rid}-{kind}-0001", "kind": kind, "ts": 1.8e12}
        if kind == "progress":
            event["progress"] = 50
        events.append(event)
    return {"token": token, "events": events}


def post(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.http.post(
        "/events", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert response.status_code == 202, response.body
    return json.loads(response.body)  # type: ignore[no-any-return]


_STARTED: list[RelayWorker] = []


def start_relay(b: Backends, fake: FakeWebhookReceiver, clock: FastClock) -> RelayWorker:
    """The relay worker of a (re)started server."""
    webhook = WebhookConnector(fake.endpoint, list(WEBHOOK_SECRETS), timeout=5)
    worker = RelayWorker(Relay(b, {"webhook": webhook}, clock=clock), b.queue, interval=0.01)
    _STARTED.append(worker)
    worker.start()
    return worker


def stop(worker: RelayWorker) -> None:
    worker.stop()
    worker.join(timeout=10)
    assert not worker.is_alive()


def wait_for(what: str, check: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_crm_down_then_up_gets_every_event_once(
    client: Client, fake_webhook: FakeWebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = bootstrap.backends()
    tokens = {}
    for rid in ("ada", "bo"):
        known = recipients.set_recipient_data(b, "tiny", rid, {"first_name": rid.title()})
        tokens[rid] = signed_token(b.secret, known.token, rid, "tiny")
    # GIVEN a CRM that answers 503 to its next attempts
    fake_webhook.fail_next(OUTAGE, status=503)
    # AND the store fails once to record a delivery the CRM accepted (as a crash right after
    # sending would): that delivery is still pending, and is sent again
    real_save = b.deliveries.save
    lost: list[str] = []

    def save(delivery: Delivery) -> None:
        if delivery.status is DeliveryStatus.delivered and not lost:
            lost.append(delivery.key)
            raise sqlite3.OperationalError("disk I/O error")
        real_save(delivery)

    monkeypatch.setattr(b.deliveries, "save", save)
    clock = FastClock()
    worker = start_relay(b, fake_webhook, clock)
    # WHEN both recipients watch, in beacons the player sends (one of them twice)
    first = post(client, beacon(tokens["ada"], "ada", ["impression", "play", "progress"]))
    assert first == {"received": 3, "stored": 3, "duplicates": 0}
    post(client, beacon(tokens["bo"], "bo", ["play", "ended"]))
    # (with time frozen, each of the three deliveries so far fails once and waits its backoff;
    # then the relay is restarted, the CRM still down, and time runs)
    wait_for("the first failed attempts", lambda: fake_webhook.attempts == 3)
    stop(worker)
    assert fake_webhook.attempts == 3 and len(fake_webhook.payloads) == 0
    worker = start_relay(b, fake_webhook, clock)
    clock.run()
    again = post(client, beacon(tokens["ada"], "ada", ["impression", "play", "progress"]))
    assert again == {"received": 3, "stored": 0, "duplicates": 3}
    post(client, beacon(tokens["ada"], "ada", ["ended", "cta_click"]))
    post(client, beacon(tokens["bo"], "bo", ["cta_click"]))
    expected = sorted(
        (rid, kind) for rid in ("ada", "bo") for kind in ("play", "ended", "cta_click")
    )

    def settled() -> bool:
        return (
            len(fake_webhook.payloads) == len(expected)
            and b.queue.pending() == []  # type: ignore[attr-defined]
            and b.deliveries.due(float("inf")) == []
        )

    wait_for("every event to be delivered", settled)
    stop(worker)
    # THEN the receiver kept every event, once each
    received = sorted(
        (p["data"]["recipient_id"], p["data"]["event"]["kind"]) for p in fake_webhook.payloads
    )
    assert received == expected
    # AND only the delivery whose success was lost reached it twice (as one webhook-id)
    assert len(lost) == 1
    assert sorted(fake_webhook.seen.values()) == [1] * (len(expected) - 1) + [2]
    assert fake_webhook.attempts == OUTAGE + len(expected) + 1
    # AND nothing is left queued, pending or dead-lettered
    assert b.deliveries.by_status(DeliveryStatus.pending) == []
    assert b.deliveries.by_status(DeliveryStatus.failed) == []
    delivered = b.deliveries.by_status(DeliveryStatus.delivered)
    assert len(delivered) == len(expected)
    assert max(d.attempts for d in delivered) >= 2  # the outage cost retries
    assert len(b.events.for_campaign("tiny")) == 8  # each beacon's events stored once


class Crash(BaseException):
    """The process dying where it is raised."""


def test_a_crash_between_queueing_and_storing_loses_no_event(
    client: Client, fake_webhook: FakeWebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = bootstrap.backends()
    known = recipients.set_recipient_data(b, "tiny", "ada", {"first_name": "Ada"})
    token = signed_token(b.secret, known.token, "ada", "tiny")
    sent = beacon(token, "ada", ["impression", "play"])
    # GIVEN ingest dies after queueing a beacon and before storing it
    with monkeypatch.context() as patch:
        patch.setattr(b.events, "add", lambda events: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            ingest(b, EventBatch.model_validate(sent))
    assert b.events.for_campaign("tiny") == []
    # WHEN the relay runs, and the player sends the same beacon again
    clock = FastClock()
    clock.run()
    worker = start_relay(b, fake_webhook, clock)
    wait_for("the play to be delivered", lambda: len(fake_webhook.payloads) == 1)
    assert post(client, sent) == {"received": 2, "stored": 0, "duplicates": 2}
    wait_for("the queue to drain", lambda: b.queue.pending() == [])  # type: ignore[attr-defined]
    stop(worker)
    # THEN the relay stored both events, and the play reached the CRM once
    assert sorted(e.kind.value for e in b.events.for_campaign("tiny")) == ["impression", "play"]
    assert [p["data"]["event"]["kind"] for p in fake_webhook.payloads] == ["play"]
    assert list(fake_webhook.seen.values()) == [1]


@pytest.fixture(autouse=True)
def _stop_relays() -> Iterator[None]:
    yield
    while _STARTED:
        stop(_STARTED.pop())
