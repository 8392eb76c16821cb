"""The outbound connectors against fake CRMs on real HTTP: each action, duplicates, signatures
and how every kind of failure is classified."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from functools import partial
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from chalicelib.connectors.base import DeliveryFailed, Outgoing
from chalicelib.connectors.http import classify, parse_retry_after, wire_id
from chalicelib.connectors.hubspot import HubSpotConnector
from chalicelib.connectors.salesforce import SalesforceConnector, marker
from chalicelib.connectors.webhook import WebhookConnector, sign
from chalicelib.tracking.analytics import RecipientStats
from tests.fakes import (
    HUBSPOT_TOKEN,
    SALESFORCE_SESSION,
    WEBHOOK_SECRETS,
    FakeHubSpot,
    FakeSalesforce,
    FakeWebhookReceiver,
)

# fake_webhook, fake_hubspot, fake_salesforce, refused_url (until conftest.py imports them)

WRONG_SECRET = "whsec_d3Jvbmctc2VjcmV0LW5vdC1jb25maWd1cmVk"
RECEIVED_AT = 1_714_564_800.25  # 2024-05-01T12:00:00.250Z


def outgoing(connector: str, action: str, key: str = "dlv-0001", **fields: Any) -> Outgoing:
    stats = RecipientStats(
        recipient_id=fields.get("recipient_id") or "r-1",
        opened=True,
        played=True,
        max_progress=50,
        completed=False,
        clicked=False,
        watch_time=12.5,
        views=1,
        last_seen=RECEIVED_AT,
    )
    event = {"id": "evt-00000001", "kind": "progress", "progress": 50, "received_at": RECEIVED_AT}
    return Outgoing(
        key=key,
        connector=connector,
        action=action,
        campaign_id="spring",
        recipient_id=fields.pop("recipient_id", "r-1"),
        params=fields.pop("params", {}),
        data=fields.pop("data", {"event": event, "recipient": stats.model_dump(mode="json")}),
    )


def failure(send: Callable[[], None]) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as info:
        send()
    return info.value


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ── classification ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("status", "permanent", "gone"),
    [
        (400, True, False),
        (401, True, False),
        (403, True, False),
        (404, True, False),
        (408, False, False),
        (409, True, False),
        (410, True, True),
        (422, True, False),
        (429, False, False),
        (500, False, False),
        (502, False, False),
        (503, False, False),
        (301, True, False),
    ],
)
def test_classify_statuses(status: int, permanent: bool, gone: bool) -> None:
    err = classify(status, "x", retry_after=3)
    assert err is not None
    assert (err.status, err.permanent, err.gone) == (status, permanent, gone)
    assert classify(204, "x") is None


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after(formatdate(now + 120, usegmt=True), now) == pytest.approx(120)
    assert parse_retry_after(formatdate(now - 50, usegmt=True), now) == 0  # already past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_wire_id_keeps_plain_keys_and_digests_others() -> None:
    assert wire_id("dlv-0001") == "dlv-0001"
    odd = '["spring", "r 1", "evt"]'
    assert wire_id(odd) == wire_id(odd) != odd
    assert wire_id(odd).startswith("reel-")


# ── webhook ─────────────────────────────────────────────────────────────────────────────────


def test_webhook_delivers_a_signed_standard_webhook(fake_webhook: FakeWebhookReceiver) -> None:
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS))
    conn.send(outgoing("webhook", "event", params={"note": "hi"}))

    [request] = fake_webhook.requests
    assert request.status == 200
    assert request.headers["webhook-id"] == "dlv-0001"
    assert len(request.headers["webhook-signature"].split(" ")) == 2  # one per secret
    assert request.headers["content-type"] == "application/json"
    payload = fake_webhook.delivered["dlv-0001"]
    assert payload["type"] == "reel.event"
    assert payload["timestamp"] == "2024-05-01T12:00:00.250Z"
    data = payload["data"]
    assert (data["campaign_id"], data["recipient_id"]) == ("spring", "r-1")
    assert data["params"] == {"note": "hi"}
    assert data["event"]["kind"] == "progress"
    assert data["recipient"]["max_progress"] == 50


def test_webhook_completion_notice_type(fake_webhook: FakeWebhookReceiver) -> None:
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), clock=time.time)
    conn.send(outgoing("webhook", "render.completed", data={"url": "https://x/v/abc"}))
    [payload] = fake_webhook.payloads
    assert payload["type"] == "reel.render.completed"
    assert payload["data"]["url"] == "https://x/v/abc"
    assert payload["timestamp"].endswith("Z")


def test_webhook_duplicate_key_is_recorded_once(fake_webhook: FakeWebhookReceiver) -> None:
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS))
    out = outgoing("webhook", "event")
    conn.send(out)
    conn.send(out)
    assert fake_webhook.attempts == 2
    assert fake_webhook.seen["dlv-0001"] == 2
    assert len(fake_webhook.delivered) == 1


def test_webhook_retry_after_a_lost_answer_does_not_duplicate(
    fake_webhook: FakeWebhookReceiver,
) -> None:
    # GIVEN a receiver that answers too late for the connector's timeout
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), timeout=0.3)
    fake_webhook.stall_next(1, seconds=1.0)
    out = outgoing("webhook", "event")
    # WHEN the first attempt times out (but the receiver still processes it) and is retried
    err = failure(lambda: conn.send(out))
    assert not err.permanent and err.status is None
    wait_for(lambda: fake_webhook.attempts == 1)
    conn.send(out)
    # THEN the receiver keeps one delivery
    assert fake_webhook.seen["dlv-0001"] == 2
    assert len(fake_webhook.delivered) == 1


@pytest.mark.parametrize("secret", WEBHOOK_SECRETS)
def test_webhook_verifies_with_either_rotation_secret(secret: str) -> None:
    with FakeWebhookReceiver([secret]) as receiver:
        WebhookConnector(receiver.endpoint, list(WEBHOOK_SECRETS)).send(outgoing("webhook", "e"))
        assert list(receiver.delivered) == ["dlv-0001"]


def test_webhook_wrong_secret_is_a_permanent_401() -> None:
    with FakeWebhookReceiver([WRONG_SECRET]) as receiver:
        conn = WebhookConnector(receiver.endpoint, list(WEBHOOK_SECRETS))
        err = failure(lambda: conn.send(outgoing("webhook", "event")))
        assert (err.status, err.permanent, err.gone) == (401, True, False)
        assert receiver.delivered == {}


def test_sign_headers_verify_with_each_secret() -> None:
    body = b'{"type":"reel.event","timestamp":"2024-05-01T12:00:00.000Z","data":{}}'
    now = time.time()
    headers = sign(list(WEBHOOK_SECRETS), "msg-1", now, body)
    assert headers["webhook-timestamp"] == str(int(now))
    for secret in WEBHOOK_SECRETS:
        assert Webhook(secret).verify(body, headers)["type"] == "reel.event"
    with pytest.raises(WebhookVerificationError):
        Webhook(WRONG_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # a changed body no longer verifies
        Webhook(WEBHOOK_SECRETS[0]).verify(body.replace(b"event", b"other"), headers)


def test_webhook_gone(fake_webhook: FakeWebhookReceiver) -> None:
    fake_webhook.gone()
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS))
    err = failure(lambda: conn.send(outgoing("webhook", "event")))
    assert err.gone and err.permanent and err.status == 410


def test_webhook_503_with_retry_after(fake_webhook: FakeWebhookReceiver) -> None:
    fake_webhook.fail_next(1, status=503, retry_after=7)
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS))
    out = outgoing("webhook", "event")
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (503, 7, False)
    conn.send(out)  # the next attempt goes through
    assert list(fake_webhook.delivered) == ["dlv-0001"]


def test_webhook_429_with_an_http_date(fake_webhook: FakeWebhookReceiver) -> None:
    now = 1_800_000_000.0
    fake_webhook.fail_next(1, status=429, retry_after=formatdate(now + 30, usegmt=True))
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), clock=lambda: now)
    # The fixed clock also stamps the signature: the receiver rejects it, but only after the
    # programmed 429 has been answered.
    err = failure(lambda: conn.send(outgoing("webhook", "event")))
    assert (err.status, err.retry_after, err.permanent) == (429, 30, False)


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (408, False), (500, False)])
def test_webhook_status_classes(
    fake_webhook: FakeWebhookReceiver, status: int, permanent: bool
) -> None:
    fake_webhook.fail_next(1, status=status)
    conn = WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS))
    err = failure(lambda: conn.send(outgoing("webhook", "event")))
    assert (err.status, err.permanent, err.retry_after) == (status, permanent, None)


def test_webhook_connection_refused_is_retryable(refused_url: str) -> None:
    conn = WebhookConnector(refused_url + "/hook", list(WEBHOOK_SECRETS), timeout=2)
    err = failure(lambda: conn.send(outgoing("webhook", "event")))
    assert (err.status, err.permanent, err.gone) == (None, False, False)


def test_webhook_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        WebhookConnector("ftp://x", list(WEBHOOK_SECRETS))
    with pytest.raises(ValueError):
        WebhookConnector("https://x", [])
    with pytest.raises(ValueError):
        WebhookConnector("https://x", ["whsec_"])


# ── HubSpot ─────────────────────────────────────────────────────────────────────────────────


def hubspot(fake: FakeHubSpot, token: str = HUBSPOT_TOKEN, **kw: Any) -> HubSpotConnector:
    return HubSpotConnector(token, base_url=fake.url, **kw)


def test_hubspot_set_property_by_id_and_by_email(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_property("reel_video_progress")
    ann = fake_hubspot.add_contact("ann@example.com", firstname="Ann")
    conn = hubspot(fake_hubspot)

    conn.send(
        outgoing(
            "hubspot",
            "set_property",
            recipient_id=ann,
            params={"properties": {"reel_video_progress": 50}},
        )
    )
    conn.send(
        outgoing(
            "hubspot",
            "set_property",
            key="dlv-0002",
            recipient_id="Ann@Example.com",
            params={"properties": {"lifecyclestage": "lead"}},
        )
    )

    assert fake_hubspot.contact(ann) == {
        "email": "ann@example.com",
        "firstname": "Ann",
        "reel_video_progress": "50",
        "lifecyclestage": "lead",
    }
    by_id, by_email = fake_hubspot.requests
    assert (by_id.method, by_id.path, by_id.query) == (
        "PATCH",
        f"/crm/v3/objects/contacts/{ann}",
        {},
    )
    assert by_email.path == "/crm/v3/objects/contacts/Ann@Example.com"
    assert by_email.query == {"idProperty": ["email"]}
    assert by_email.json == {"properties": {"lifecyclestage": "lead"}}


def test_hubspot_timeline_event_by_email_and_by_id(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_event_template("1001298", tokens=["progress", "campaign"])
    bob = fake_hubspot.add_contact("bob@example.com")
    conn = hubspot(fake_hubspot)
    params = {"event_template_id": "1001298", "tokens": {"progress": 50, "campaign": "spring"}}

    conn.send(outgoing("hubspot", "timeline_event", recipient_id="bob@example.com", params=params))
    conn.send(
        outgoing("hubspot", "timeline_event", key="dlv-0002", recipient_id=bob, params=params)
    )

    first, second = fake_hubspot.events["dlv-0001"], fake_hubspot.events["dlv-0002"]
    assert first["objectId"] == second["objectId"] == bob
    assert first["tokens"] == {"progress": "50", "campaign": "spring"}
    assert first["timestamp"] == "2024-05-01T12:00:00.250Z"  # when it happened, not when sent
    assert first["extraData"]["recipient"]["watch_time"] == 12.5
    sent = [r.json for r in fake_hubspot.requests]
    assert sent[0]["email"] == "bob@example.com" and "objectId" not in sent[0]
    assert sent[1]["objectId"] == bob and "email" not in sent[1]


def test_hubspot_timeline_event_duplicate_key_keeps_one(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_event_template("1001298", tokens=["progress"])
    fake_hubspot.add_contact("bob@example.com")
    conn = hubspot(fake_hubspot)
    out = outgoing(
        "hubspot",
        "timeline_event",
        recipient_id="bob@example.com",
        params={"event_template_id": "1001298", "tokens": {"progress": 50}},
    )
    conn.send(out)
    conn.send(out)  # HubSpot answers 409: the event is already there, which is success
    assert list(fake_hubspot.events) == ["dlv-0001"]
    assert [r.status for r in fake_hubspot.requests] == [200, 409, 200]


def test_hubspot_timeline_event_id_taken_by_another_contact(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_event_template("1001298", tokens=[])
    fake_hubspot.add_contact("bob@example.com")
    fake_hubspot.add_contact("eve@example.com")
    conn = hubspot(fake_hubspot)
    params = {"event_template_id": "1001298"}
    conn.send(outgoing("hubspot", "timeline_event", recipient_id="bob@example.com", params=params))
    err = failure(
        lambda: conn.send(
            outgoing("hubspot", "timeline_event", recipient_id="eve@example.com", params=params)
        )
    )
    assert (err.status, err.permanent) == (400, True)


def test_hubspot_add_to_list_by_email_looks_the_contact_up(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_list("42")
    cat = fake_hubspot.add_contact("cat@example.com")
    dan = fake_hubspot.add_contact("dan@example.com")
    conn = hubspot(fake_hubspot)

    add = {"list_id": "42"}
    conn.send(outgoing("hubspot", "add_to_list", recipient_id="cat@example.com", params=add))
    conn.send(outgoing("hubspot", "add_to_list", key="k2", recipient_id=dan, params=add))
    conn.send(outgoing("hubspot", "add_to_list", key="k3", recipient_id=dan, params=add))

    assert fake_hubspot.memberships["42"] == [cat, dan]
    calls = [(r.method, r.path) for r in fake_hubspot.requests]
    assert calls == [
        ("GET", "/crm/v3/objects/contacts/cat@example.com"),
        ("PUT", "/crm/v3/lists/42/memberships/add"),
        ("PUT", "/crm/v3/lists/42/memberships/add"),
        ("PUT", "/crm/v3/lists/42/memberships/add"),
    ]
    assert fake_hubspot.requests[1].json == [cat]


def test_hubspot_add_to_list_of_an_unknown_contact_is_permanent(fake_hubspot: FakeHubSpot) -> None:
    fake_hubspot.add_list("42")
    conn = hubspot(fake_hubspot)
    by_email = outgoing(
        "hubspot", "add_to_list", recipient_id="nobody@x.io", params={"list_id": 42}
    )
    by_id = outgoing("hubspot", "add_to_list", recipient_id="999999", params={"list_id": 42})

    err = failure(lambda: conn.send(by_email))  # the lookup answers 404
    assert (err.status, err.permanent) == (404, True)
    err = failure(lambda: conn.send(by_id))  # HubSpot lists it in recordIdsMissing
    assert err.permanent
    assert fake_hubspot.memberships["42"] == []


def test_hubspot_wrong_token_is_a_permanent_401(fake_hubspot: FakeHubSpot) -> None:
    ann = fake_hubspot.add_contact("ann@example.com")
    conn = hubspot(fake_hubspot, token="pat-na1-wrong")
    out = outgoing(
        "hubspot", "set_property", recipient_id=ann, params={"properties": {"phone": "1"}}
    )
    err = failure(lambda: conn.send(out))
    assert (err.status, err.permanent) == (401, True)
    assert "INVALID_AUTHENTICATION" in str(err)
    assert "pat-na1-wrong" not in str(err)


def test_hubspot_unknown_property_is_a_permanent_400(fake_hubspot: FakeHubSpot) -> None:
    ann = fake_hubspot.add_contact("ann@example.com")
    out = outgoing(
        "hubspot", "set_property", recipient_id=ann, params={"properties": {"nope": "x"}}
    )
    err = failure(lambda: hubspot(fake_hubspot).send(out))
    assert (err.status, err.permanent) == (400, True)
    assert "does not exist" in str(err)


def test_hubspot_bad_params_fail_before_any_call(fake_hubspot: FakeHubSpot) -> None:
    conn = hubspot(fake_hubspot)
    for out in (
        outgoing("hubspot", "timeline_event", params={}),
        outgoing("hubspot", "add_to_list", params={"list_id": ""}),
        outgoing("hubspot", "set_property", params={"properties": {}}),
        outgoing("hubspot", "unknown_action"),
        outgoing("hubspot", "set_property", recipient_id=None, params={"properties": {"a": 1}}),
    ):
        assert failure(partial(conn.send, out)).permanent
    assert fake_hubspot.requests == []


def test_hubspot_failures(fake_hubspot: FakeHubSpot, refused_url: str) -> None:
    ann = fake_hubspot.add_contact("ann@example.com")
    out = outgoing(
        "hubspot", "set_property", recipient_id=ann, params={"properties": {"phone": "1"}}
    )
    conn = hubspot(fake_hubspot)

    fake_hubspot.fail_next(1, status=503, retry_after=7)
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (503, 7, False)

    fake_hubspot.fail_next(1, status=429)
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (429, None, False)

    fake_hubspot.fail_next(1, status=400)
    assert failure(lambda: conn.send(out)).permanent

    conn.send(out)  # the programmed failures are spent
    assert fake_hubspot.contact(ann)["phone"] == "1"  # type: ignore[index]

    fake_hubspot.gone()
    assert failure(lambda: conn.send(out)).gone

    refused = HubSpotConnector(HUBSPOT_TOKEN, base_url=refused_url, timeout=2)
    err = failure(lambda: refused.send(out))
    assert (err.status, err.permanent) == (None, False)


def test_hubspot_timeout_is_retryable(fake_hubspot: FakeHubSpot) -> None:
    ann = fake_hubspot.add_contact("ann@example.com")
    fake_hubspot.stall_next(1, seconds=1.0)
    out = outgoing(
        "hubspot", "set_property", recipient_id=ann, params={"properties": {"phone": "1"}}
    )
    err = failure(lambda: hubspot(fake_hubspot, timeout=0.3).send(out))
    assert (err.status, err.permanent) == (None, False)


# ── Salesforce ──────────────────────────────────────────────────────────────────────────────


def salesforce(
    fake: FakeSalesforce, session_id: str = SALESFORCE_SESSION, **kw: Any
) -> SalesforceConnector:
    return SalesforceConnector(fake.url, session_id, session=fake.client_session(), **kw)


def test_salesforce_update_contact(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact(LastName="Lovelace", Email="ada@example.com")
    out = outgoing(
        "salesforce",
        "update_contact",
        recipient_id=who,
        params={"fields": {"Title": "Engineer", "LeadSource": "Reel video"}},
    )
    salesforce(fake_salesforce).send(out)

    assert fake_salesforce.contacts[who]["Title"] == "Engineer"
    assert fake_salesforce.contacts[who]["LeadSource"] == "Reel video"
    [request] = fake_salesforce.requests
    assert (request.method, request.path, request.status) == (
        "PATCH",
        f"/services/data/v59.0/sobjects/Contact/{who}",
        204,
    )
    assert request.headers["authorization"] == f"Bearer {SALESFORCE_SESSION}"


def test_salesforce_create_task_is_idempotent(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact(LastName="Lovelace")
    conn = salesforce(fake_salesforce)
    params = {
        "subject": "Watched the spring video",
        "description": "Reached 50 %",
        "owner_id": "005000000000001AAA",
    }
    out = outgoing("salesforce", "create_task", recipient_id=who, params=params)

    conn.send(out)
    conn.send(out)  # a retry: the duplicate check finds the first Task's marker

    [task] = fake_salesforce.tasks_of(who)
    assert task["Subject"] == "Watched the spring video"
    assert task["Status"] == "Not Started"
    assert task["OwnerId"] == "005000000000001AAA"
    assert task["Description"] == f"Reached 50 %\n\n{marker('dlv-0001')}"
    assert [(r.method, r.path) for r in fake_salesforce.requests] == [
        ("GET", "/services/data/v59.0/query/"),
        ("POST", "/services/data/v59.0/sobjects/Task/"),
        ("GET", "/services/data/v59.0/query/"),
    ]

    # Another delivery with the same subject is another Task.
    conn.send(
        outgoing("salesforce", "create_task", key="dlv-0002", recipient_id=who, params=params)
    )
    assert len(fake_salesforce.tasks_of(who)) == 2


def test_salesforce_task_retry_after_a_lost_answer(fake_salesforce: FakeSalesforce) -> None:
    # GIVEN a Task creation whose answer comes too late for the client (the Task is created)
    who = fake_salesforce.add_contact(LastName="Hopper")
    conn = salesforce(fake_salesforce, timeout=0.5)
    out = outgoing("salesforce", "create_task", recipient_id=who, params={"subject": "Clicked"})
    fake_salesforce.stall_next(1, seconds=1.5, method="POST")
    err = failure(lambda: conn.send(out))
    assert (err.status, err.permanent) == (None, False)
    # WHEN the relay retries once the Salesforce side has finished
    wait_for(lambda: len(fake_salesforce.tasks_of(who)) == 1)
    conn.send(out)
    # THEN there is still exactly one Task
    assert len(fake_salesforce.tasks_of(who)) == 1
    assert [r.method for r in fake_salesforce.requests] == ["GET", "POST", "GET"]


def test_salesforce_task_upsert_by_external_id(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact(LastName="Hamilton")
    conn = salesforce(fake_salesforce, task_key_field="Reel_Key__c")
    out = outgoing("salesforce", "create_task", recipient_id=who, params={"subject": "Completed"})
    conn.send(out)
    conn.send(out)
    [task] = fake_salesforce.tasks_of(who)
    assert task["Reel_Key__c"] == "dlv-0001"
    assert [r.status for r in fake_salesforce.requests] == [201, 200]
    assert fake_salesforce.requests[0].path.endswith("/sobjects/Task/Reel_Key__c/dlv-0001")


def test_salesforce_soql_values_are_escaped(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact(LastName="O'Brien")
    conn = salesforce(fake_salesforce)
    out = outgoing(
        "salesforce", "create_task", recipient_id=who, params={"subject": "It's 'quoted' \\ here"}
    )
    conn.send(out)
    conn.send(out)
    [task] = fake_salesforce.tasks_of(who)
    assert task["Subject"] == "It's 'quoted' \\ here"


def test_salesforce_wrong_session_is_a_permanent_401(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact()
    conn = salesforce(fake_salesforce, session_id="00Dexpired")
    err = failure(
        lambda: conn.send(
            outgoing(
                "salesforce", "update_contact", recipient_id=who, params={"fields": {"Title": "x"}}
            )
        )
    )
    assert (err.status, err.permanent) == (401, True)
    assert "INVALID_SESSION_ID" in str(err)


def test_salesforce_bad_field_and_unknown_contact_are_permanent(
    fake_salesforce: FakeSalesforce,
) -> None:
    who = fake_salesforce.add_contact()
    conn = salesforce(fake_salesforce)
    bad_field = outgoing(
        "salesforce", "update_contact", recipient_id=who, params={"fields": {"Nope__c": 1}}
    )
    err = failure(lambda: conn.send(bad_field))
    assert (err.status, err.permanent) == (400, True)
    assert "INVALID_FIELD" in str(err)

    unknown = outgoing(
        "salesforce",
        "update_contact",
        recipient_id="003000000009999AAA",
        params={"fields": {"Title": "x"}},
    )
    err = failure(lambda: conn.send(unknown))
    assert (err.status, err.permanent) == (404, True)


def test_salesforce_failures(fake_salesforce: FakeSalesforce, refused_url: str) -> None:
    who = fake_salesforce.add_contact()
    out = outgoing(
        "salesforce", "update_contact", recipient_id=who, params={"fields": {"Title": "x"}}
    )
    conn = salesforce(fake_salesforce)

    fake_salesforce.fail_next(1, status=503, retry_after=7)
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (503, 7, False)

    fake_salesforce.fail_next(1, status=500)
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (500, None, False)

    fake_salesforce.fail_next(1, status=429, retry_after=3)
    err = failure(lambda: conn.send(out))
    assert (err.status, err.retry_after, err.permanent) == (429, 3, False)

    fake_salesforce.fail_next(1, status=400)
    assert failure(lambda: conn.send(out)).permanent

    conn.send(out)
    assert fake_salesforce.contacts[who]["Title"] == "x"

    fake_salesforce.gone()
    err = failure(lambda: conn.send(out))
    assert err.gone and err.permanent

    refused = SalesforceConnector(
        refused_url.replace("http:", "https:"), SALESFORCE_SESSION, timeout=2
    )
    err = failure(lambda: refused.send(out))
    assert (err.status, err.permanent) == (None, False)


def test_salesforce_refused_request_is_permanent(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact()
    conn = salesforce(fake_salesforce)
    fake_salesforce.fail_next(1, status=403)  # a plain refusal (permissions): permanent
    out = outgoing(
        "salesforce", "update_contact", recipient_id=who, params={"fields": {"Title": "x"}}
    )
    assert failure(lambda: conn.send(out)).permanent


def test_salesforce_api_limit_is_retryable(fake_salesforce: FakeSalesforce) -> None:
    who = fake_salesforce.add_contact()
    limit = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    fake_salesforce.fail_next(1, status=403, body=limit)
    out = outgoing(
        "salesforce", "update_contact", recipient_id=who, params={"fields": {"Title": "x"}}
    )
    err = failure(lambda: salesforce(fake_salesforce).send(out))
    assert (err.status, err.permanent) == (403, False)


def test_salesforce_bad_params_fail_before_any_call(fake_salesforce: FakeSalesforce) -> None:
    conn = salesforce(fake_salesforce)
    for out in (
        outgoing("salesforce", "update_contact", params={}),
        outgoing("salesforce", "create_task", params={"subject": " "}),
        outgoing("salesforce", "create_task", params={"subject": "s", "fields": []}),
        outgoing("salesforce", "whatever"),
        outgoing("salesforce", "update_contact", recipient_id=None, params={"fields": {"a": 1}}),
    ):
        assert failure(partial(conn.send, out)).permanent
    assert fake_salesforce.requests == []


def test_fakes_check_tls(fake_salesforce: FakeSalesforce) -> None:
    # Without the fake's CA, the client refuses the certificate: TLS is real.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(fake_salesforce.url + "/services/data/v59.0/query", timeout=2)
