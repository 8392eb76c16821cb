"""A stack that behaves like Lambda, for tests and the benchmark (AWS itself is out of reach).

- Each container is its own process running the real handler (`container.py`). It freezes
  itself (SIGSTOP) as soon as it has answered, and is thawed (SIGCONT) only for its next
  invocation: a thread left running after a response stops there, as on Lambda.
- An invocation goes to an idle (warm) container of its function, else to a new one started
  on demand (a cold start), up to the function's concurrency; beyond it, it waits for one.
- Lambda's Invoke API on 127.0.0.1 (boto3 reaches it through AWS_ENDPOINT_URL_LAMBDA):
  `RequestResponse` runs at once; `Event` is queued and answered 202, then run on a container,
  retried after `retry_delay` with the same request id when it fails (twice, as Lambda does),
  and sent to the dead-letter queue after that.
- API Gateway on 127.0.0.1: an HTTP request becomes the proxy event Chalice reads
  (chalice.local's converter), invoked on an "api" container; its answer becomes the response.
- S3, DynamoDB and SQS: one moto server (`ThreadedMotoServer`) on 127.0.0.1 for every process.

Faults for tests: `crash_on_claim` kills the next render container once it holds its group's
claim (mid-group); `freeze_on_claim` stops it there and never thaws it.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "reel-lambda-media"
TABLE = "reel-lambda-jobs"
IDEMPOTENCY_TABLE = "reel-lambda-idempotency"
EVENTS_TABLE = "reel-lambda-events"
RELAY_QUEUE = "reel-lambda-relay"
DEAD_LETTERS = "reel-lambda-render-dlq"
API_KEY = "lambda-harness-key-0123456789"
RETRIES = 2  # Lambda retries a failed asynchronous invocation twice


@dataclass(frozen=True)
class Function:
    name: str  # "api", "render", … (the deployed name is reel-<name>)
    handler: str  # module.attribute
    concurrency: int  # containers at most
    timeout: float  # seconds an invocation may run

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-{self.name}"


@dataclass
class Invocation:
    """One run of a handler (a retry is another one, with the same request id)."""

    function: str
    request_id: str
    action: str | None  # the payload's "action", if any
    kind: str  # "sync" or "async"
    attempt: int
    container: int
    cold: bool
    ms: float  # the handler's duration (billed), or the time until the container was lost
    outcome: str  # "ok", "error", "crashed" (the process died), "timeout"
    result: Any = None


class ContainerLost(Exception):
    """The container died during an invocation (crashed, killed, timed out)."""


class Container:
    """One execution environment: a process of `container.py` with its handler."""

    _ids = itertools.count(1)

    def __init__(self, fn: Function, env: dict[str, str], logs: Path, start_timeout: float):
        self.id = next(self._ids)
        self.function = fn
        self.dead = False
        read, write = os.pipe()
        started = time.monotonic()
        with open(logs / f"{fn.name}-{self.id}.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.lambdalike.container", fn.handler, str(write)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write,),
                env=env,
                cwd=ROOT,
                text=True,
            )
        os.close(write)
        self._fd, self._buffer = read, b""
        ready = self._read(start_timeout)
        if ready is None or not ready.get("ready"):
            self.kill()
            raise ContainerLost(f"{fn.name} container {self.id} did not start (see its log)")
        self._await_frozen()
        self.cold_start_ms = (time.monotonic() - started) * 1000

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None if the process ended or `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], min(left, 1.0))
            if not ready:
                continue
            data = os.read(self._fd, 1 << 16)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def _await_frozen(self) -> None:
        """Return once the process has stopped itself after answering."""
        _, status = os.waitpid(self.proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.dead = True
            raise ContainerLost(f"{self.function.name} container {self.id} ended")

    def invoke(self, payload: Any, request_id: str, timeout: float) -> dict[str, Any]:
        invocation = {
            "function": f"reel-{self.function.name}",
            "arn": self.function.arn,
            "request_id": request_id,
            "timeout": timeout,
            "payload": payload,
        }
        line = json.dumps(invocation) + "\n"
        assert self.proc.stdin is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        answer = self._read(timeout)
        if answer is None:  # crashed, or timed out: Lambda discards the environment
            self.kill()
            raise ContainerLost(f"{self.function.name} container {self.id} lost")
        self._await_frozen()
        return answer

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        with suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired, ChildProcessError):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin,):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        os.close(self._fd)


class Pool:
    """The containers of one function: warm ones reused (the last used first), new ones
    started on demand up to the function's concurrency."""

    def __init__(self, fn: Function, env: dict[str, str], logs: Path, start_timeout: float):
        self.fn, self.env, self.logs, self.start_timeout = fn, env, logs, start_timeout
        self._cond = threading.Condition()
        self._idle: list[Container] = []
        self._count = 0
        self.containers: list[Container] = []

    def acquire(self) -> tuple[Container, bool]:
        with self._cond:
            while not self._idle and self._count >= self.fn.concurrency:
                self._cond.wait()
            if self._idle:
                return self._idle.pop(), False
            self._count += 1
        try:
            container = Container(self.fn, self.env, self.logs, self.start_timeout)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.containers.append(container)
        return container, True

    def release(self, container: Container) -> None:
        with self._cond:
            if container.dead:
                self._count -= 1
            else:
                self._idle.append(container)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            containers = list(self.containers)
        for container in containers:
            container.kill()


@dataclass
class Fault:
    function: str
    kind: str  # "crash" or "freeze"
    fired: threading.Event = field(default_factory=threading.Event)
    container: Container | None = None


class Harness:
    """The emulated stack (see the module docstring). Use `lambda_stack()` to run one."""

    def __init__(
        self,
        functions: list[Function],
        env: dict[str, str],
        work: Path,
        *,
        retry_delay: float,
        start_timeout: float = 60.0,
    ):
        self.functions = {f.name: f for f in functions}
        self.work = work
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.pools = {f.name: Pool(f, env, logs, start_timeout) for f in functions}
        self.retry_delay = retry_delay
        self.invocations: list[Invocation] = []
        self.dead_letters: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._async: queue.Queue[tuple[str, Any, str, int] | None] = queue.Queue()
        self._pending = 0  # asynchronous invocations queued or running (retries included)
        self._idle = threading.Condition(self._lock)
        self._workers = [
            threading.Thread(target=self._drain, name=f"lambda-async-{i}", daemon=True)
            for i in range(sum(f.concurrency for f in functions))
        ]
        for worker in self._workers:
            worker.start()
        self._timers: list[threading.Timer] = []
        self.dynamodb: Any = None  # set by lambda_stack (the faults watch the claims)
        self.sqs: Any = None  # … and the dead-letter queue
        self.dead_letter_url = ""

    # ── invocations ──

    def function_named(self, name: str) -> Function:
        for fn in self.functions.values():
            if name in (fn.arn, f"reel-{fn.name}", fn.name):
                return fn
        raise KeyError(f"no function {name!r}")

    def invoke(
        self,
        name: str,
        payload: Any,
        *,
        request_id: str | None = None,
        kind: str = "sync",
        attempt: int = 1,
    ) -> dict[str, Any]:
        """Run `payload` on a container of `name`; the container's answer ({"result"} or
        {"error"}, and "ms")."""
        fn = self.functions[name]
        request_id = request_id or str(uuid.uuid4())
        pool = self.pools[name]
        container, cold = pool.acquire()
        action = payload.get("action") if isinstance(payload, dict) else None
        fault = self._take_fault(name, action)
        started = time.monotonic()
        try:
            if fault is not None:
                fault.container = container
                key = str(payload["key"])
                threading.Thread(target=self._watch, args=(fault, key), daemon=True).start()
            answer = container.invoke(payload, request_id, fn.timeout)
            outcome = "error" if "error" in answer else "ok"
        except ContainerLost as exc:
            elapsed = (time.monotonic() - started) * 1000
            lost = "timeout" if elapsed >= fn.timeout * 1000 else "crashed"
            answer = {"error": {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}}
            answer["ms"], outcome = elapsed, lost
        finally:
            pool.release(container)
        with self._lock:
            self.invocations.append(
                Invocation(
                    name,
                    request_id,
                    action,
                    kind,
                    attempt,
                    container.id,
                    cold,
                    float(answer.get("ms", 0.0)),
                    outcome,
                    answer.get("result"),
                )
            )
        return answer

    def invoke_async(self, name: str, payload: Any) -> str:
        """Queue an asynchronous invocation (InvocationType=Event); its request id."""
        request_id = str(uuid.uuid4())
        self._enqueue((name, payload, request_id, 1))
        return request_id

    def _enqueue(self, item: tuple[str, Any, str, int]) -> None:
        with self._lock:
            self._pending += 1
        self._async.put(item)

    def _drain(self) -> None:
        while True:
            item = self._async.get()
            if item is None:
                return
            name, payload, request_id, attempt = item
            try:
                answer = self.invoke(
                    name, payload, request_id=request_id, kind="async", attempt=attempt
                )
                if "error" in answer and attempt <= RETRIES:
                    retry = (name, payload, request_id, attempt + 1)
                    timer = threading.Timer(self.retry_delay, self._enqueue, args=(retry,))
                    timer.daemon = True
                    self._timers.append(timer)
                    timer.start()
                elif "error" in answer:
                    self._dead_letter(name, payload, request_id, answer["error"])
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def _dead_letter(self, name: str, payload: Any, request_id: str, error: Any) -> None:
        """Lambda's on-failure destination: the event and its last error, in the DLQ."""
        record = {
            "requestContext": {
                "requestId": request_id,
                "functionArn": self.functions[name].arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": RETRIES + 1,
            },
            "requestPayload": payload,
            "responsePayload": error,
        }
        with self._lock:
            self.dead_letters.append(record)
        if self.sqs is not None:
            self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=json.dumps(record))

    def settle(self, timeout: float) -> bool:
        """Wait until no asynchronous invocation is queued or running (retries pending count
        as queued once their timer fires); whether that happened within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending or any(t.is_alive() for t in self._timers):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.2))
        return True

    # ── faults ──

    def crash_on_claim(self, function: str = "render") -> Fault:
        """The next stream group's container is killed once it holds the group's claim."""
        return self._add_fault(Fault(function, "crash"))

    def freeze_on_claim(self, function: str = "render") -> Fault:
        """The next stream group's container is frozen (for good) once it holds the claim."""
        return self._add_fault(Fault(function, "freeze"))

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, function: str, action: str | None) -> Fault | None:
        if action != "hls_group":
            return None
        with self._lock:
            for fault in self._faults:
                if fault.function == function:
                    self._faults.remove(fault)
                    return fault
        return None

    def _watch(self, fault: Fault, key: str) -> None:
        assert fault.container is not None and self.dynamodb is not None
        item_key = {"pk": {"S": f"claim#hls:{key}"}, "sk": {"S": "claim"}}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not fault.container.dead:
            found = self.dynamodb.get_item(TableName=TABLE, Key=item_key, ConsistentRead=True)
            if "Item" in found:
                sig = signal.SIGKILL if fault.kind == "crash" else signal.SIGSTOP
                os.kill(fault.container.proc.pid, sig)
                fault.fired.set()
                return
            time.sleep(0.02)

    # ── figures ──

    def cold_starts_ms(self) -> list[float]:
        return [c.cold_start_ms for p in self.pools.values() for c in p.containers]

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for pool in self.pools.values():
            pool.close()
        for _ in self._workers:
            self._async.put(None)


# ── the HTTP fronts: Lambda's Invoke API and API Gateway ─────────────────────────────────────

_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations")


def _lambda_api(harness: Harness) -> type[BaseHTTPRequestHandler]:
    class LambdaApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            match = _INVOKE.match(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if match is None:
                return self._send(404, {"message": "no such operation"})
            try:
                fn = harness.function_named(unquote(match[1]))
            except KeyError:
                return self._send(404, {"Type": "User", "message": "Function not found"})
            payload = json.loads(body or b"{}")
            if self.headers.get("X-Amz-Invocation-Type") == "Event":
                harness.invoke_async(fn.name, payload)
                return self._send(202, None)
            answer = harness.invoke(fn.name, payload)
            if "error" in answer:
                return self._send(200, answer["error"], {"X-Amz-Function-Error": "Unhandled"})
            return self._send(200, answer["result"])

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return LambdaApi


def _gateway(harness: Harness) -> type[BaseHTTPRequestHandler]:
    from chalice.local import LambdaEventConverter, RouteMatcher

    from app import app

    converter = LambdaEventConverter(RouteMatcher(list(app.routes)), app.api.binary_types)

    class Gateway(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()}
            try:
                event = converter.create_lambda_event(self.command, self.path, headers, body)
            except ValueError:
                return self._send(403, {}, b'{"message":"Missing Authentication Token"}')
            if isinstance(event.get("body"), bytes):  # a text body: API Gateway passes a string
                event["body"] = event["body"].decode("utf-8")
            answer = harness.invoke("api", event)
            if "error" in answer:
                return self._send(502, {}, b'{"message": "Internal server error"}')
            result = answer["result"]
            raw = result.get("body") or ""
            data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
            out = dict(result.get("headers") or {})
            for name, values in (result.get("multiValueHeaders") or {}).items():
                out[name] = ", ".join(values)
            return self._send(int(result["statusCode"]), out, data)

        do_GET = do_PUT = do_POST = do_DELETE = _any

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Gateway


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ── the whole stack ──────────────────────────────────────────────────────────────────────────


@dataclass
class Stack:
    harness: Harness
    url: str  # API Gateway's
    moto_url: str
    environ: dict[str, str]  # what the test process must have to reach the same stack


def stack_environment(
    moto_url: str, lambda_url: str, gateway_url: str, work: Path
) -> dict[str, str]:
    """The environment of every container (and of the test process, to set the stack up)."""
    return {
        "REEL_BACKEND": "aws",
        "REEL_REGION": REGION,
        "REEL_BUCKET": BUCKET,
        "REEL_TABLE": TABLE,
        "REEL_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "REEL_EVENTS_TABLE": EVENTS_TABLE,
        "REEL_RENDER_FUNCTION": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-render",
        "REEL_WORK_DIR": str(work / "scratch"),
        "REEL_TRACKING_SECRET": "lambda-harness-tracking-secret",
        "REEL_API_KEYS": API_KEY,
        "REEL_PUBLIC_URL": gateway_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_LAMBDA": lambda_url,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "reel",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


@contextmanager
def lambda_stack(
    work: Path,
    *,
    settings: dict[str, str] | None = None,
    api_concurrency: int = 2,
    render_concurrency: int = 2,
    retry_delay: float = 3.0,
    extra: list[Function] | None = None,
) -> Iterator[Stack]:
    """moto, the Invoke API, API Gateway and the containers of the api and render functions
    (and `extra` ones); `settings`: more REEL_* variables. The test process's environment is
    the caller's to set from `Stack.environ` (monkeypatch, or os.environ in a benchmark)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    # moto keeps its state per process, not per server: start from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    holder: dict[str, Harness] = {}

    class Late:
        """The HTTP fronts start before the harness they call exists."""

        def __getattr__(self, name: str) -> Any:
            return getattr(holder["h"], name)

    late: Any = Late()
    lambda_server, lambda_url = _serve(_lambda_api(late))
    gateway_server, gateway_url = _serve(_gateway(late))
    environ = {**stack_environment(moto_url, lambda_url, gateway_url, work), **(settings or {})}
    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    functions = [
        Function("api", "app.app", api_concurrency, 30.0),
        Function("render", "chalicelib.handlers.render.handler", render_concurrency, 120.0),
        *(extra or []),
    ]
    harness = Harness(functions, env, work, retry_delay=retry_delay)
    holder["h"] = harness
    try:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        s3 = session.client("s3", endpoint_url=moto_url)
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = session.client("dynamodb", endpoint_url=moto_url)
        for table, key in (
            (TABLE, ("pk", "sk")),
            (EVENTS_TABLE, ("pk", "sk")),
            (IDEMPOTENCY_TABLE, ("id",)),
        ):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(key, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in key],
                BillingMode="PAY_PER_REQUEST",
            )
        sqs = session.client("sqs", endpoint_url=moto_url)
        relay = sqs.create_queue(QueueName=RELAY_QUEUE)["QueueUrl"]
        harness.sqs = sqs
        harness.dead_letter_url = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
        environ["REEL_RELAY_QUEUE_URL"] = relay
        env["REEL_RELAY_QUEUE_URL"] = relay
        harness.dynamodb = dynamodb
        yield Stack(harness, gateway_url, moto_url, environ)
    finally:
        harness.close()
        for server in (lambda_server, gateway_server):
            server.shutdown()
            server.server_close()
        moto.stop()
