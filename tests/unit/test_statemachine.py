"""The batch state machine's ASL: every Task retries Lambda service errors and times out, the
Map is a Distributed Map reading the item list from S3, and the payloads match the handlers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from pydantic import BaseModel

from chalicelib.handlers.batch import task_error_reason
from chalicelib.handlers.models import (
    BatchEvent,
    BatchOutput,
    FailureEvent,
    ItemResult,
    PlanOutput,
    RenderBatchEvent,
    RenderEvent,
    RenderItemEvent,
    TaskError,
)
from chalicelib.handlers.render import RenderInput
from chalicelib.pipeline import statemachine as sm

EVENTS = Path(__file__).resolve().parents[1] / "events"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:reel-{}"
ARGS: dict[str, Any] = {
    "plan_function": ARN.format("plan"),
    "render_function": ARN.format("render"),
    "finalize_function": ARN.format("finalize"),
    "failure_function": ARN.format("failure"),
    "max_concurrency": 200,
    "tolerated_failure_percentage": 5,
    "results_bucket": "reel-media",
    "render_timeout": 840,
    "batch_size": 10,
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return sm.definition(**ARGS)


def all_states(asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in asl["States"].items():
        yield name, state
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"])


def states(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(all_states(asl))


def payload_keys(state: dict[str, Any]) -> set[str]:
    return {k.removesuffix(".$") for k in state["Parameters"]["Payload"]}


def test_the_state_names(asl: dict[str, Any]) -> None:
    got = states(asl)
    assert set(got) == set(sm.STATE_NAMES)
    assert len(sm.STATE_NAMES) == len(set(sm.STATE_NAMES))
    assert {n for n, s in got.items() if s["Type"] == "Task"} == set(sm.TASK_NAMES)
    assert asl["StartAt"] == sm.PLAN
    assert asl["States"][sm.RENDER]["ItemProcessor"]["StartAt"] == sm.RENDER_RECIPIENT


def test_every_transition_lands_on_a_state_of_its_scope(asl: dict[str, Any]) -> None:
    def check(scope: dict[str, Any]) -> None:
        names = set(scope["States"])
        assert scope["StartAt"] in names
        for state in scope["States"].values():
            targets = [state.get("Next")] + [c["Next"] for c in state.get("Catch", [])]
            assert all(t in names for t in targets if t is not None)
            assert state["Type"] == "Fail" or ("Next" in state) != bool(state.get("End"))
            if "ItemProcessor" in state:
                check(state["ItemProcessor"])

    check(asl)


def test_every_task_has_a_timeout_and_the_lambda_retry(asl: dict[str, Any]) -> None:
    for name in sm.TASK_NAMES:
        task = states(asl)[name]
        assert task["Resource"] == "arn:aws:states:::lambda:invoke", name
        assert isinstance(task["TimeoutSeconds"], int) and task["TimeoutSeconds"] > 0, name
        assert task["Retry"][:1] == [
            {
                "ErrorEquals": [
                    "Lambda.ServiceException",
                    "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException",
                ],
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ], name
    got = states(asl)
    assert all(len(got[n]["Retry"]) == 1 for n in sm.TASK_NAMES if n != sm.RENDER_RECIPIENT)
    # an EXPRESS child lasts 5 minutes at most: its render task, then RecordFailure's minute
    child = 840 if sm.CHILD_EXECUTION_TYPE == "STANDARD" else 240
    assert got[sm.RENDER_RECIPIENT]["TimeoutSeconds"] == child
    assert got[sm.PLAN]["TimeoutSeconds"] == 840
    standard = states(sm.definition(**{**ARGS, "execution_type": "STANDARD"}))
    express = states(sm.definition(**{**ARGS, "execution_type": "EXPRESS"}))
    assert standard[sm.RENDER_RECIPIENT]["TimeoutSeconds"] == 840
    assert (
        express[sm.RENDER_RECIPIENT]["TimeoutSeconds"]
        + express[sm.RECORD_FAILURE]["TimeoutSeconds"]
        <= sm.EXPRESS_MAX_SECONDS
    )


def test_a_render_retried_while_in_progress_waits_for_it(asl: dict[str, Any]) -> None:
    # a retried invocation whose first attempt still runs meets Powertools' in-progress record
    retry = states(asl)[sm.RENDER_RECIPIENT]["Retry"]
    assert retry[1]["ErrorEquals"] == [IdempotencyAlreadyInProgressError.__name__]
    assert retry[1]["MaxAttempts"] >= 3


def test_render_plan_map_and_finalize_catch_everything(asl: dict[str, Any]) -> None:
    got = states(asl)
    expected = {
        sm.PLAN: sm.FAIL_BATCH,
        sm.RENDER: sm.FAIL_BATCH,
        sm.FINALIZE: sm.FAIL_BATCH,
        sm.RENDER_RECIPIENT: sm.RECORD_FAILURE,
    }
    for name, target in expected.items():
        assert got[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}
        ], name
    # the failure recorders are the end of the line: their own failure is the execution's
    assert "Catch" not in got[sm.RECORD_FAILURE]
    assert got[sm.FAIL_BATCH]["Next"] == sm.BATCH_FAILED
    assert got[sm.BATCH_FAILED] == {
        "Type": "Fail",
        "Error": sm.BATCH_FAILED_ERROR,
        "Cause": got[sm.BATCH_FAILED]["Cause"],
    }


def test_the_map_is_distributed_and_reads_the_item_list_from_s3(asl: dict[str, Any]) -> None:
    render = asl["States"][sm.RENDER]
    assert render["Type"] == "Map"
    assert render["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": sm.CHILD_EXECUTION_TYPE,
    }
    # each child (one render invocation) takes a batch of items, never more than its input holds
    assert render["ItemBatcher"] == {
        "MaxItemsPerBatch": 10,
        "MaxInputBytesPerBatch": sm.MAX_PAYLOAD_BYTES,
        "BatchInput": {"batch_id.$": "$.batch_id"},
    }
    assert sm.MAX_ITEM_BYTES + 4096 < sm.MAX_PAYLOAD_BYTES  # an item and its BatchInput
    assert render["MaxConcurrency"] == 200
    assert render["ToleratedFailurePercentage"] == 5.0
    assert render["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.items_key"},
    }
    assert "ItemSelector" not in render  # the items as Plan wrote them
    assert render["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "reel-media", "Prefix": sm.RESULTS_PREFIX},
    }
    # no item's result accumulates in the execution's state
    assert render["ResultPath"] is None


def test_each_task_calls_its_function(asl: dict[str, Any]) -> None:
    got = states(asl)
    functions = {name: got[name]["Parameters"]["FunctionName"] for name in sm.TASK_NAMES}
    assert functions == {
        sm.PLAN: ARGS["plan_function"],
        sm.RENDER_RECIPIENT: ARGS["render_function"],
        sm.RECORD_FAILURE: ARGS["failure_function"],
        sm.FINALIZE: ARGS["finalize_function"],
        sm.FAIL_BATCH: ARGS["failure_function"],
    }


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_the_payloads_are_the_handlers_inputs(asl: dict[str, Any]) -> None:
    got = states(asl)
    assert payload_keys(got[sm.PLAN]) == fields(BatchEvent)
    assert payload_keys(got[sm.FINALIZE]) == fields(BatchEvent)
    assert payload_keys(got[sm.RENDER_RECIPIENT]) == fields(RenderBatchEvent)
    assert payload_keys(got[sm.RECORD_FAILURE]) == fields(FailureEvent) - {"item"}
    assert payload_keys(got[sm.FAIL_BATCH]) == fields(FailureEvent) - {"item", "items"}
    # the child's input is what ItemBatcher makes: {"BatchInput": {...}, "Items": [...]}
    payload = got[sm.RENDER_RECIPIENT]["Parameters"]["Payload"]
    assert payload == {"batch_id.$": "$.BatchInput.batch_id", "items.$": "$.Items"}
    # Plan's output is what the Map reads: blob keys, never the items
    plan_out = {k.removesuffix(".$") for k in got[sm.PLAN]["ResultSelector"]}
    assert plan_out == fields(PlanOutput)
    assert got[sm.PLAN]["ResultPath"] == "$"
    assert set(asl["States"][sm.RENDER]["ItemBatcher"]["BatchInput"]) == {"batch_id.$"}


def test_the_children_return_two_short_fields(asl: dict[str, Any]) -> None:
    got = states(asl)
    for name in (sm.RENDER_RECIPIENT, sm.RECORD_FAILURE):
        assert got[name]["ResultSelector"] == {"results.$": "$.Payload.results"}
        assert got[name]["ResultPath"] == "$"
    assert fields(BatchOutput) == {"results"}
    assert fields(ItemResult) == {"recipient_id", "status"}
    assert got[sm.FAIL_BATCH]["ResultPath"] is None  # keeps `error` for the Fail state


def test_the_definition_is_small_json(asl: dict[str, Any]) -> None:
    text = sm.to_json(asl)
    assert json.loads(text) == asl
    assert len(text.encode()) < sm.MAX_PAYLOAD_BYTES
    assert sm.definition(**ARGS) == asl  # deterministic


def test_moto_parses_it() -> None:
    # moto knows neither ItemBatcher nor EXPRESS children: tests/aws.py runs the definition
    # without them (what that changes is documented there; asl-validator checks the real one)
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from tests.aws import for_moto

    for percentage in (0, 12.5, 100):
        definition = sm.definition(**{**ARGS, "tolerated_failure_percentage": percentage})
        AmazonStateLanguageParser.parse(sm.to_json(for_moto(definition)))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_concurrency", -1),
        ("tolerated_failure_percentage", 101),
        ("render_timeout", 0),
        ("batch_size", 0),
        ("execution_type", "FAST"),
    ],
)
def test_bad_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        sm.definition(**{**ARGS, name: value})


@pytest.mark.parametrize(
    ("event", "model"),
    [
        ("plan.json", BatchEvent),
        ("finalize.json", BatchEvent),
        ("render_item.json", RenderItemEvent),
        ("render_batch.json", RenderBatchEvent),
        ("record_failure_batch.json", FailureEvent),
        ("render.json", RenderEvent),
        ("record_failure.json", FailureEvent),
        ("fail_batch.json", FailureEvent),
    ],
)
def test_the_sample_events_are_valid_inputs(event: str, model: type[BaseModel]) -> None:
    data = json.loads((EVENTS / event).read_text(encoding="utf-8"))
    model.model_validate(data)
    if model in (RenderItemEvent, RenderEvent, RenderBatchEvent):
        assert isinstance(RenderInput.validate_python(data), model)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            TaskError(
                Error="RuntimeError", Cause='{"errorType":"RuntimeError","errorMessage":"boom"}'
            ),
            "RuntimeError: boom",
        ),
        (TaskError(Error="States.Timeout", Cause=""), "States.Timeout"),
        (
            TaskError(Error="Lambda.TooManyRequestsException", Cause="Rate exceeded (Service: x)"),
            "Lambda.TooManyRequestsException: Rate exceeded (Service: x)",
        ),
    ],
)
def test_a_caught_error_becomes_a_readable_reason(error: TaskError, reason: str) -> None:
    assert task_error_reason(error) == reason


ASL_VALIDATOR = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "asl-validator"


@pytest.mark.parametrize("percentage", [0, 5, 100])
def test_the_definition_passes_asl_validator(tmp_path: Path, percentage: float) -> None:
    # A client we did not write: AWS's own ASL rules, as the asl-validator package has them.
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: `make test` installs it (npm ci)"
    path = tmp_path / "batch.asl.json"
    path.write_text(
        sm.to_json(sm.definition(**{**ARGS, "tolerated_failure_percentage": percentage}))
    )
    proc = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is valid" in proc.stdout
