"""The old stream design's pattern, reduced to its core: a request is answered at once and its
work is left to a thread of the container (the Scheduler's daemon threads did this)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3

from tests.lambdalike.harness import BUCKET


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"action": "start", "key"}`: schedule the "render" of `key` (an S3 object written by
    a thread a moment later) and answer; `{"action": "ping", "sleep"}`: stay a while."""
    if event["action"] == "start":
        key = str(event["key"])

        def render() -> None:
            time.sleep(0.3)  # the ffmpeg run
            boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"rendered")

        threading.Thread(target=render, daemon=True).start()
        return {"state": "scheduled"}
    time.sleep(float(event.get("sleep", 0)))
    return {"state": "pong"}
