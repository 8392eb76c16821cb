"""Inbound hooks through chalice.test.Client: HubSpot, Salesforce and Standard Webhooks requests
start renders; forged, stale, replayed or wrongly keyed requests start nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from chalice.test import Client
from standardwebhooks.webhooks import Webhook

from app import app
from chalicelib import bootstrap
from chalicelib.api import hooks as hooks_module
from chalicelib.services import renders, templates
from chalicelib.settings import get_settings
from tests.aws import TABLE, Env
from tests.conftest import Campaign

HUBSPOT_SECRET = "hs-client-secret-0123"
SALESFORCE_SECRET = "sf-shared-secret-0123"
OLD_WHSEC = "whsec_" + base64.b64encode(b"the old generic secret 0123456").decode()
NEW_WHSEC = "whsec_" + base64.b64encode(b"the new generic secret 0123456").decode()
PUBLIC = "http://127.0.0.1:8000"  # REEL_PUBLIC_URL's default

MAPPING = """\
id: email
passthrough: false
fields:
  first_name: {from: firstname, transform: [trim, title]}
  plan: {from: tier, transform: [lower], default: basic}
"""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_HUBSPOT_CLIENT_SECRET", HUBSPOT_SECRET)
    monkeypatch.setenv("REEL_SALESFORCE_HOOK_SECRET", SALESFORCE_SECRET)
    monkeypatch.setenv("REEL_INBOUND_WEBHOOK_SECRETS", f"{OLD_WHSEC}, {NEW_WHSEC}")


@pytest.fixture
def client(campaign: Campaign, secrets: None, request: pytest.FixtureRequest) -> Client:
    """The embedded default with the tiny campaign registered, a mapping.yaml beside it."""
    (campaign.root / "mapping.yaml").write_text(MAPPING)
    app_client: Client = request.getfixturevalue("local_app")
    return app_client


def body(response: Any) -> Any:
    return json.loads(response.body)


def render_count() -> int:
    with sqlite3.connect(get_settings().data_dir / "reel.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'render'").fetchone()[0])


# ── signing, as each sender does it ───────────────────────────────────────────────────────


def hubspot_headers(
    uri: str, payload: bytes, when: float, secret: str = HUBSPOT_SECRET
) -> dict[str, str]:
    stamp = str(int(when * 1000))
    source = b"POST" + uri.encode() + payload + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "x-hubspot-signature-v3": signature.decode(),
        "x-hubspot-request-timestamp": stamp,
    }


def salesforce_headers(
    payload: bytes, when: float, secret: str = SALESFORCE_SECRET
) -> dict[str, str]:
    stamp = str(int(when))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + payload, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-reel-timestamp": stamp,
        "x-reel-signature": digest.hexdigest(),
    }


def standard_headers(
    payload: bytes, when: float, secret: str = NEW_WHSEC, msg_id: str = "msg_0001"
) -> dict[str, str]:
    stamp = datetime.fromtimestamp(int(when), tz=UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when)),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, payload.decode()),
    }


@dataclass(frozen=True)
class Sender:
    """One hook and how its CRM signs a request to it (with the right secret, or another)."""

    name: str
    sign: Callable[[bytes, float, bool], dict[str, str]]
    signature_header: str
    timestamp_header: str

    @property
    def path(self) -> str:
        return f"/hooks/{self.name}/tiny"


SENDERS = [
    Sender(
        "hubspot",
        lambda p, when, right: hubspot_headers(
            f"{PUBLIC}/hooks/hubspot/tiny", p, when, HUBSPOT_SECRET if right else "other-secret"
        ),
        "x-hubspot-signature-v3",
        "x-hubspot-request-timestamp",
    ),
    Sender(
        "salesforce",
        lambda p, when, right: salesforce_headers(
            p, when, SALESFORCE_SECRET if right else "other-secret"
        ),
        "x-reel-signature",
        "x-reel-timestamp",
    ),
    Sender(
        "generic",
        lambda p, when, right: standard_headers(
            p, when, NEW_WHSEC if right else "whsec_" + base64.b64encode(b"x" * 24).decode()
        ),
        "webhook-signature",
        "webhook-timestamp",
    ),
]

ADA = {"email": "ada@example.com", "firstname": " ada ", "tier": "PRO"}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


# ── requests that start renders ───────────────────────────────────────────────────────────


def test_hubspot_workflow_contact_starts_a_render(client: Client) -> None:
    # GIVEN a workflow webhook's contact, properties as {"value": …} objects
    contact = {
        "objectId": 51,
        "properties": {
            "email": {"value": "ada@example.com", "versions": []},
            "firstname": {"value": "  ada "},
            "tier": {"value": "PRO"},
            "company": {"value": "Analytical Engines"},
        },
    }
    payload = encode(contact)
    headers = hubspot_headers(f"{PUBLIC}/hooks/hubspot/tiny", payload, time.time())
    # WHEN HubSpot posts it
    response = client.http.post("/hooks/hubspot/tiny", headers=headers, body=payload)
    # THEN one render is queued, for the mapped recipient, with the mapped record
    assert response.status_code == 202, response.body
    got = body(response)
    assert got["rejected"] == []
    [started] = got["renders"]
    assert started["recipient_id"] == "ada@example.com"
    record = renders.get_render(bootstrap.backends(), started["render_id"])
    assert record.data == {"first_name": "Ada", "plan": "pro", "recipient_id": "ada@example.com"}
    status = body(client.http.get(f"/renders/{started['render_id']}"))["status"]
    assert status in ("queued", "running", "done")
    # AND it renders (the orchestrator's processes, not the request)
    bootstrap.backends().orchestrator.wait(timeout=120)  # type: ignore[attr-defined]
    assert body(client.http.get(f"/renders/{started['render_id']}"))["status"] == "done"


def test_hubspot_url_from_the_host_header_with_a_query(client: Client) -> None:
    # GIVEN HubSpot calling the API through a proxy on another host, with a query string;
    # it signs the URL with %3A decoded
    payload = encode([{"properties": {"email": "bob@example.com", "firstname": "bob"}}])
    signed_uri = "https://hooks.example.com/hooks/hubspot/tiny?src=wf:7"
    headers = hubspot_headers(signed_uri, payload, time.time())
    headers |= {"host": "hooks.example.com", "x-forwarded-proto": "https"}
    # WHEN it arrives
    response = client.http.post("/hooks/hubspot/tiny?src=wf%3A7", headers=headers, body=payload)
    # THEN the signature matches the rebuilt URL
    assert response.status_code == 202, response.body
    assert [r["recipient_id"] for r in body(response)["renders"]] == ["bob@example.com"]


def test_salesforce_records_each_start_or_are_rejected_alone(client: Client) -> None:
    # GIVEN four serialized sObjects: two good, one with a bad plan, one not an object
    attributes = {"type": "Contact", "url": "/services/data/v60.0/sobjects/Contact/003"}
    records: list[Any] = [
        {"attributes": attributes, "Id": "003A", "email": "ada@example.com", "firstname": "ada"},
        {"attributes": attributes, "Id": "003B", "firstname": "bob", "tier": "gold"},
        "not a record",
        {"attributes": attributes, "Id": "003C", "firstname": "cy", "tier": "basic"},
    ]
    payload = encode(records)
    before = render_count()
    # WHEN Salesforce posts them
    response = client.http.post(
        "/hooks/salesforce/tiny", headers=salesforce_headers(payload, time.time()), body=payload
    )
    # THEN the good ones start (the second without an email is known by its Id)
    assert response.status_code == 202, response.body
    got = body(response)
    assert [r["recipient_id"] for r in got["renders"]] == ["ada@example.com", "003C"]
    assert render_count() == before + 2
    # AND the bad ones are rejected alone, each naming its field
    assert [(r["index"], r["error"]["field"]) for r in got["rejected"]] == [(1, "plan"), (2, "[2]")]
    assert got["rejected"][0]["error"]["code"] == "invalid_data"
    data = renders.get_render(bootstrap.backends(), got["renders"][0]["render_id"]).data
    assert "attributes" not in data


def test_generic_accepts_any_secret_of_a_rotation(client: Client) -> None:
    for number, secret in enumerate((OLD_WHSEC, NEW_WHSEC)):
        payload = encode({"email": f"p{number}@example.com", "firstname": "pat"})
        headers = standard_headers(payload, time.time(), secret, msg_id=f"msg_rot_{number}")
        response = client.http.post("/hooks/generic/tiny", headers=headers, body=payload)
        assert response.status_code == 202, response.body
        [started] = body(response)["renders"]
        got = body(client.http.get(f"/renders/{started['render_id']}"))
        assert got["status"] in ("queued", "running", "done")


# ── requests that start nothing ───────────────────────────────────────────────────────────


@pytest.mark.parametrize("sender", SENDERS, ids=lambda s: s.name)
def test_a_forged_signature_starts_nothing(client: Client, sender: Sender) -> None:
    payload = encode(ADA)
    headers = sender.sign(payload, time.time(), True)
    # GIVEN a body changed after signing
    forged = encode({**ADA, "tier": "basic"})
    before = render_count()
    response = client.http.post(sender.path, headers=headers, body=forged)
    assert response.status_code == 403, response.body
    assert body(response)["error"]["field"] == sender.signature_header
    assert render_count() == before


@pytest.mark.parametrize("sender", SENDERS, ids=lambda s: s.name)
def test_a_wrong_secret_starts_nothing(client: Client, sender: Sender) -> None:
    payload = encode(ADA)
    before = render_count()
    response = client.http.post(
        sender.path, headers=sender.sign(payload, time.time(), False), body=payload
    )
    assert response.status_code == 403, response.body
    assert body(response)["error"] == {
        "code": "forbidden",
        "message": body(response)["error"]["message"],
        "field": sender.signature_header,
    }
    assert render_count() == before


@pytest.mark.parametrize("sender", SENDERS, ids=lambda s: s.name)
def test_a_stale_timestamp_starts_nothing(
    client: Client, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a request signed now, received six minutes later
    signed_at = time.time()
    payload = encode(ADA)
    headers = sender.sign(payload, signed_at, True)
    monkeypatch.setattr(hooks_module, "clock", lambda: signed_at + 360)
    before = render_count()
    response = client.http.post(sender.path, headers=headers, body=payload)
    # THEN it is refused, naming the timestamp header
    assert response.status_code == 403, response.body
    error = body(response)["error"]
    assert error["field"] == sender.timestamp_header and "too old" in error["message"]
    assert render_count() == before


@pytest.mark.parametrize("sender", SENDERS, ids=lambda s: s.name)
def test_a_replayed_request_starts_nothing(client: Client, sender: Sender) -> None:
    payload = encode(ADA)
    headers = sender.sign(payload, time.time(), True)
    first = client.http.post(sender.path, headers=headers, body=payload)
    assert first.status_code == 202, first.body
    before = render_count()
    # WHEN the very same request comes again
    again = client.http.post(sender.path, headers=headers, body=payload)
    # THEN it is refused and nothing starts
    assert again.status_code == 409, again.body
    assert body(again)["error"]["code"] == "replayed"
    assert render_count() == before


def test_a_replay_to_another_campaign_is_refused(client: Client, campaign: Campaign) -> None:
    # GIVEN a second campaign, and a Standard Webhooks message (its signature does not cover
    # the URL) already delivered to the first
    doc = campaign.template.read_text().replace("id: tiny", "id: tiny_b", 1)
    campaign.template.write_text(doc)
    templates.register_folder(bootstrap.backends(), campaign.root)
    payload = encode(ADA)
    headers = standard_headers(payload, time.time(), msg_id="msg_cross")
    assert client.http.post("/hooks/generic/tiny", headers=headers, body=payload).status_code == 202
    # WHEN it is replayed to the second campaign THEN it is refused
    again = client.http.post("/hooks/generic/tiny_b", headers=headers, body=payload)
    assert again.status_code == 409, again.body


def test_missing_headers_are_named(client: Client) -> None:
    payload = encode(ADA)
    headers = standard_headers(payload, time.time())
    del headers["webhook-id"]
    response = client.http.post("/hooks/generic/tiny", headers=headers, body=payload)
    assert response.status_code == 401
    assert body(response)["error"]["field"] == "webhook-id"
    headers = salesforce_headers(payload, time.time())
    headers["x-reel-timestamp"] = "yesterday"
    response = client.http.post("/hooks/salesforce/tiny", headers=headers, body=payload)
    assert response.status_code == 401
    assert body(response)["error"]["field"] == "x-reel-timestamp"


def test_a_hook_without_its_secret_is_off(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_SALESFORCE_HOOK_SECRET", "")
    bootstrap.reset()
    payload = encode(ADA)
    response = client.http.post(
        "/hooks/salesforce/tiny", headers=salesforce_headers(payload, time.time()), body=payload
    )
    assert response.status_code == 404
    error = body(response)["error"]
    assert error["code"] == "not_found" and "REEL_SALESFORCE_HOOK_SECRET" in error["message"]


def test_an_unknown_campaign(client: Client) -> None:
    payload = encode(ADA)
    response = client.http.post(
        "/hooks/salesforce/nope", headers=salesforce_headers(payload, time.time()), body=payload
    )
    assert response.status_code == 404
    assert body(response)["error"]["field"] == "campaign_id"


def test_all_bad_records_400_and_the_fixed_message_is_accepted(client: Client) -> None:
    # GIVEN records none of which names its recipient
    bad = encode([{"firstname": "ada"}, {"firstname": "bob"}])
    response = client.http.post(
        "/hooks/generic/tiny",
        headers=standard_headers(bad, time.time(), msg_id="msg_fix"),
        body=bad,
    )
    # THEN the request is refused as a whole, each record named, nothing started
    assert response.status_code == 400, response.body
    got = body(response)
    assert got["error"]["field"] == "email" and got["renders"] == []
    assert [r["index"] for r in got["rejected"]] == [0, 1]
    assert render_count() == 0
    # AND the sender may send the message again once fixed (it was not claimed)
    good = encode([{"firstname": "ada", "email": "ada@example.com"}])
    headers = standard_headers(good, time.time(), msg_id="msg_fix")
    assert client.http.post("/hooks/generic/tiny", headers=headers, body=good).status_code == 202


def test_hubspot_subscription_events_are_refused(client: Client) -> None:
    events = [{"eventId": 1, "subscriptionType": "contact.propertyChange", "objectId": 51}]
    payload = encode(events)
    headers = hubspot_headers(f"{PUBLIC}/hooks/hubspot/tiny", payload, time.time())
    response = client.http.post("/hooks/hubspot/tiny", headers=headers, body=payload)
    assert response.status_code == 400
    assert "workflow" in body(response)["error"]["message"]
    assert render_count() == 0


# ── on AWS (moto): the claim is a conditional put in DynamoDB ─────────────────────────────


def test_replay_claim_on_dynamodb(
    aws: Env, secrets: None, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    (campaign.root / "mapping.yaml").write_text(MAPPING)
    bootstrap.reset()
    templates.register_folder(bootstrap.backends(), campaign.root)
    payload = encode(ADA)
    headers = standard_headers(payload, time.time(), msg_id="msg_aws")
    with Client(app, stage_name="dev") as c:
        first = c.http.post("/hooks/generic/tiny", headers=headers, body=payload)
        assert first.status_code == 202, first.body
        [started] = body(first)["renders"]
        again = c.http.post("/hooks/generic/tiny", headers=headers, body=payload)
        assert again.status_code == 409, again.body
    assert body(again)["error"]["code"] == "replayed"
    assert bootstrap.backends().jobs.get_render(started["render_id"]) is not None
    # AND the claim is an item with a TTL-able expiry
    claims = boto3.client("dynamodb").scan(
        TableName=TABLE,
        FilterExpression="begins_with(pk, :c)",
        ExpressionAttributeValues={":c": {"S": "claim#hook:generic:"}},
    )["Items"]
    assert len(claims) == 1 and float(claims[0]["expires_at"]["N"]) > time.time()
