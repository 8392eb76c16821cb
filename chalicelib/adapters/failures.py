"""Failed asynchronous Lambda invocations, read from their on-failure destinations (SQS)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from chalicelib.errors import NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient

#: SQS hands out at most ten messages a receive; a listing polls this many times at most.
RECEIVES = 10
#: How long a message listed stays hidden from another receive: 0, so a listing consumes nothing.
PEEK = 0


class FailedInvocation(BaseModel):
    """One asynchronous invocation Lambda gave up on (retries exhausted or the event too old)."""

    model_config = ConfigDict(extra="forbid")

    id: str  # the dead-letter message's id
    source: str  # which queue: "incoming" (an upload's S3 trigger) or "render" (stream groups)
    function: str  # the function's ARN, without its version
    condition: str  # Lambda's: RetriesExhausted, EventAgeExceeded
    error: str  # the error type and message the last attempt raised
    attempts: int
    at: str  # when Lambda gave up (ISO 8601)
    payload: dict[str, Any]  # the event, as the function was invoked with it


def _unqualified(arn: str) -> str:
    """A function ARN without its version or alias (`…:function:name:$LATEST` → `…:name`)."""
    parts = arn.split(":")
    return ":".join(parts[:7])


def parse(source: str, message_id: str, body: str) -> FailedInvocation:
    """The failure a Lambda destination record (the message's JSON body) describes."""
    record = json.loads(body)
    context = record.get("requestContext", {})
    response = record.get("responsePayload") or {}
    error = (
        f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}"
        if isinstance(response, dict) and response
        else str(record.get("responseContext", {}).get("functionError", ""))
    )
    payload = record.get("requestPayload")
    return FailedInvocation(
        id=message_id,
        source=source,
        function=_unqualified(str(context.get("functionArn", ""))),
        condition=str(context.get("condition", "")),
        error=error,
        attempts=int(context.get("approximateInvokeCount", 0)),
        at=str(record.get("timestamp", "")),
        payload=payload if isinstance(payload, dict) else {"payload": payload},
    )


class SqsFailedInvocations:
    """The failures in the on-failure queues (`source` → queue URL); a retry invokes the
    function again, asynchronously, with the same event, then deletes the dead letter."""

    def __init__(self, sqs: SQSClient, lambda_: LambdaClient, queues: dict[str, str]) -> None:
        self._sqs = sqs
        self._lambda = lambda_
        self._queues = {source: url for source, url in queues.items() if url}

    def _messages(self, url: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` distinct messages of the queue, left in it (visible again at once)."""
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(RECEIVES):
            got = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, max(1, limit - len(seen))),
                VisibilityTimeout=PEEK,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            new = [m for m in got if m["MessageId"] not in seen]
            for m in new:
                seen[m["MessageId"]] = dict(m)
            if not new or len(seen) >= limit:
                break
        return list(seen.values())[:limit]

    def recent(self, limit: int = 50) -> list[FailedInvocation]:
        """The failures of every queue, newest first."""
        found = [
            parse(source, m["MessageId"], m["Body"])
            for source, url in self._queues.items()
            for m in self._messages(url, limit)
        ]
        return sorted(found, key=lambda f: f.at, reverse=True)[:limit]

    def retry(self, failure_id: str) -> FailedInvocation:
        """Invoke the failed function again with its event, and drop the dead letter."""
        for source, url in self._queues.items():
            for m in self._messages(url, 1000):
                if m["MessageId"] != failure_id:
                    continue
                failure = parse(source, failure_id, m["Body"])
                body = json.loads(m["Body"])
                self._lambda.invoke(
                    FunctionName=failure.function,
                    InvocationType="Event",
                    Payload=json.dumps(body.get("requestPayload")).encode(),
                )
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                return failure
        raise NotFoundError(f"failure {failure_id}: not in any dead-letter queue", field="id")


class NoFailedInvocations:
    """The local backend's: it makes no asynchronous Lambda invocations, so none can fail."""

    def recent(self, limit: int = 50) -> list[FailedInvocation]:
        return []

    def retry(self, failure_id: str) -> FailedInvocation:
        raise NotFoundError(
            f"failure {failure_id}: the local backend has no asynchronous invocations",
            field="id",
        )
