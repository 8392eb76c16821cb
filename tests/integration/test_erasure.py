"""Erasure and export on the embedded default, through the app: after erasing a recipient with
a unique name, no byte of it is left in any file of the data directory (reel.db included) or of
the segment cache; their page answers 410 Gone; the audit log names no one."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.connectors.base import Connector
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.connectors.webhook import WebhookConnector
from chalicelib.services import batches, emails, privacy
from chalicelib.settings import get_settings
from tests.conftest import API_KEY, Campaign
from tests.fakes import WEBHOOK_SECRETS, FakeWebhookReceiver

NAME = "Quillonette"  # nobody else is called that: any byte of it left is a leak
RID = "quillonette.vandersloot@example.com"
KEY = {"x-api-key": API_KEY}
RULES = """\
rules:
  - id: all
    when: "event.kind == 'play'"
    do: [{connector: webhook, action: event}]
"""


def leaks(*roots: Path) -> list[str]:
    """Files holding the name or the recipient id (any case, UTF-8), under the roots."""
    needles = [s.lower().encode() for s in (NAME, RID)]
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes().lower()
                found += [f"{path} has {n!r}" for n in needles if n in data]
    return found


def config(client: Client, path: str) -> dict[str, Any]:
    html = client.http.get(path).body.decode()
    return json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])


def test_erasing_a_recipient_leaves_no_byte_of_them(
    local_app: Client, campaign: Campaign, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN a campaign with rules, rendered for two recipients in a batch from a CSV source
    (campaign.root / "rules.yaml").write_text(RULES, encoding="utf-8")
    b = bootstrap.backends()
    from chalicelib.services import templates

    templates.register_folder(b, campaign.root)
    b.blobs.put_bytes(
        "uploads/people.csv",
        f"recipient_id,first_name,opt_in\n{RID},{NAME},yes\nada@example.com,Ada,yes\n".encode(),
    )
    mapping = batches.FieldMapping.model_validate({"consent": {"from": "opt_in"}})
    batch = batches.create_batch(
        b,
        batches.BatchRequest(template_id="tiny", source="uploads/people.csv", mapping=mapping),
    )
    b.orchestrator.wait(timeout=300)
    assert batches.get_batch(b, batch.id).state == "done"
    # AND the recipient watched (identified: they consent), the relay told the CRM, their email
    # GIF and their stream's poster were made
    [page] = b.recipients.recipient_pages("tiny", RID)
    path = f"/v/{page.token}"
    token = config(local_app, path)["token"]
    events = [{"id": "ev-quill-0001", "kind": "play", "ts": 1.8e12}]
    local_app.http.post(
        "/events",
        headers={"content-type": "application/json"},
        body=json.dumps({"token": token, "events": events}),
    )
    connectors: dict[str, Connector] = {
        "webhook": WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), timeout=5)
    }
    RelayWorker(Relay(b, connectors), b.queue).step()
    assert [p["type"] for p in fake_webhook.payloads].count("reel.event") == 1
    emails.email_snippet(b, page)
    for _ in range(300):
        poster = local_app.http.get(f"{path}/poster.jpg", headers={"accept": "image/jpeg"})
        if poster.status_code == 200:
            break
        time.sleep(0.1)
    assert poster.status_code == 200
    settings = get_settings()
    roots = (settings.data_dir, settings.cache_dir)
    before = leaks(*roots)
    assert any("reel.db" in f for f in before) and any("people.csv" in f for f in before)
    export = local_app.http.get(f"/recipients/{RID}/export?campaign=tiny", headers=KEY)
    assert export.status_code == 200
    document = json.loads(export.body)
    [mine] = document["campaigns"]
    assert mine["record"]["data"]["first_name"] == NAME
    assert [e["id"] for e in mine["events"]] == ["ev-quill-0001"]
    assert len(mine["deliveries"]) == 1 and mine["media"][0]["page"].endswith(page.token)

    segments = {p.name for p in settings.cache_dir.rglob("segments/*/*.mp4")}
    # WHEN the recipient is erased through the API
    response = local_app.http.delete(f"/recipients/{RID}?campaign=tiny", headers=KEY)

    # THEN no byte of them is left anywhere in the data directory or the segment cache
    assert response.status_code == 200, response.body
    entry = json.loads(response.body)
    assert entry["campaigns"] == ["tiny"]
    assert re.fullmatch("api:[0-9a-f]{12}", entry["actor"]) and API_KEY not in entry["actor"]
    assert entry["removed"]["records"] == 1 and entry["removed"]["media"] >= 3
    assert entry["removed"]["batch_rows"] >= 1 and entry["removed"]["deliveries"] == 1
    assert leaks(*roots) == []
    # (their personal segments went too: pixels of their name; the shared ones stay)
    left = {p.name for p in settings.cache_dir.rglob("segments/*/*.mp4")}
    assert left < segments and len(segments - left) >= 2  # the MP4's run, the stream's run
    # AND their page is gone for good; the other recipient is untouched
    assert local_app.http.get(path).status_code == 410
    assert local_app.http.get(f"{path}/poster.jpg").status_code == 410
    assert local_app.http.get(f"/hls/{page.token}/index.m3u8").status_code == 410
    late = local_app.http.post(
        "/events",
        headers={"content-type": "application/json"},
        body=json.dumps(
            {"token": token, "events": [{"id": "ev-late-0001", "kind": "play", "ts": 2}]}
        ),
    )
    assert late.status_code == 403 and leaks(*roots) == []
    [other] = b.recipients.recipient_pages("tiny", "ada@example.com")
    assert local_app.http.get(f"/v/{other.token}").status_code == 200
    # AND the funnel keeps the anonymized view (the campaign keeps aggregates)
    report = local_app.http.get("/campaigns/tiny/analytics")
    assert json.loads(report.body)["anonymous_views"] == 1
    # AND the audit log says who asked, when and what went, naming no one
    [audit] = privacy.audit_log(b)
    assert audit.id == entry["id"] and audit.actor == entry["actor"]
    # AND asking again is a 404 naming the field
    again = local_app.http.delete(f"/recipients/{RID}", headers=KEY)
    assert again.status_code == 404
    assert json.loads(again.body)["error"]["field"] == "recipient_id"
    missing = local_app.http.get("/recipients/nobody/export", headers=KEY)
    assert missing.status_code == 404
    assert json.loads(missing.body)["error"]["field"] == "recipient_id"


def test_erasure_and_export_need_the_api_key(local_app: Client) -> None:
    assert local_app.http.delete("/recipients/ada").status_code == 401
    assert local_app.http.get("/recipients/ada/export").status_code == 401


def test_reel_export_and_erase(campaign: Campaign) -> None:
    from typer.testing import CliRunner

    from chalicelib.cli import app
    from chalicelib.services import recipients, templates

    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    recipients.set_recipient_data(b, "tiny", RID, {"first_name": NAME, "consent": "yes"})
    runner = CliRunner()
    exported = runner.invoke(app, ["export", RID])
    assert exported.exit_code == 0, exported.output
    [mine] = json.loads(exported.stdout)["campaigns"]
    assert mine["record"]["consent"] is True and mine["record"]["data"]["first_name"] == NAME
    erased = runner.invoke(app, ["erase", RID, "--campaign", "tiny"])
    assert erased.exit_code == 0, erased.output
    assert "1 records" in erased.output and RID not in erased.output
    again = runner.invoke(app, ["erase", RID])
    assert again.exit_code == 1 and "recipient_id" in again.output
