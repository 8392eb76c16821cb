"""The batch state machine executed by moto's Step Functions engine, its Lambda tasks dispatched
in-process to the real handlers, on moto S3 and DynamoDB with real ffmpeg renders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.backends import Backends
from chalicelib.errors import DataError
from chalicelib.handlers import batch as batch_handlers
from chalicelib.handlers import render as render_handlers
from chalicelib.pipeline import statemachine
from chalicelib.pipeline.jobs import BatchItem, BatchRecord, JobState, Status
from chalicelib.services import batches, renders, templates
from tests.aws import BUCKET, FUNCTIONS, Env, FakeContext


def people(*names: str) -> list[dict[str, Any]]:
    return [{"recipient_id": f"r{i}", "first_name": n} for i, n in enumerate(names)]


def results(batch_id: str) -> dict[str, tuple[str, str | None]]:
    listed = bootstrap.backends().results.list_results(batch_id)
    return {r.recipient_id: (r.status.value, r.reason) for _, r in listed}


def test_a_batch_renders_every_recipient_into_s3(aws: Env) -> None:
    # GIVEN three good records WHEN the batch runs through the state machine
    batch_id, execution = aws.run_batch(people("Ann", "Bo", "Cy"))

    # THEN the execution succeeds, three MP4s land in S3 and the batch is done
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {
        "batch_id": batch_id,
        "counts": {"rendered": 3, "cached": 0, "failed": 0},
    }
    assert len(aws.videos()) == 3
    b = bootstrap.backends()
    assert b.results.count_results(batch_id) == {"rendered": 3, "cached": 0, "failed": 0}
    record = batches.get_batch(b, batch_id)
    assert (record.state, record.total) == (JobState.done, 3)
    assert aws.dispatcher.count("render") == 3
    assert aws.dispatcher.count("failure") == 0
    # the Map's ResultWriter wrote its manifest beside the media
    listing = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=statemachine.RESULTS_PREFIX + "/")
    assert [o["Key"].rsplit("/", 1)[-1] for o in listing["Contents"]] == ["manifest.json"]


def test_a_broken_avatar_fails_alone(aws: Env) -> None:
    # GIVEN a template version whose assets include a "PNG" that is not an image
    (aws.campaign.root / "assets" / "broken.png").write_bytes(b"not an image at all")
    templates.register_folder(bootstrap.backends(), aws.campaign.root)
    records = people("Ann", "Bo", "Cy")
    records[1]["avatar"] = "assets/broken.png"

    # WHEN the batch runs
    batch_id, execution = aws.run_batch(records)

    # THEN that recipient is recorded failed, the others render, the execution succeeds
    assert execution["status"] == "SUCCEEDED", execution
    got = results(batch_id)
    assert got["r0"][0] == got["r2"][0] == "rendered"
    assert got["r1"][0] == "failed"
    assert len(aws.videos()) == 2
    assert batches.get_batch(bootstrap.backends(), batch_id).state == JobState.done
    # a bad record is a failed result of the render function, not a Lambda error
    assert aws.dispatcher.count("failure") == 0


def test_a_throttled_render_is_retried(aws: Env) -> None:
    # GIVEN Lambda answers the first render invocation with TooManyRequestsException
    aws.dispatcher.throttle["render"] = 1

    # WHEN the batch runs
    batch_id, execution = aws.run_batch(people("Ann", "Bo", "Cy"))

    # THEN the Retry invokes it again and every recipient renders
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.dispatcher.count("render") == 4
    assert bootstrap.backends().results.count_results(batch_id)["rendered"] == 3
    assert len(aws.videos()) == 3


def test_a_crashing_render_is_caught_and_recorded_failed(
    aws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the render of one recipient raises an unexpected exception
    real = batches.render_item

    def crash_for_bo(b: Backends, batch_id: str, item: BatchItem) -> Any:
        if (item.fields or {}).get("first_name") == "Bo":
            raise RuntimeError("segfault in the encoder")
        return real(b, batch_id, item)

    monkeypatch.setattr(batches, "render_item", crash_for_bo)

    # WHEN the batch runs
    batch_id, execution = aws.run_batch(people("Ann", "Bo", "Cy"))

    # THEN that recipient is recorded failed with the reason; the others render; the batch is
    # done. The render invocation records it itself (the others of its batch go on): the
    # Catch and RecordFailure are for an invocation that dies as a whole
    assert execution["status"] == "SUCCEEDED", execution
    got = results(batch_id)
    assert got["r1"] == ("failed", "RuntimeError: segfault in the encoder")
    assert got["r0"][0] == got["r2"][0] == "rendered"
    assert aws.dispatcher.count("failure") == 0
    assert aws.dispatcher.count("render") == 3  # a crash is not retried: it is recorded
    assert batches.get_batch(bootstrap.backends(), batch_id).state == JobState.done


def test_a_failed_child_execution_does_not_fail_the_batch(
    aws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one recipient whose render crashes AND whose failure cannot be recorded either, so
    # that its child execution of the Distributed Map fails (the Catch's target raised)
    real_render, real_failure = batches.render_item, batches.record_failure

    def crash_for_bo(b: Backends, batch_id: str, item: BatchItem) -> Any:
        if (item.fields or {}).get("first_name") == "Bo":
            raise RuntimeError("segfault in the encoder")
        return real_render(b, batch_id, item)

    def unrecordable(b: Backends, batch_id: str, item: BatchItem, reason: str, *args: Any) -> Any:
        if (item.fields or {}).get("first_name") == "Bo":
            raise RuntimeError("the jobs table is unreachable")
        return real_failure(b, batch_id, item, reason, *args)

    monkeypatch.setattr(batches, "render_item", crash_for_bo)
    monkeypatch.setattr(batches, "record_failure", unrecordable)

    # WHEN the batch runs (the Map tolerates failed children: production's 100 %, tests/aws.py;
    # moto goes on after a failed child whatever the figure, so this is about what follows)
    batch_id, execution = aws.run_batch(people("Ann", "Bo", "Cy"))

    # THEN the others render, Finalize still closes the batch, and the execution succeeds
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.dispatcher.count("failure") == 1  # the Catch did run, and raised
    got = results(batch_id)
    assert got == {"r0": ("rendered", None), "r2": ("rendered", None)}  # Bo has no result
    counts = {"rendered": 2, "cached": 0, "failed": 0}
    assert json.loads(execution["output"]) == {"batch_id": batch_id, "counts": counts}
    record = batches.get_batch(bootstrap.backends(), batch_id)
    assert (record.state, record.total) == (JobState.done, 3)
    assert len(aws.videos()) == 2


def test_a_batch_that_cannot_be_planned_fails(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN planning fails (an unreadable source)
    def unreadable(b: Backends, batch_id: str) -> BatchRecord:
        raise DataError("line 1: not UTF-8", field="source")

    monkeypatch.setattr(batches, "plan_batch", unreadable)

    # WHEN the batch runs
    batch_id, execution = aws.run_batch(people("Ann"))

    # THEN the execution fails and the batch is marked failed with the reason
    assert execution["status"] == "FAILED", execution
    assert execution.get("error") == statemachine.BATCH_FAILED_ERROR
    record = batches.get_batch(bootstrap.backends(), batch_id)
    assert record.state == JobState.failed
    assert record.error == "DataError: source: line 1: not UTF-8"
    assert aws.dispatcher.count("render") == 0


def test_a_repeated_render_invocation_does_no_work_twice(
    aws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a planned batch (no execution: the handlers are called directly)
    monkeypatch.setattr(bootstrap.backends().orchestrator, "start_batch", lambda _id: None)
    req = batches.BatchRequest(template_id="tiny", records=people("Ann"))
    batch_id = batches.create_batch(bootstrap.backends(), req).id
    context = FakeContext("reel-render", FUNCTIONS["render"])
    planned = batch_handlers.plan({"batch_id": batch_id}, context)
    item = json.loads(
        aws.s3.get_object(Bucket=planned["bucket"], Key=planned["items_key"])["Body"].read()
    )[0]
    calls: list[int] = []
    real = batches.render_item

    def counted(b: Backends, bid: str, it: BatchItem) -> Any:
        calls.append(it.index)
        return real(b, bid, it)

    monkeypatch.setattr(batches, "render_item", counted)

    # WHEN the same item is invoked twice (a retry after a lost response)
    event = {"batch_id": batch_id, "item": item}
    first = render_handlers.handler(event, context)
    second = render_handlers.handler(event, context)

    # THEN it rendered once and the retry got the stored result
    assert calls == [0]
    assert first == second
    assert first["status"] == Status.rendered.value


def test_a_single_render_invocation_renders_once(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a queued render (POST /renders; its asynchronous invoke is not sent here)
    b = bootstrap.backends()
    monkeypatch.setattr(b.orchestrator, "start_render", lambda _id: None)
    record = renders.create_render(
        b, renders.RenderRequest(template_id="tiny", data={"first_name": "Ann"})
    )
    context = FakeContext("reel-render", FUNCTIONS["render"])

    # WHEN the render function gets the event, twice
    first = render_handlers.handler({"render_id": record.id}, context)
    second = render_handlers.handler({"render_id": record.id}, context)

    # THEN the render is done, its video is in S3, and the second call changed nothing
    assert first == second == {"render_id": record.id, "state": "done"}
    done = renders.get_render(b, record.id)
    assert done.result is not None and done.result.status == Status.rendered
    assert aws.videos() == [record.output_key]
