"""A Map child's batch of items on the render handler (moto S3/DynamoDB, real renders): each
recipient rendered in turn through the function's warm /tmp segment cache, a failed one in the
results with its reason, a child run twice (EXPRESS is at least once) re-rendering nothing, and
a batch whose invocation died recorded failed for the recipients it had not done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.backends import Backends
from chalicelib.handlers import batch as batch_handlers
from chalicelib.handlers import render as render_handlers
from chalicelib.pipeline.jobs import BatchItem
from chalicelib.services import batches
from tests.aws import FUNCTIONS, Env, FakeContext


def planned_items(
    aws: Env, monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    monkeypatch.setattr(bootstrap.backends().orchestrator, "start_batch", lambda _id: None)
    req = batches.BatchRequest(template_id="tiny", records=records)
    batch_id = batches.create_batch(bootstrap.backends(), req).id
    context = FakeContext("reel-plan", FUNCTIONS["plan"])
    planned = batch_handlers.plan({"batch_id": batch_id}, context)
    body = aws.s3.get_object(Bucket=planned["bucket"], Key=planned["items_key"])["Body"].read()
    return batch_id, json.loads(body)


def test_a_batch_renders_each_recipient_through_the_warm_tmp_cache(
    aws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a planned batch of four: two good, one bad record, one whose render crashes
    records = [
        {"recipient_id": "r0", "first_name": "Ann"},
        {"recipient_id": "r1", "first_name": ""},
        {"recipient_id": "r2", "first_name": "Bo"},
        {"recipient_id": "r3", "first_name": "Cy"},
    ]
    batch_id, items = planned_items(aws, monkeypatch, records)
    real = batches.render_item

    def crash_for_bo(b: Backends, bid: str, item: BatchItem) -> Any:
        if (item.fields or {}).get("first_name") == "Bo":
            raise RuntimeError("segfault in the encoder")
        return real(b, bid, item)

    monkeypatch.setattr(batches, "render_item", crash_for_bo)
    downloads: list[str] = []
    fetch = S3BlobStore.fetch

    def counted(self: S3BlobStore, key: str, scratch: Path) -> Path:
        downloads.append(key)
        return fetch(self, key, scratch)

    monkeypatch.setattr(S3BlobStore, "fetch", counted)
    context = FakeContext("reel-render", FUNCTIONS["render"])

    # WHEN one invocation gets the whole batch, as ItemBatcher hands it out
    out = render_handlers.handler({"batch_id": batch_id, "items": items}, context)

    # THEN every recipient has its result, in order, the failed ones with their reasons
    assert out == {
        "results": [
            {"recipient_id": "r0", "status": "rendered"},
            {"recipient_id": "r1", "status": "failed"},
            {"recipient_id": "r2", "status": "failed"},
            {"recipient_id": "r3", "status": "rendered"},
        ]
    }
    stored = {r.recipient_id: r for _, r in bootstrap.backends().results.list_results(batch_id)}
    assert stored["r1"].reason == "first_name: is required"
    assert stored["r2"].reason == "RuntimeError: segfault in the encoder"
    # AND the shared segments came from S3 once, then from this function's /tmp
    segment_downloads = [k for k in downloads if k.startswith(("segments/", "audio/"))]
    assert len(segment_downloads) == len(set(segment_downloads))
    assert stored["r3"].segments_cached is not None and stored["r3"].segments_cached >= 2
    tier = bootstrap.tier_dir(bootstrap.settings())
    assert any(tier.rglob("*.mp4"))


def test_a_child_run_twice_renders_nothing_again(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_id, items = planned_items(
        aws,
        monkeypatch,
        [{"recipient_id": f"r{i}", "first_name": n} for i, n in enumerate(["Ann", "Bo"])],
    )
    calls: list[int] = []
    real = batches.render_item

    def counted(b: Backends, bid: str, item: BatchItem) -> Any:
        calls.append(item.index)
        return real(b, bid, item)

    monkeypatch.setattr(batches, "render_item", counted)
    context = FakeContext("reel-render", FUNCTIONS["render"])
    event = {"batch_id": batch_id, "items": items}
    first = render_handlers.handler(event, context)
    # WHEN the same child runs again (an EXPRESS child is at least once)
    second = render_handlers.handler(event, context)
    # THEN each recipient rendered once; the second run got the stored results
    assert calls == [0, 1]
    assert first == second
    assert len(aws.videos()) == 2


def test_a_batch_whose_invocation_died_records_the_rest_failed(
    aws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, items = planned_items(
        aws,
        monkeypatch,
        [{"recipient_id": f"r{i}", "first_name": n} for i, n in enumerate(["Ann", "Bo"])],
    )
    # GIVEN the first recipient rendered before the invocation timed out
    context = FakeContext("reel-render", FUNCTIONS["render"])
    render_handlers.handler({"batch_id": batch_id, "items": items[:1]}, context)
    # WHEN the Catch's RecordFailure gets the batch
    event = {
        "batch_id": batch_id,
        "items": items,
        "error": {"Error": "States.Timeout", "Cause": ""},
    }
    out = batch_handlers.record_failure(event, FakeContext("reel-failure", FUNCTIONS["failure"]))
    # THEN the one done keeps its result; the other is failed with the reason
    stored = {r.recipient_id: r for _, r in bootstrap.backends().results.list_results(batch_id)}
    assert stored["r0"].status.value == "rendered"
    assert (stored["r1"].status.value, stored["r1"].reason) == ("failed", "States.Timeout")
    assert out == {
        "results": [
            {"recipient_id": "r0", "status": "rendered"},
            {"recipient_id": "r1", "status": "failed"},
        ]
    }
