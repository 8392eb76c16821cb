"""Duplicates and replays, processed once. On a real `reel serve`: eight clients post the same
beacon at the same moment (the player retrying, a proxy replaying) while others post their own;
eight copies of one signed CRM webhook arrive at once. On DynamoDB (moto): the same beacon and
the same webhook sent again meet the conditional writes (one at a time: moto does not
serialize concurrent writes)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.landing.tokens import signed_token
from chalicelib.services import recipients
from tests.app.test_hooks import NEW_WHSEC, OLD_WHSEC, standard_headers
from tests.aws import EVENTS_TABLE, TABLE, TRACKING_SECRET, Env
from tests.conftest import Campaign
from tests.server import reel_serve

THREADS = 8


def request(
    url: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    gate = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def beacon(token: str, prefix: str, n: int = 5) -> bytes:
    events = [
        {"id": f"{prefix}-{i:04d}", "kind": "progress", "progress": 10 * (i + 1), "ts": 1.8e12}
        for i in range(n)
    ]
    return json.dumps({"token": token, "events": events}).encode()


@pytest.fixture
def server(campaign: Campaign, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    data = tmp_path / "data"
    secrets = {"REEL_INBOUND_WEBHOOK_SECRETS": f"{OLD_WHSEC},{NEW_WHSEC}"}
    with reel_serve(campaign.root.parent, data, workers=1, env=secrets) as (url, key):
        yield url, key, data


def page_token(url: str, key: str, data: Path, rid: str) -> str:
    """A recipient's page, and the signed token its player sends with its beacons."""
    body = json.dumps({"campaign_id": "tiny", "data": {"first_name": rid.title()}}).encode()
    headers = {"content-type": "application/json", "x-api-key": key}
    status, view = request(f"{url}/recipients/{rid}/data", body, headers, "PUT")
    assert status == 200, view
    token = str(view["page"]).rsplit("/v/", 1)[1]
    secret = (data / "tracking.key").read_text().strip()
    return signed_token(secret, token, rid, "tiny")


def db(data: Path, query: str, *args: Any) -> Any:
    with sqlite3.connect(data / "reel.db") as conn:
        return conn.execute(query, args).fetchone()[0]


def test_concurrent_duplicate_beacons_are_stored_once(
    server: tuple[str, str, Path],
) -> None:
    url, key, data = server
    ada = page_token(url, key, data, "ada")
    others = {rid: page_token(url, key, data, rid) for rid in ("bo", "cy", "di", "ed")}
    json_headers = {"content-type": "application/json"}
    same = beacon(ada, "ada-same")
    # GIVEN eight copies of one beacon, and sixteen beacons of their own (four recipients'),
    # WHEN they all arrive at once (24 connections: more than a default listen backlog)
    own = [(rid, beacon(token, f"{rid}-own{i}")) for i in range(4) for rid, token in others.items()]

    def post(body: bytes) -> Callable[[], Any]:
        return lambda: request(f"{url}/events", body, json_headers)

    calls = [post(same) for _ in range(THREADS)] + [post(body) for _, body in own]
    answers = at_once(calls)
    assert {status for status, _ in answers} == {202}, answers
    copies, singles = answers[:THREADS], answers[THREADS:]
    # THEN one copy stored the beacon's five events and the seven others were duplicates
    assert sum(body["stored"] for _, body in copies) == 5
    assert sum(body["duplicates"] for _, body in copies) == 5 * (THREADS - 1)
    # AND every other beacon was stored whole, as its own (no request saw another's body)
    assert [body for _, body in singles] == [{"received": 5, "stored": 5, "duplicates": 0}] * 16
    total = 5 + 5 * len(own)
    assert db(data, "SELECT COUNT(*) FROM events") == total
    for rid, _ in own:
        query = "SELECT COUNT(*) FROM events WHERE key LIKE ?"
        assert db(data, query, f'["tiny", "{rid}", "{rid}-own%') == 20
    # AND every event sent was put on the relay queue, which delivers each once
    # (tests/reliability/test_fault_relay.py); the outbox's ids only grow
    sent = 5 * THREADS + 5 * len(own)
    assert db(data, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'") == sent


def test_a_webhook_replayed_concurrently_starts_one_render(
    server: tuple[str, str, Path],
) -> None:
    url, _, data = server
    payload = json.dumps({"recipient_id": "ada", "first_name": "Ada"}).encode()
    headers = standard_headers(payload, time.time(), msg_id="msg_concurrent_0001")
    # WHEN eight copies of one signed message arrive at once
    answers = at_once([lambda: request(f"{url}/hooks/generic/tiny", payload, headers)] * THREADS)
    # THEN one starts a render and the seven others are refused as replays
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] + [409] * (THREADS - 1), answers
    replays = [body for status, body in answers if status == 409]
    assert {b["error"]["code"] for b in replays} == {"replayed"}
    assert db(data, "SELECT COUNT(*) FROM jobs WHERE kind = 'render'") == 1
    assert db(data, "SELECT COUNT(*) FROM claims") == 1


# ── on DynamoDB (moto) ────────────────────────────────────────────────────────────────────


def test_replays_on_dynamodb_are_stored_once(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_INBOUND_WEBHOOK_SECRETS", NEW_WHSEC)
    bootstrap.reset()
    b = bootstrap.backends()
    monkeypatch.setattr(type(b.orchestrator), "start_render", lambda self, render_id: None)
    known = recipients.set_recipient_data(b, "tiny", "ada", {"first_name": "Ada"})
    token = signed_token(TRACKING_SECRET, known.token, "ada", "tiny")
    body = beacon(token, "ada-aws")
    payload = json.dumps({"recipient_id": "ada", "first_name": "Ada"}).encode()
    hook_headers = standard_headers(payload, time.time(), msg_id="msg_aws_replay_01")
    with Client(app, stage_name="dev") as client:
        # WHEN a beacon is sent twice, and a signed webhook twice
        answers = [
            client.http.post("/events", headers={"content-type": "application/json"}, body=body)
            for _ in range(2)
        ]
        hooks = [
            client.http.post("/hooks/generic/tiny", headers=hook_headers, body=payload)
            for _ in range(2)
        ]
    # THEN the second beacon's events are duplicates: conditional puts refused them
    first, second = (json.loads(a.body) for a in answers)
    assert first == {"received": 5, "stored": 5, "duplicates": 0}
    assert second == {"received": 5, "stored": 0, "duplicates": 5}
    dynamodb = boto3.client("dynamodb")
    assert dynamodb.scan(TableName=EVENTS_TABLE, Select="COUNT")["Count"] == 5
    # AND the relay queue got each beacon's events (the relay delivers each event once)
    messages = []
    while batch := aws.sqs.receive_message(
        QueueUrl=aws.relay_queue_url, MaxNumberOfMessages=10
    ).get("Messages"):
        messages += [json.loads(m["Body"]) for m in batch]
    ids = sorted(m["event"]["id"] for m in messages)
    assert ids == sorted([f"ada-aws-{i:04d}" for i in range(5)] * 2)
    # AND the webhook started one render: its replay met the claim's conditional put
    assert [h.status_code for h in hooks] == [202, 409]
    renders = dynamodb.scan(
        TableName=TABLE,
        FilterExpression="begins_with(pk, :r)",
        ExpressionAttributeValues={":r": {"S": "render#"}},
        Select="COUNT",
    )
    assert renders["Count"] == 1
