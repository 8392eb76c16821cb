"""No personal data in logs: a batch (one good row, one bad one) and a tracked view relayed to a
CRM, with distinctive names, emails and record values; no captured log line holds any of them.
The same for a batch on AWS (moto), whose Lambda handlers log through Powertools."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.connectors.base import Connector
from chalicelib.connectors.relay import Relay, RelayWorker
from chalicelib.connectors.webhook import WebhookConnector
from chalicelib.services import batches, templates
from tests.aws import Env
from tests.conftest import Campaign
from tests.fakes import WEBHOOK_SECRETS, FakeWebhookReceiver

GOOD = {"recipient_id": "zebulonia.quartz@example.com", "first_name": "Zebulonia",
        "city": "Xylocarpaville", "opt_in": "yes"}  # fmt: skip
BAD = {"recipient_id": "wrongrowena.flax@example.com", "first_name": "Wrongrowena",
       "city": "Quillbarrow", "opt_in": "perhapsqx"}  # fmt: skip
SECRETS = [v.lower() for row in (GOOD, BAD) for k, v in row.items() if k != "opt_in"]
SECRETS.append("perhapsqx")
RULES = """\
rules:
  - id: all
    when: "event.kind == 'play'"
    do: [{connector: webhook, action: event}]
"""


def personal(text: str) -> list[str]:
    lowered = text.lower()
    return [s for s in SECRETS if s in lowered]


def test_a_batch_and_a_tracked_view_log_no_personal_data(
    local_app: Client,
    campaign: Campaign,
    fake_webhook: FakeWebhookReceiver,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    (campaign.root / "rules.yaml").write_text(RULES, encoding="utf-8")
    b = bootstrap.backends()
    templates.register_folder(b, campaign.root)
    mapping = batches.FieldMapping.model_validate({"consent": {"from": "opt_in"}})
    batch = batches.create_batch(
        b, batches.BatchRequest(template_id="tiny", records=[GOOD, BAD], mapping=mapping)
    )
    b.orchestrator.wait(timeout=300)
    counts = b.results.count_results(batch.id)
    assert (counts["rendered"], counts["failed"]) == (1, 1)  # the bad consent value failed
    [page] = b.recipients.recipient_pages("tiny", GOOD["recipient_id"])
    html = local_app.http.get(f"/v/{page.token}").body.decode()
    config = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])
    local_app.http.post(
        "/events",
        headers={"content-type": "application/json"},
        body=json.dumps(
            {"token": config["token"], "events": [{"id": "ev-log-0001", "kind": "play", "ts": 1}]}
        ),
    )
    connectors: dict[str, Connector] = {
        "webhook": WebhookConnector(fake_webhook.endpoint, list(WEBHOOK_SECRETS), timeout=5)
    }
    fake_webhook.fail_next(1, status=400)  # a CRM error message may echo what it was sent
    RelayWorker(Relay(b, connectors), b.queue).step()
    assert fake_webhook.payloads == [] or "Zebulonia" not in json.dumps(fake_webhook.payloads)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert caplog.records, "the test must capture the app's logs"
    assert personal(logged) == []


def test_the_lambda_handlers_log_no_personal_data(
    aws: Env, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.handlers import logger

    # INFO, as the functions run (botocore's DEBUG lines carry the requests' bodies).
    caplog.set_level(logging.INFO)
    stream = io.StringIO()  # Powertools' JSON lines, with their appended keys
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        records = [{k: v for k, v in row.items() if k != "opt_in"} for row in (GOOD, BAD)]
        records[1]["first_name"] = ""  # required: this recipient fails, and says so
        _, execution = aws.run_batch(records)
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    assert execution["status"] == "SUCCEEDED"
    out, err = capfd.readouterr()
    lines = stream.getvalue()
    assert '"message":"recipient rendered"' in lines and '"status":"failed"' in lines
    assert personal(caplog.text + lines + out + err) == []
