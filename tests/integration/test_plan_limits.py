"""Plan on sources that cannot go through as they are: one deleted before Plan read it fails
the batch saying so; a row too large for the state machine's payloads fails alone."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib import bootstrap
from chalicelib.errors import DataError
from chalicelib.pipeline.jobs import BatchRecord, JobState, new_id
from chalicelib.pipeline.statemachine import MAX_ITEM_BYTES
from chalicelib.services import batches, templates
from tests.conftest import Campaign


def batch_of(campaign: Campaign, source: bytes) -> tuple[BatchRecord, str]:
    b = bootstrap.backends()
    template = templates.register_file(b, campaign.template)
    batch_id = new_id("b")
    key = f"batches/{batch_id}/source.csv"
    b.blobs.put_bytes(key, source)
    now = time.time()
    record = BatchRecord(
        id=batch_id,
        template_id=template.id,
        version=template.version,
        source_key=key,
        items_key=f"batches/{batch_id}/items.json",
        state=JobState.queued,
        created_at=now,
        updated_at=now,
    )
    b.jobs.create_batch(record)
    return record, key


def test_a_source_deleted_before_plan_fails_the_batch_saying_so(campaign: Campaign) -> None:
    record, key = batch_of(campaign, b"first_name\nAnn\n")
    bootstrap.backends().blobs.delete(key)
    with pytest.raises(DataError) as raised:
        batches.plan_batch(bootstrap.backends(), record.id)
    assert raised.value.message == (
        f"the source {key} is gone: it was deleted before the batch read it"
    )


def test_a_row_too_large_for_a_map_item_fails_alone(campaign: Campaign) -> None:
    big = "x" * (MAX_ITEM_BYTES + 10)
    record, _ = batch_of(campaign, f"first_name,note\nAnn,hi\nBob,{big}\nCy,ok\n".encode())
    b = bootstrap.backends()
    planned = batches.plan_batch(b, record.id)
    items = json.loads(b.blobs.get_bytes(planned.items_key))
    assert planned.total == 3
    assert [i.get("error") is None for i in items] == [True, False, True]
    assert items[1]["error"].startswith("line 3: the row is ")
    assert items[1]["error"].endswith(f"bytes as JSON; a batch row is at most {MAX_ITEM_BYTES:,}")
    assert all(len(json.dumps(i)) <= MAX_ITEM_BYTES for i in items)
