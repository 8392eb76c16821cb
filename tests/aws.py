"""Reel on moto for tests: the bucket, tables and relay queue, and the `aws` fixture — moto's
Step Functions engine with every lambda:Invoke answered in-process by the real handlers."""

from __future__ import annotations

import io
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.response import StreamingBody
from moto import mock_aws
from moto.core.config import DefaultConfig

from chalicelib import bootstrap
from chalicelib.handlers import batch as batch_handlers
from chalicelib.handlers import render as render_handlers
from chalicelib.pipeline import statemachine
from chalicelib.services import batches, templates
from chalicelib.settings import Settings
from tests.conftest import Campaign

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def create_bucket(name: str) -> S3Client:
    """A bucket in the default region; returns the S3 client that made it."""
    s3 = boto3.client("s3")
    region = s3.meta.region_name
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    return s3


def create_jobs_table(name: str) -> DynamoDBClient:
    """The DynamoJobStore table: partition key `pk` (S), sort key `sk` (S), on demand."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def create_events_table(name: str) -> DynamoDBClient:
    """The DynamoEventStore table: partition key `pk` (S), sort key `sk` (S), on demand."""
    return create_jobs_table(name)  # the same key schema, a table of its own


def create_queue(name: str) -> tuple[SQSClient, str]:
    """A standard SQS queue; returns the SQS client that made it and the queue's URL."""
    sqs = boto3.client("sqs")
    return sqs, sqs.create_queue(QueueName=name)["QueueUrl"]


def create_idempotency_table(name: str) -> DynamoDBClient:
    """Powertools' default idempotency table: partition key `id` (S), on demand."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "reel-test-media"
TABLE = "reel-test-jobs"
IDEMPOTENCY_TABLE = "reel-test-idempotency"
EVENTS_TABLE = "reel-test-events"
RELAY_QUEUE = "reel-test-relay"
TRACKING_SECRET = "test-tracking-secret-not-for-production"
FUNCTIONS = {
    name: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-{name}"
    for name in ("plan", "render", "finalize", "failure")
}
HANDLERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "plan": batch_handlers.plan,
    "render": render_handlers.handler,
    "finalize": batch_handlers.finalize,
    "failure": batch_handlers.record_failure,
}
EXECUTION_DEADLINE = 120.0
#: The state machine's tolerance as deployed (chalicelib.settings; infra/app.py uses the same).
TOLERATED_FAILURE_PERCENTAGE = float(Settings.model_fields["tolerated_failure_percentage"].default)


@dataclass
class FakeContext:
    """What Powertools reads from a LambdaContext."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 2048
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/reel"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Dispatcher:
    """Answers the engine's lambda:Invoke calls by running the real handlers in-process.

    `throttle[name]` service errors (TooManyRequestsException) are answered first; a handler
    that raises becomes a FunctionError "Unhandled" response, as Lambda reports it.
    """

    throttle: Counter[str] = field(default_factory=Counter)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    kinds: Counter[str] = field(default_factory=Counter)  # invocation types of the calls

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # url_path: /2015-03-31/functions/{FunctionName}/invocations
        function = unquote(params["url_path"].split("/")[3])
        name = next(n for n, arn in FUNCTIONS.items() if arn == function)
        body = params.get("body") or b"{}"
        payload = json.loads(body.decode() if isinstance(body, bytes) else body)
        headers = params.get("headers") or {}
        with self.lock:
            self.calls.append((name, payload))
            self.kinds[str(headers.get("X-Amz-Invocation-Type", "RequestResponse"))] += 1
            throttled = self.throttle[name] > 0
            if throttled:
                self.throttle[name] -= 1
        if throttled:
            error = {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}
            return _response(429, {"Error": error, "Type": "User"})
        context = FakeContext(function_name=f"reel-{name}", invoked_function_arn=function)
        try:
            result = HANDLERS[name](payload, context)
        except Exception as exc:  # what the Lambda runtime reports for an unhandled error
            error_payload = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return _response(200, {}, error_payload, function_error="Unhandled")
        return _response(200, {}, result)


def _response(
    status: int, parsed: dict[str, Any], payload: Any = None, function_error: str | None = None
) -> tuple[AWSResponse, dict[str, Any]]:
    meta = {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}}
    parsed = {**parsed, "ResponseMetadata": meta}
    if status < 300:
        data = json.dumps(payload).encode()
        parsed.update(StatusCode=status, ExecutedVersion="$LATEST")
        parsed["Payload"] = StreamingBody(io.BytesIO(data), len(data))
        if function_error:
            parsed["FunctionError"] = function_error
    return AWSResponse("https://lambda.invalid", status, HTTPHeaders(), None), parsed


def for_moto(asl: dict[str, Any]) -> dict[str, Any]:
    """The definition as moto's engine can run it. moto 5.2.5's ASL grammar knows neither the
    Map's ItemBatcher nor EXPRESS children of a Distributed Map ("expecting STANDARD"), so:
    the Map is given an ItemSelector that hands each child the input ItemBatcher makes,
    `{"BatchInput": {...}, "Items": [item]}`, one item per batch; and its children run as
    STANDARD. Batches of several items, and a child run twice (EXPRESS is at least once), are
    tested on the handlers themselves (tests/integration/test_batched_items.py)."""
    out = json.loads(json.dumps(asl))
    for state in out["States"].values():
        if state["Type"] == "Map":
            state["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "STANDARD"
        batcher = state.pop("ItemBatcher", None)
        if batcher is not None:
            state["ItemSelector"] = {
                "BatchInput": batcher["BatchInput"],
                "Items.$": "States.Array($$.Map.Item.Value)",
            }
    return out


@dataclass
class Env:
    dispatcher: Dispatcher
    sfn: Any
    s3: Any
    campaign: Campaign
    scratch: Path
    sqs: Any = None
    relay_queue_url: str = ""

    def run_batch(self, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """Create a batch (which starts the execution) and wait for the execution to end."""
        req = batches.BatchRequest(template_id="tiny", records=records)
        record = batches.create_batch(bootstrap.backends(), req)
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:reel-batch:{record.id}"
        deadline = time.monotonic() + EXECUTION_DEADLINE
        while True:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return record.id, execution
            assert time.monotonic() < deadline, f"execution still running: {execution}"
            time.sleep(0.1)

    def videos(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="videos/")
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture
def aws(campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """moto with the engine on; the bucket, tables, relay queue, the registered tiny template
    and the state machine; lambda:Invoke from the engine answered by a Dispatcher."""
    config: DefaultConfig = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
    }
    with mock_aws(config=config):
        sqs, relay_queue_url = create_queue(RELAY_QUEUE)
        for name, value in {
            "REEL_BACKEND": "aws",
            "REEL_REGION": REGION,
            "REEL_BUCKET": BUCKET,
            "REEL_TABLE": TABLE,
            "REEL_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "REEL_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:reel-batch",
            "REEL_RENDER_FUNCTION": FUNCTIONS["render"],
            "REEL_WORK_DIR": str(tmp_path / "scratch"),
            "REEL_EVENTS_TABLE": EVENTS_TABLE,
            "REEL_RELAY_QUEUE_URL": relay_queue_url,
            "REEL_TRACKING_SECRET": TRACKING_SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        bootstrap.reset()
        s3 = create_bucket(BUCKET)
        create_jobs_table(TABLE)
        create_idempotency_table(IDEMPOTENCY_TABLE)
        create_events_table(EVENTS_TABLE)
        templates.register_folder(bootstrap.backends(), campaign.root)

        sfn = boto3.client("stepfunctions", region_name=REGION)
        asl = statemachine.definition(
            plan_function=FUNCTIONS["plan"],
            render_function=FUNCTIONS["render"],
            finalize_function=FUNCTIONS["finalize"],
            failure_function=FUNCTIONS["failure"],
            # One item at a time, not production's 200: moto's S3 is not thread-safe. Items
            # render concurrently; their audio track has one cache key (audio/…, not warmed by
            # Plan), and two items putting it at once break moto's put_object: the second put
            # disposes of the first one's FakeKey (_VersionedKeyStore.setlist closes its
            # buffer) before the first builds its response from it (FakeKey.etag), and
            # upload_file fails with "ValueError: I/O operation on closed file". Real S3 takes
            # concurrent puts of a key (the last one wins). Seen in 1 run out of 3 to 6 of these
            # tests with MaxConcurrency 200 (moto 5.2.5; a render thread per item).
            max_concurrency=1,
            # Production's tolerance (100 %). moto does not enforce it (its Distributed Map
            # counts a failed child execution and goes on whatever the figure); what the batch
            # makes of a failed child is tested in test_statemachine_moto.
            tolerated_failure_percentage=TOLERATED_FAILURE_PERCENTAGE,
            results_bucket=BUCKET,
            render_timeout=120,
        )
        sfn.create_state_machine(
            name="reel-batch",
            definition=statemachine.to_json(for_moto(asl)),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/reel-batch",
        )
        dispatcher = Dispatcher()
        # The engine builds its clients with boto3.client(...) on boto3's default session.
        events = boto3._get_default_session().events
        # A before-call handler that returns (http, parsed) answers the call without sending it.
        events.register(
            "before-call.lambda.Invoke",
            dispatcher,  # type: ignore[arg-type]
            unique_id="reel-dispatch",
        )
        try:
            yield Env(dispatcher, sfn, s3, campaign, tmp_path / "scratch", sqs, relay_queue_url)
        finally:
            events.unregister("before-call.lambda.Invoke", unique_id="reel-dispatch")
            bootstrap.reset()
