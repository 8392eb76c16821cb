"""The batch state machine (Amazon States Language), built in code from the batch step names.

    Plan ──► Render (Distributed Map over the item list Plan wrote) ──► Finalize
     │          └─ per batch of items: RenderRecipient ──(any error)──► RecordFailure
     └──────────┴──(any error)──► FailBatch ──► BatchFailed (Fail)

Execution input: `{"batch_id": "..."}`. Payloads stay small: Plan returns blob keys (never the
items), the Map reads the item list from S3 itself and batches it (ItemBatcher), each child
returns two short fields per recipient, and
the Map's output is written to S3 by its ResultWriter and then dropped (`ResultPath: null`).

A recipient that cannot be rendered never fails the batch: a ReelError is already a failed
result in `batches.render_item`, and anything else (a crash, a timeout, Lambda errors that
outlive the Retry) is caught and recorded failed by RecordFailure. A batch that cannot run at
all (its source unreadable, the item list missing, Finalize failing) goes to FailBatch, which
marks the batch failed (`batches.fail_batch`) before the execution ends in the Fail state.

Every Task retries Lambda's transient service errors (the AWS-recommended Retry) and has a
timeout; RenderRecipient also waits out a Powertools idempotency record still in progress, so a
retried render never runs twice at once.
"""

from __future__ import annotations

import json
from typing import Any, Final

PLAN: Final = "Plan"
RENDER: Final = "Render"
RENDER_RECIPIENT: Final = "RenderRecipient"
RECORD_FAILURE: Final = "RecordFailure"
FINALIZE: Final = "Finalize"
FAIL_BATCH: Final = "FailBatch"
BATCH_FAILED: Final = "BatchFailed"

#: Every state name, outer states first, then the Map's item processor.
STATE_NAMES: Final = (
    PLAN,
    RENDER,
    FINALIZE,
    FAIL_BATCH,
    BATCH_FAILED,
    RENDER_RECIPIENT,
    RECORD_FAILURE,
)
#: Every Task state (each has TimeoutSeconds and the Lambda service-error Retry).
TASK_NAMES: Final = (PLAN, FINALIZE, FAIL_BATCH, RENDER_RECIPIENT, RECORD_FAILURE)

#: The kind of the Map's child workflows, chosen with `make cost`'s figures (bench/cost.py):
#: at batches of 10 an EXPRESS child (a request and ~20 s of 64 MB) costs less than a STANDARD
#: one's transition. EXPRESS children run at least once: the per-recipient idempotency makes a
#: repeated one re-render nothing. They last 5 minutes at most (EXPRESS_RENDER_TIMEOUT).
CHILD_EXECUTION_TYPE: Final = "EXPRESS"
#: An EXPRESS child lasts at most 300 s: its render task gets this, its RecordFailure the rest.
EXPRESS_MAX_SECONDS: Final = 300
#: The Fail state's error name (what `describe_execution` shows for a batch that could not run).
BATCH_FAILED_ERROR: Final = "Reel.BatchFailed"
#: Where the Map's ResultWriter puts its manifest and result files (then `{MapRunId}/`).
RESULTS_PREFIX: Final = "sfn-results"
#: Seconds for the small bookkeeping tasks (Finalize, RecordFailure, FailBatch).
BOOKKEEPING_TIMEOUT: Final = 60
#: A Step Functions state's input or output, and the whole definition, stay under 256 KB.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: One item of the list (a source row as JSON): a larger row fails alone at Plan, so that any
#: item fits in a child's input with its BatchInput (ItemBatcher cuts batches by bytes too).
MAX_ITEM_BYTES: Final = 200 * 1024

#: The transient Lambda service errors AWS recommends retrying on every Lambda task.
LAMBDA_SERVICE_ERRORS: Final = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_RETRY: Final[dict[str, Any]] = {
    "ErrorEquals": list(LAMBDA_SERVICE_ERRORS),
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}

#: A render retried while its first invocation still runs (a service error after the function
#: started) finds the idempotency record in progress: wait for that render, do not start another.
IDEMPOTENCY_IN_PROGRESS: Final = "IdempotencyAlreadyInProgressError"
IN_PROGRESS_RETRY: Final[dict[str, Any]] = {
    "ErrorEquals": [IDEMPOTENCY_IN_PROGRESS],
    "IntervalSeconds": 10,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}

_INVOKE = "arn:aws:states:::lambda:invoke"


def _task(
    function: str,
    payload: dict[str, Any],
    *,
    timeout: int,
    result: dict[str, Any] | None,
    result_path: str | None,
    comment: str,
) -> dict[str, Any]:
    """A Lambda Task with the service-error Retry; `result` picks fields of the Payload."""
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": comment,
        "Resource": _INVOKE,
        "Parameters": {"FunctionName": function, "Payload": payload},
        "TimeoutSeconds": timeout,
        "Retry": [json.loads(json.dumps(LAMBDA_RETRY))],  # a copy per state
    }
    if result is not None:
        state["ResultSelector"] = result
    state["ResultPath"] = result_path
    return state


def _catch(next_state: str) -> list[dict[str, Any]]:
    """Any error, kept beside the state's input as `$.error` ({"Error", "Cause"})."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": next_state}]


def definition(
    *,
    plan_function: str,
    render_function: str,
    finalize_function: str,
    failure_function: str,
    max_concurrency: int,
    tolerated_failure_percentage: float,
    results_bucket: str,
    render_timeout: int,
    batch_size: int = 1,
    execution_type: str = CHILD_EXECUTION_TYPE,
) -> dict[str, Any]:
    """The batch state machine's ASL; the `*_function` arguments are Lambda ARNs (or names).

    Handlers: plan → `handlers.batch.plan`, render → `handlers.render.handler`, finalize →
    `handlers.batch.finalize`, failure → `handlers.batch.record_failure` (items, or the batch).
    The Map's ItemBatcher hands each child (one render invocation) up to `batch_size` items:
    `{"BatchInput": {"batch_id"}, "Items": [...]}`; one invocation renders them in turn through
    its warm /tmp segment cache.
    """
    if batch_size < 1:
        raise ValueError("batch_size is at least 1")
    if execution_type not in ("STANDARD", "EXPRESS"):
        raise ValueError("execution_type is STANDARD or EXPRESS")
    child_timeout = render_timeout
    if execution_type == "EXPRESS":
        child_timeout = min(render_timeout, EXPRESS_MAX_SECONDS - BOOKKEEPING_TIMEOUT)
    if max_concurrency < 0:
        raise ValueError("max_concurrency is 0 (no limit) or more")
    if not 0 <= tolerated_failure_percentage <= 100:
        raise ValueError("tolerated_failure_percentage is between 0 and 100")
    if render_timeout < 1:
        raise ValueError("render_timeout is at least one second")

    plan = _task(
        plan_function,
        {"batch_id.$": "$.batch_id"},
        timeout=render_timeout,  # reads the source and renders the shared static segments
        result={
            "batch_id.$": "$.Payload.batch_id",
            "bucket.$": "$.Payload.bucket",
            "items_key.$": "$.Payload.items_key",
            "total.$": "$.Payload.total",
        },
        result_path="$",
        comment="Normalize the source into the item list (S3 JSON array); warm static segments",
    )
    plan["Catch"] = _catch(FAIL_BATCH)
    plan["Next"] = RENDER

    render_recipient = _task(
        render_function,
        {"batch_id.$": "$.BatchInput.batch_id", "items.$": "$.Items"},
        timeout=child_timeout,
        result={"results.$": "$.Payload.results"},
        result_path="$",
        comment="Render a batch of recipients in turn; a bad record (or one whose render "
        "crashed) is a failed result of its own, not an error",
    )
    render_recipient["Retry"].append(json.loads(json.dumps(IN_PROGRESS_RETRY)))
    render_recipient["Catch"] = _catch(RECORD_FAILURE)
    render_recipient["End"] = True

    record_failure = _task(
        failure_function,
        {"batch_id.$": "$.BatchInput.batch_id", "items.$": "$.Items", "error.$": "$.error"},
        timeout=BOOKKEEPING_TIMEOUT,
        result={"results.$": "$.Payload.results"},
        result_path="$",
        comment="Record the recipients without a result failed (the Catch's Error and Cause: "
        "the invocation died, timed out); the batch goes on",
    )
    record_failure["End"] = True

    render: dict[str, Any] = {
        "Type": "Map",
        "Comment": "One child execution per batch of items of the list Plan wrote",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.items_key"},
        },
        "ItemBatcher": {
            "MaxItemsPerBatch": batch_size,
            # Plan keeps each item under MAX_ITEM_BYTES: a batch is cut short rather than
            # exceed a child's input.
            "MaxInputBytesPerBatch": MAX_PAYLOAD_BYTES,
            "BatchInput": {"batch_id.$": "$.batch_id"},
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": RENDER_RECIPIENT,
            "States": {RENDER_RECIPIENT: render_recipient, RECORD_FAILURE: record_failure},
        },
        "MaxConcurrency": max_concurrency,
        # A float (0.0, not 0): the ASL is a number either way, and moto's parser wants a decimal.
        "ToleratedFailurePercentage": float(tolerated_failure_percentage),
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": results_bucket, "Prefix": RESULTS_PREFIX},
        },
        "ResultPath": None,  # the results are in S3 (ResultWriter) and in the JobStore
        "Catch": _catch(FAIL_BATCH),
        "Next": FINALIZE,
    }

    finalize = _task(
        finalize_function,
        {"batch_id.$": "$.batch_id"},
        timeout=BOOKKEEPING_TIMEOUT,
        result={"batch_id.$": "$.Payload.batch_id", "counts.$": "$.Payload.counts"},
        result_path="$",
        comment="Count the results and close the batch",
    )
    finalize["Catch"] = _catch(FAIL_BATCH)
    finalize["End"] = True

    fail_batch = _task(
        failure_function,
        {"batch_id.$": "$.batch_id", "error.$": "$.error"},
        timeout=BOOKKEEPING_TIMEOUT,
        result=None,
        result_path=None,
        comment="Mark the batch failed with the error that stopped it",
    )
    fail_batch["Next"] = BATCH_FAILED

    return {
        "Comment": "Reel batch: plan, render every recipient, finalize",
        "StartAt": PLAN,
        "States": {
            PLAN: plan,
            RENDER: render,
            FINALIZE: finalize,
            FAIL_BATCH: fail_batch,
            BATCH_FAILED: {
                "Type": "Fail",
                "Error": BATCH_FAILED_ERROR,
                "Cause": "the batch could not run; its record holds the error",
            },
        },
    }


def to_json(asl: dict[str, Any]) -> str:
    """The definition as CreateStateMachine takes it (compact, stable key order)."""
    return json.dumps(asl, separators=(",", ":"))
