"""Failed asynchronous invocations (`reel failures`, GET /failures): listed from the on-failure
queues on moto, retried by invoking the function again; none on the local backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from chalice.test import Client
from moto import mock_aws
from typer.testing import CliRunner

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.failures import NoFailedInvocations, SqsFailedInvocations
from chalicelib.cli import app as cli
from chalicelib.errors import NotFoundError
from tests.aws import ACCOUNT, REGION
from tests.conftest import API_KEY

INCOMING = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-dev-Incoming"
RENDER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-dev-Render"
UPLOAD = {"Records": [{"s3": {"bucket": {"name": "media"}, "object": {"key": "incoming/a.csv"}}}]}
GROUP = {"stream": "s_1", "group": 3}


def destination_record(function: str, payload: dict[str, Any], at: str, error: str) -> str:
    """What Lambda sends an SQS on-failure destination after the last retry."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": at,
            "requestContext": {
                "requestId": "5d1c9f1e-0000-4000-8000-000000000000",
                "functionArn": f"{function}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": payload,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": error, "errorType": "NotFoundError"},
        }
    )


@pytest.fixture
def failures() -> Iterator[tuple[SqsFailedInvocations, Any, list[dict[str, Any]]]]:
    """Both on-failure queues on moto, one dead letter in each; a Lambda client that records
    each Invoke (accepted, as Lambda answers an asynchronous one) instead of sending it."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        incoming = sqs.create_queue(QueueName="incoming-dead-letters")["QueueUrl"]
        render = sqs.create_queue(QueueName="render-dead-letters")["QueueUrl"]
        sqs.send_message(
            QueueUrl=incoming,
            MessageBody=destination_record(
                INCOMING, UPLOAD, "2026-12-03T10:00:00.000Z", "incoming/a.csv: no such object"
            ),
        )
        sqs.send_message(
            QueueUrl=render,
            MessageBody=destination_record(
                RENDER, GROUP, "2026-12-03T11:00:00.000Z", "ffmpeg exited 1"
            ),
        )
        lam = boto3.client("lambda", region_name=REGION)
        calls: list[dict[str, Any]] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            calls.append(dict(params))

        def accepted(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            response = AWSResponse("https://lambda.invalid", 202, HTTPHeaders(), None)
            return response, {"StatusCode": 202}

        lam.meta.events.register("provide-client-params.lambda.Invoke", record)
        lam.meta.events.register("before-call.lambda.Invoke", accepted)
        yield SqsFailedInvocations(sqs, lam, {"incoming": incoming, "render": render}), sqs, calls


def test_the_failures_of_both_queues_are_listed_newest_first_and_left_in_place(
    failures: tuple[SqsFailedInvocations, Any, list[dict[str, Any]]],
) -> None:
    found, _, _ = failures
    # WHEN the failures are listed (twice: a listing consumes nothing)
    first, second = found.recent(), found.recent()
    # THEN the stream render's (newer) comes before the upload's, with the reason and the event
    assert [f.source for f in first] == ["render", "incoming"]
    render, upload = first
    assert render.function == RENDER  # without `:$LATEST`
    assert render.error == "NotFoundError: ffmpeg exited 1"
    assert render.payload == GROUP and render.attempts == 3
    assert upload.function == INCOMING and upload.condition == "RetriesExhausted"
    assert upload.payload == UPLOAD and "no such object" in upload.error
    assert [f.id for f in second] == [f.id for f in first]
    assert len(found.recent(limit=1)) == 1


def test_a_retry_invokes_the_function_again_with_its_event_and_drops_the_dead_letter(
    failures: tuple[SqsFailedInvocations, Any, list[dict[str, Any]]],
) -> None:
    found, _, calls = failures
    upload = next(f for f in found.recent() if f.source == "incoming")
    # WHEN the failed upload is retried
    retried = found.retry(upload.id)
    # THEN its function was invoked once more, asynchronously, with the same S3 event
    assert retried == upload
    [call] = calls
    assert call["FunctionName"] == INCOMING and call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == UPLOAD
    # AND only the render's failure is left
    assert [f.source for f in found.recent()] == ["render"]
    with pytest.raises(NotFoundError):
        found.retry(upload.id)


def test_the_api_lists_and_retries_failures(
    failures: tuple[SqsFailedInvocations, Any, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, _, calls = failures
    monkeypatch.setenv("REEL_API_KEYS", API_KEY)
    bootstrap.reset()
    monkeypatch.setattr(bootstrap, "failures", lambda: found)
    headers = {"x-api-key": API_KEY}
    with Client(app, stage_name="local") as client:
        assert client.http.get("/failures").status_code == 401
        listed = json.loads(client.http.get("/failures", headers=headers).body)["failures"]
        assert [f["source"] for f in listed] == ["render", "incoming"]
        assert client.http.get("/failures?limit=0", headers=headers).status_code == 400
        again = client.http.post(f"/failures/{listed[0]['id']}/retry", headers=headers)
        assert again.status_code == 202
        assert json.loads(again.body)["payload"] == GROUP
        assert client.http.post("/failures/nope/retry", headers=headers).status_code == 404
    assert len(calls) == 1
    bootstrap.reset()


def test_the_cli_lists_and_retries_failures(
    failures: tuple[SqsFailedInvocations, Any, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, _, calls = failures
    monkeypatch.setattr(bootstrap, "failures", lambda: found)
    runner = CliRunner()
    listed = runner.invoke(cli, ["failures"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    assert "reel-dev-Render" in listed.output and "ffmpeg exited 1" in listed.output
    render = found.recent()[0]
    retried = runner.invoke(cli, ["failures", "--retry", render.id])
    assert retried.exit_code == 0, retried.output
    assert json.loads(calls[0]["Payload"]) == GROUP
    missing = runner.invoke(cli, ["failures", "--retry", "nope"])
    assert missing.exit_code != 0


def test_the_local_backend_has_no_failed_invocations(local_app: Client) -> None:
    # The embedded backend renders in its own processes: nothing is invoked asynchronously.
    assert isinstance(bootstrap.failures(), NoFailedInvocations)
    listed = local_app.http.get("/failures", headers={"x-api-key": API_KEY})
    assert listed.status_code == 200 and json.loads(listed.body) == {"failures": []}
    assert (
        local_app.http.post("/failures/x/retry", headers={"x-api-key": API_KEY}).status_code == 404
    )
    assert CliRunner().invoke(cli, ["failures"]).exit_code == 0


def test_an_upload_deleted_before_its_trigger_ran_is_a_failure_listed_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import incoming
    from chalicelib.errors import GoneError
    from tests.aws import create_bucket

    with mock_aws():
        # GIVEN an upload under incoming/ whose object is deleted before the trigger runs
        s3 = create_bucket("reel-media")
        s3.put_object(Bucket="reel-media", Key="incoming/tiny/people.csv", Body=b"first_name\n")
        event = {
            "Records": [
                {
                    "s3": {
                        "bucket": {"name": "reel-media"},
                        "object": {"key": "incoming/tiny/people.csv", "eTag": "abc"},
                    }
                }
            ]
        }
        s3.delete_object(Bucket="reel-media", Key="incoming/tiny/people.csv")
        monkeypatch.setenv("REEL_BACKEND", "aws")
        monkeypatch.setenv("REEL_BUCKET", "reel-media")
        bootstrap.reset()
        # WHEN the trigger runs THEN it fails with an error that says what happened (no
        # KeyError or botocore error), and no batch was started
        with pytest.raises(GoneError) as raised:
            incoming(event, None)
        message = str(raised.value)
        assert "incoming/tiny/people.csv" in message and "deleted before" in message
        # AND once Lambda gave up on it, its on-failure queue lists it, with that reason
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="incoming-dead-letters")["QueueUrl"]
        sqs.send_message(
            QueueUrl=queue,
            MessageBody=json.dumps(
                {
                    "timestamp": "2026-12-03T12:00:00.000Z",
                    "requestContext": {
                        "functionArn": f"{INCOMING}:$LATEST",
                        "condition": "RetriesExhausted",
                        "approximateInvokeCount": 3,
                    },
                    "requestPayload": event,
                    "responsePayload": {
                        "errorType": type(raised.value).__name__,
                        "errorMessage": message,
                    },
                }
            ),
        )
        lam = boto3.client("lambda", region_name=REGION)
        listed = SqsFailedInvocations(sqs, lam, {"incoming": queue}).recent()
        assert [(f.source, f.error) for f in listed] == [("incoming", f"GoneError: {message}")]
        assert listed[0].payload == event
    bootstrap.reset()
