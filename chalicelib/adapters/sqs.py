"""Queue on SQS: the relay queue of stored events, sent in batches of up to ten messages."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        BatchResultErrorEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

#: SQS's limits: a message body, and the sum of the bodies of one SendMessageBatch call.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
SEND_ATTEMPTS = 4


def _chunks(bodies: list[str]) -> list[list[str]]:
    """Consecutive runs of at most ten bodies whose sizes add up to at most 256 KiB."""
    chunks: list[list[str]] = []
    size = 0
    for body in bodies:
        n = len(body.encode())
        if not chunks or len(chunks[-1]) == MAX_BATCH_ENTRIES or size + n > MAX_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(body)
        size += n
    return chunks


class SqsQueue:
    """Messages as compact JSON bodies on the (standard) queue at `queue_url`."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def put(self, messages: list[dict[str, Any]]) -> None:
        # ensure_ascii keeps every body inside the characters SQS accepts.
        bodies = [json.dumps(m, separators=(",", ":")) for m in messages]
        for i, body in enumerate(bodies):
            if len(body.encode()) > MAX_MESSAGE_BYTES:
                raise ValueError(
                    f"message {i} is {len(body.encode())} bytes; SQS takes {MAX_MESSAGE_BYTES}"
                )
        for chunk in _chunks(bodies):
            self._send(chunk)

    def _send(self, bodies: list[str]) -> None:
        """Send one batch; the entries SQS reports as failed are sent again, a few times."""
        pending: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)
        ]
        for attempt in range(SEND_ATTEMPTS):
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            failed = response.get("Failed", [])
            if not failed:
                return
            # A sender fault (a malformed entry) fails the same way however often it is sent.
            faults = [f for f in failed if f["SenderFault"]]
            if faults:
                raise ValueError(f"SQS refused {len(faults)} message(s): {_describe(faults)}")
            failed_ids = {f["Id"] for f in failed}
            pending = [e for e in pending if e["Id"] in failed_ids]
            if attempt + 1 < SEND_ATTEMPTS:
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise RuntimeError(
            f"SQS failed {len(failed)} message(s) {SEND_ATTEMPTS} times: {_describe(failed)}"
        )


def _describe(failed: list[BatchResultErrorEntryTypeDef]) -> str:
    return "; ".join(f"{f['Code']}: {f.get('Message', '')}" for f in failed[:3])
