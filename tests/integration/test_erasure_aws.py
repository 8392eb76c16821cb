"""Erasure on AWS (moto): after erasing a recipient with a unique name, no S3 object (nor any
older version of one) and no DynamoDB item holds a byte of them."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.connectors.base import Outgoing
from chalicelib.errors import NotFoundError
from chalicelib.services import privacy, recipients
from chalicelib.tracking.events import Event
from tests.aws import BUCKET, EVENTS_TABLE, IDEMPOTENCY_TABLE, REGION, TABLE, Env
from tests.conftest import BASE_TEMPLATE, Campaign

NAME = "Quillonette"
RETENTION = "retention: {events: 30d, records: 60d}\n"
RID = "quillonette.vandersloot@example.com"


@pytest.fixture
def campaign(campaign: Campaign) -> Campaign:
    """The tiny campaign with a retention (written before `aws` registers the folder)."""
    campaign.write_template(BASE_TEMPLATE + RETENTION)
    return campaign


def leaks(s3: Any) -> list[str]:
    """Where the name or the id is still found: any version of any object, any item."""
    needles = [NAME.lower().encode(), RID.lower().encode()]
    found = []
    versions = s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
    for page in versions:
        for v in page.get("Versions", []):
            body = s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])
            data = v["Key"].lower().encode() + body["Body"].read().lower()
            found += [f"s3 {v['Key']} ({v['VersionId']})" for n in needles if n in data]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table in (TABLE, EVENTS_TABLE, IDEMPOTENCY_TABLE):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if table == IDEMPOTENCY_TABLE and int(item["expiration"]["N"]) < time.time() + 3700:
                    # A render step's idempotency record (its result names the recipient)
                    # expires within the hour by TTL, whatever happens: README, Privacy.
                    continue
                data = json.dumps(item, ensure_ascii=False).lower().encode()
                found += [f"{table} {item.get('pk', item.get('id'))}" for n in needles if n in data]
    return found


def test_erasing_on_aws_leaves_no_object_version_or_item(aws: Env) -> None:
    # GIVEN a versioned bucket and a batch that rendered the recipient (and someone else)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    _, execution = aws.run_batch(
        [
            {"recipient_id": RID, "first_name": NAME},
            {"recipient_id": "ada@example.com", "first_name": "Ada"},
        ]
    )
    assert execution["status"] == "SUCCEEDED", execution
    b = bootstrap.backends()
    # AND their record replaced once (an older version of their data), events and a delivery
    recipients.set_recipient_data(b, "tiny", RID, {"first_name": NAME, "plan": "pro"})
    b.events.add(
        [
            Event(id="ev-quill-0001", kind="play", ts=1.8e12, campaign_id="tiny",
                  recipient_id=RID, received_at=1.8e9),
        ]
    )  # fmt: skip
    b.deliveries.add(
        [
            Outgoing(key="d-quill", connector="webhook", action="event", campaign_id="tiny",
                     recipient_id=RID, data={"name": NAME}),
        ],
        1.8e9,
    )  # fmt: skip
    [page] = b.recipients.recipient_pages("tiny", RID)
    b.blobs.put_bytes(page.poster_key, b"a second version of the poster")
    assert leaks(aws.s3), "the test must see them before the erasure"
    # WHEN they are erased (every campaign)
    entry = privacy.erase(b, RID, actor="api")
    # THEN nothing of them is left in any object version or any item
    assert entry.removed["records"] == 1 and entry.removed["batch_rows"] >= 1
    left = leaks(aws.s3)
    assert left == [], left
    # AND their page is gone for good, the other recipient's stays
    assert b.recipients.erased(page.token)
    assert b.recipients.recipient_pages("tiny", "ada@example.com")
    try:
        privacy.export(b, RID)
    except NotFoundError as exc:
        assert exc.field == "recipient_id"
    else:
        raise AssertionError("an erased recipient cannot be exported")


def test_the_sweep_on_aws_removes_old_events_and_stale_records(aws: Env) -> None:
    # GIVEN a record last updated 61 days ago and events of 31 days ago and of now
    b = bootstrap.backends()
    now = time.time()
    old = recipients.set_recipient_data(b, "tiny", RID, {"first_name": NAME})
    recipients.set_recipient_data(b, "tiny", "ada", {"first_name": "Ada"})
    b.recipients.put_recipient(old.model_copy(update={"updated_at": now - 61 * privacy.DAY}))
    b.events.add(
        [
            Event(id=f"ev-{i}-000001", kind="play", ts=1.8e12, campaign_id="tiny",
                  recipient_id="ada", received_at=at)
            for i, at in enumerate((now - 31 * privacy.DAY, now))
        ]
    )  # fmt: skip
    # WHEN the sweep runs against the AWS backend (as `reel sweep` with the stage's settings)
    report = privacy.sweep(b, now)
    # THEN the old event and the stale record are gone, the rest stays
    assert report.removed["events"] == 1 and report.removed["records"] == 1
    assert [e.id for e in b.events.for_campaign("tiny")] == ["ev-1-000001"]
    assert b.recipients.get_recipient("tiny", RID) is None
    assert b.recipients.get_recipient("tiny", "ada") is not None
    assert leaks(aws.s3) == []
