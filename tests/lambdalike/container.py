"""One Lambda container: a process running a real handler, one invocation at a time.

Started by the harness (`python -m tests.lambdalike.container <module.handler> <fd>`), it
imports its handler (the cold start), says it is ready, and freezes itself (SIGSTOP), as Lambda
freezes an execution environment once its init is done and after every response: nothing in it
runs (no thread, no timer) until the harness thaws it (SIGCONT) for its next invocation.

Invocations come as JSON lines on stdin; each answer is one JSON line on the file descriptor
given, with the handler's duration (what Lambda bills). The handler's own output (logs) goes to
stdout, which the harness sends to a file.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import IO, Any


@dataclass
class Context:
    """What the handlers (Powertools) read from a LambdaContext."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float  # time.time() when the invocation times out
    memory_limit_in_mb: int = 3008
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/reel"
    log_stream_name: str = "harness"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def _answer(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message, default=str) + "\n")
    out.flush()
    # Frozen from the moment the answer is out, like Lambda after a response.
    os.kill(os.getpid(), signal.SIGSTOP)


def main() -> None:
    target, fd = sys.argv[1], int(sys.argv[2])
    out = os.fdopen(fd, "w")
    module, name = target.rsplit(".", 1)
    handler = getattr(importlib.import_module(module), name)
    _answer(out, {"ready": True})
    for line in sys.stdin:
        invocation = json.loads(line)
        context = Context(
            function_name=invocation["function"],
            invoked_function_arn=invocation["arn"],
            aws_request_id=invocation["request_id"],
            deadline=time.time() + invocation["timeout"],
        )
        started = time.perf_counter()
        try:
            message: dict[str, Any] = {"result": handler(invocation["payload"], context)}
        except Exception as exc:  # the runtime's report of an unhandled error
            message = {
                "error": {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            }
        message["ms"] = (time.perf_counter() - started) * 1000
        _answer(out, message)


if __name__ == "__main__":
    main()
