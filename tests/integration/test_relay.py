"""The relay on the embedded default: the player's events go through the SQLite outbox, the
campaign's rules and the connectors to fake CRMs on 127.0.0.1 — through an outage, replayed
with an injected clock (no sleeping), with every event delivered and none twice."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.backends import Backends
from chalicelib.connectors.base import Connector, DeliveryStatus
from chalicelib.connectors.hubspot import HubSpotConnector
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.connectors.salesforce import SalesforceConnector
from chalicelib.connectors.webhook import WebhookConnector
from chalicelib.landing.tokens import signed_token
from chalicelib.services import batches, recipients, renders, templates
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import ingest
from tests.conftest import Campaign
from tests.fakes.crm import (
    HUBSPOT_TOKEN,
    SALESFORCE_SESSION,
    WEBHOOK_SECRETS,
    FakeHubSpot,
    FakeSalesforce,
    FakeWebhookReceiver,
)

ADA = "ada@example.com"
HUBSPOT_RULES = """\
    rules:
      - id: watched
        when: "event.kind == 'play' || event.kind == 'ended'"
        do: [{connector: webhook, action: event}]
      - id: engaged
        when: "event.kind == 'progress' && event.progress >= `70`"
        do:
          - connector: hubspot
            action: set_property
            params: {properties: {video_engaged: "true", video_progress: "{{ event.progress }}"}}
      - id: finished
        when: "event.kind == 'ended'"
        do: [{connector: hubspot, action: add_to_list, params: {list_id: "42"}}]
    """


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def setup_campaign(campaign: Campaign, rules: str) -> Backends:
    (campaign.root / "rules.yaml").write_text(textwrap.dedent(rules))
    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    return b


def watch(b: Backends, rid: str, kinds: list[str], prefix: str = "ev") -> None:
    """The recipient's page exists and its player sends these events (ids are stable)."""
    known = b.recipients.get_recipient("tiny", rid)
    if known is None:
        known = recipients.set_recipient_data(b, "tiny", rid, {"first_name": "Ada"})
    events: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        event: dict[str, Any] = {"id": f"{prefix}-{i:06d}", "kind": kind, "ts": 1.8e12 + i}
        if kind.startswith("progress"):
            event |= {"kind": "progress", "progress": int(kind.split(":")[1])}
        events.append(event)
    token = signed_token(b.secret, known.token, rid, "tiny")
    ingest(b, EventBatch.model_validate({"token": token, "events": events}))


def drain(worker: RelayWorker, clock: Clock, rounds: int = 30) -> int:
    """Run the worker, moving time forward, until nothing is pending; returns the rounds."""
    for round_ in range(1, rounds + 1):
        worker.step()
        if not worker.relay.b.deliveries.due(float("inf")):
            return round_
        clock.now += 4000  # past any backoff (the cap is an hour)
    raise AssertionError("deliveries still pending")


@pytest.fixture
def hubspot(fake_hubspot: FakeHubSpot) -> FakeHubSpot:
    fake_hubspot.add_contact(ADA, firstname="Ada")
    fake_hubspot.add_property("video_engaged")
    fake_hubspot.add_property("video_progress")
    fake_hubspot.add_list("42")
    return fake_hubspot


@pytest.fixture
def relay(
    campaign: Campaign, fake_webhook: FakeWebhookReceiver, hubspot: FakeHubSpot
) -> Iterator[tuple[RelayWorker, Clock]]:
    b = setup_campaign(campaign, HUBSPOT_RULES)
    clock = Clock()
    connectors: dict[str, Connector] = {
        "webhook": WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), timeout=5),
        "hubspot": HubSpotConnector(HUBSPOT_TOKEN, base_url=hubspot.url, timeout=5),
    }
    yield RelayWorker(Relay(b, connectors, clock=clock), b.queue), clock


def test_rules_drive_the_crm_through_an_outage(
    relay: tuple[RelayWorker, Clock], fake_webhook: FakeWebhookReceiver, hubspot: FakeHubSpot
) -> None:
    worker, clock = relay
    b = worker.relay.b
    # GIVEN the webhook endpoint is down for its next four attempts
    fake_webhook.fail_next(4, status=503)
    # WHEN Ada watches to the end (events arrive in two beacons)
    watch(b, ADA, ["impression", "play", "progress:10", "progress:70"])
    watch(b, ADA, ["progress:80", "ended"], prefix="ev2")
    rounds = drain(worker, clock)
    # THEN every rule-driven call reached its CRM, once
    assert rounds > 1  # the outage cost retries
    assert [p["type"] for p in fake_webhook.payloads] == ["reel.event", "reel.event"]
    assert sorted(p["data"]["event"]["kind"] for p in fake_webhook.payloads) == ["ended", "play"]
    assert set(fake_webhook.seen.values()) == {1}  # no id verified twice: none delivered twice
    contact = hubspot.contact(ADA)
    assert contact is not None
    assert (contact["video_engaged"], contact["video_progress"]) == ("true", "80")
    assert len(hubspot.memberships["42"]) == 1
    # AND nothing is left behind
    assert b.queue.pending() == []  # type: ignore[attr-defined]
    assert b.deliveries.by_status(DeliveryStatus.pending) == []
    delivered = b.deliveries.by_status(DeliveryStatus.delivered)
    assert len(delivered) == 2 + 2 + 1  # webhook ×2, set_property ×2 (70, 80), add_to_list
    assert max(d.attempts for d in delivered if d.out.connector == "webhook") >= 2


def test_a_message_relayed_twice_is_delivered_once(
    relay: tuple[RelayWorker, Clock], fake_webhook: FakeWebhookReceiver
) -> None:
    worker, clock = relay
    b = worker.relay.b
    watch(b, ADA, ["play"])
    [(_, message)] = b.queue.take()  # type: ignore[attr-defined]
    b.queue.put([message])  # the outbox hands it over again (at least once)
    drain(worker, clock)
    assert len(fake_webhook.payloads) == 1
    assert set(fake_webhook.seen.values()) == {1}


def test_gone_disables_and_dead_letters_wait_for_redelivery(
    relay: tuple[RelayWorker, Clock], fake_webhook: FakeWebhookReceiver
) -> None:
    worker, clock = relay
    b = worker.relay.b
    # GIVEN the webhook endpoint is gone
    fake_webhook.gone()
    watch(b, ADA, ["play"])
    drain(worker, clock)
    [disabled] = b.deliveries.by_status(DeliveryStatus.disabled)
    assert "410" in b.deliveries.disabled()["webhook"]
    # Later events for it are not attempted at all
    attempts = fake_webhook.attempts
    watch(b, ADA, ["ended"], prefix="later")
    drain(worker, clock)
    assert fake_webhook.attempts == attempts
    assert len(b.deliveries.by_status(DeliveryStatus.disabled)) == 2
    # WHEN the operator fixes the endpoint and redelivers
    fake_webhook.reset_failures()
    worker.relay.redeliver(disabled.key)
    # (queued too: on AWS the relay Lambda on SQS is what attempts it)
    assert b.queue.pending() == [{"type": "redeliver", "key": disabled.key}]  # type: ignore[attr-defined]
    drain(worker, clock)
    # THEN that delivery goes through and the connector is enabled again
    assert b.deliveries.get(disabled.key).status is DeliveryStatus.delivered  # type: ignore[union-attr]
    assert "webhook" not in b.deliveries.disabled()


def test_dead_letters_through_the_api(
    relay: tuple[RelayWorker, Clock],
    fake_webhook: FakeWebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, clock = relay
    b = worker.relay.b
    # GIVEN a receiver that refuses the payload (a permanent 4xx): dead-lettered at once
    fake_webhook.fail_next(1, status=422)
    watch(b, ADA, ["play"])
    drain(worker, clock)
    monkeypatch.setenv("REEL_API_KEYS", "relay-test-key-0123")
    monkeypatch.setattr(bootstrap, "relay", lambda: worker.relay)

    bootstrap.reset()
    headers = {"x-api-key": "relay-test-key-0123"}
    with Client(app, stage_name="local") as client:
        # WHEN the operator lists the dead letters
        listed = json.loads(client.http.get("/deliveries?status=failed", headers=headers).body)
        [dead] = listed["deliveries"]
        assert dead["out"]["connector"] == "webhook"
        assert "422" in dead["last_error"]
        assert client.http.get("/deliveries?status=failed").status_code == 401
        assert client.http.get("/deliveries?status=lost", headers=headers).status_code == 400
        # AND redelivers it
        again = client.http.post(f"/deliveries/{dead['out']['key']}/redeliver", headers=headers)
        assert again.status_code == 202
        assert client.http.post("/deliveries/nope/redeliver", headers=headers).status_code == 404
    drain(worker, clock)
    # THEN it is delivered, once
    assert len(fake_webhook.payloads) == 1
    assert b.deliveries.by_status(DeliveryStatus.failed) == []


def test_salesforce_gets_a_task_for_a_click(
    campaign: Campaign, fake_salesforce: FakeSalesforce
) -> None:
    contact = fake_salesforce.add_contact(LastName="Lovelace", FirstName="Ada")
    rules = """\
        rules:
          - id: clicked
            when: "event.kind == 'cta_click'"
            do:
              - connector: salesforce
                action: create_task
                params:
                  subject: "Call back: clicked in the video"
                  description: "{{ campaign_id }}"
              - connector: salesforce
                action: update_contact
                params: {fields: {Description: "watched {{ recipient.max_progress }}%"}}
        """
    b = setup_campaign(campaign, rules)
    clock = Clock()
    salesforce = SalesforceConnector(
        fake_salesforce.url, SALESFORCE_SESSION, session=fake_salesforce.client_session()
    )
    worker = RelayWorker(Relay(b, {"salesforce": salesforce}, clock=clock), b.queue)
    fake_salesforce.fail_next(2, status=503)
    watch(b, contact, ["play", "progress:50", "cta_click"])
    drain(worker, clock)
    [task] = fake_salesforce.tasks_of(contact)
    assert task["Subject"] == "Call back: clicked in the video"
    assert fake_salesforce.contacts[contact]["Description"] == "watched 50%"


def test_completion_webhooks(
    campaign: Campaign, fake_webhook: FakeWebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a webhook configured in settings (the relay `reel serve` runs is built from them)
    monkeypatch.setenv("REEL_WEBHOOK_URL", fake_webhook.endpoint)
    monkeypatch.setenv("REEL_WEBHOOK_SECRETS", ",".join(WEBHOOK_SECRETS))
    bootstrap.reset()
    b = setup_campaign(campaign, "rules: []\n")
    # WHEN a render and a batch finish (run here, in this process)
    monkeypatch.setattr(type(b.orchestrator), "start_render", lambda self, rid: None)
    monkeypatch.setattr(type(b.orchestrator), "start_batch", lambda self, bid: None)
    render = renders.create_render(
        b, renders.RenderRequest(template_id="tiny", data={"first_name": "Ada"})
    )
    renders.run_render(b, render.id)
    batch = batches.create_batch(
        b, batches.BatchRequest(template_id="tiny", records=[{"first_name": "Bo"}])
    )
    batches.plan_batch(b, batch.id)
    for item in batches.read_items(b, batches.get_batch(b, batch.id)):
        batches.render_item(b, batch.id, item)
    batches.finalize_batch(b, batch.id)
    batches.finalize_batch(b, batch.id)  # Finalize retried: still one notice
    worker = RelayWorker(bootstrap.relay(), b.queue)
    worker.step()
    # THEN each sent one signed webhook with its status and URLs
    by_type = {p["type"]: p["data"] for p in fake_webhook.payloads}
    assert set(by_type) == {"reel.render.completed", "reel.batch.completed"}
    assert by_type["reel.render.completed"]["status"] == "done"
    assert "/v/" in by_type["reel.render.completed"]["urls"]["page"]
    assert by_type["reel.batch.completed"]["counts"]["rendered"] == 1
    assert json.dumps(by_type)  # JSON all the way
