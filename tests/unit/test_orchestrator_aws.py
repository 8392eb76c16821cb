"""The Step Functions orchestrator on moto: one execution per batch, renders invoked async.
(What every orchestrator does with a render or a batch: tests/integration/test_orchestrator.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from chalicelib.adapters.stepfunctions import StepFunctionsOrchestrator

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
ROLE = "arn:aws:iam::123456789012:role/reel-batch"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    """A Step Functions client, a Lambda client, and the ARN of a one-Pass state machine."""
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="reel-batch", definition=json.dumps(PASS_MACHINE), roleArn=ROLE
        )["stateMachineArn"]
        yield sfn, boto3.client("lambda"), arn


@pytest.fixture
def orchestrator(aws: tuple[Any, Any, str]) -> StepFunctionsOrchestrator:
    sfn, lam, arn = aws
    return StepFunctionsOrchestrator(sfn, lam, state_machine_arn=arn, render_function="reel-render")


def test_start_batch_starts_one_execution_named_after_the_batch(
    orchestrator: StepFunctionsOrchestrator, aws: tuple[Any, Any, str]
) -> None:
    sfn, _, arn = aws
    # WHEN a batch is started, then started again (a retried request, a duplicate S3 event)
    orchestrator.start_batch("b_0123abcd")
    orchestrator.start_batch("b_0123abcd")
    # THEN there is one execution, named after the batch, whose input is the batch id
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == ["b_0123abcd"]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"batch_id": "b_0123abcd"}


def test_start_batch_after_the_execution_ended_is_harmless(
    orchestrator: StepFunctionsOrchestrator, aws: tuple[Any, Any, str]
) -> None:
    # GIVEN a batch whose execution has ended (Step Functions then answers
    # ExecutionAlreadyExists; while it runs, a same-input start just returns it)
    sfn, _, arn = aws
    orchestrator.start_batch("b_1")
    execution = sfn.list_executions(stateMachineArn=arn)["executions"][0]
    sfn.stop_execution(executionArn=execution["executionArn"])
    # WHEN it is started again
    orchestrator.start_batch("b_1")
    # THEN nothing is raised and no new execution exists
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [("b_1", "ABORTED")]


def test_other_batches_get_their_own_execution(
    orchestrator: StepFunctionsOrchestrator, aws: tuple[Any, Any, str]
) -> None:
    sfn, _, arn = aws
    orchestrator.start_batch("b_1")
    orchestrator.start_batch("b_2")
    names = {e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    assert names == {"b_1", "b_2"}


def test_start_batch_reports_other_errors(aws: tuple[Any, Any, str]) -> None:
    sfn, lam, arn = aws
    missing = arn.replace("reel-batch", "no-such-machine")
    orchestrator = StepFunctionsOrchestrator(
        sfn, lam, state_machine_arn=missing, render_function="reel-render"
    )
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        orchestrator.start_batch("b_1")


def test_start_render_invokes_the_function_asynchronously(
    orchestrator: StepFunctionsOrchestrator, aws: tuple[Any, Any, str]
) -> None:
    # GIVEN a Lambda client that records each Invoke instead of sending it
    _, lam, _ = aws
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def accepted(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://lambda.invalid", 202, HTTPHeaders(), None), {"StatusCode": 202}

    lam.meta.events.register("provide-client-params.lambda.Invoke", record)
    lam.meta.events.register("before-call.lambda.Invoke", accepted)
    # WHEN a render is started
    orchestrator.start_render("r_42")
    # THEN the render function was invoked once, as an event, with the render id
    assert len(calls) == 1
    call = calls[0]
    assert call["FunctionName"] == "reel-render"
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == {"render_id": "r_42"}
