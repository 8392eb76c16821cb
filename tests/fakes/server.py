"""The base of the fakes: a real HTTP(S) server on 127.0.0.1 in a thread, recording requests
and answering programmed failures before the fake's own logic."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from tests.fakes.tls import TLSFiles, tls_files

MAX_BODY = 1 << 20  # a bigger request gets 413
MAX_STALL = 30.0  # seconds: the longest a programmed stall may hold a request


@dataclass(frozen=True)
class Request:
    """One request a fake received, and the status it answered."""

    method: str
    path: str  # decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    body: Any = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, owner: Any, tls: TLSFiles | None, handler: type[BaseHTTPRequestHandler]
    ) -> None:
        self.owner = owner  # the LoopbackServer the handlers answer for
        self.ssl_context = tls.server_context() if tls else None
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(5)  # a silent client cannot hold a handler thread for long
        if self.ssl_context is not None:
            # The handshake happens in the handler's thread, never in the accept loop.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request (a timeout test) is not the fake's error


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that finishes the TLS handshake in its own thread and logs nothing."""

    server: _Server
    timeout = 5

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """A real HTTP(S) server on 127.0.0.1 in a thread: `with Server() as s:`, `s.url`.
    Subclasses set `handler` (its `self.server.owner` is the LoopbackServer) and `tls`."""

    tls = False
    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.tls_files: TLSFiles | None = None

    def start(self) -> Self:
        self.tls_files = tls_files() if self.tls else None
        self._server = _Server(self, self.tls_files, self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


class _Handler(QuietHandler):
    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY or length < 0:
            self._send(Reply(413, {"message": "request too large"}))
            return
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._send(self.server.owner._answer(req))

    def _send(self, reply: Reply) -> None:
        data = reply.encoded()
        self.send_response(reply.status)
        if data and "Content-Type" not in reply.headers:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class FakeServer(LoopbackServer):
    """Start with `with Fake(...) as fake:`; `fake.url` is its base URL. Subclasses implement
    `handle` (called under the fake's lock, so their state needs no more locking) and
    `error_body` (how the real API words an error)."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self._failures: deque[_Failure] = deque()
        self._stalls: list[tuple[float, str | None]] = []
        self._gone = False

    # ── programming ─────────────────────────────────────────────────────────────────────

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: float | str | None = None,
        *,
        body: Any = None,
    ) -> None:
        """Answer the next `n` requests with `status` (and a Retry-After header if given), with
        `body` or the API's usual error body."""
        with self.lock:
            header = None if retry_after is None else str(retry_after)
            self._failures.extend(_Failure(status, header, body) for _ in range(n))

    def stall_next(self, n: int = 1, seconds: float = 2.0, *, method: str | None = None) -> None:
        """Hold each of the next `n` requests (of `method`, if given) `seconds` before handling
        them, as a slow server would: the client times out, the fake still does the work."""
        with self.lock:
            self._stalls.extend([(min(seconds, MAX_STALL), method)] * n)

    def gone(self) -> None:
        """Answer 410 Gone to every request from now on."""
        with self.lock:
            self._gone = True

    def reset_failures(self) -> None:
        with self.lock:
            self._failures.clear()
            self._stalls.clear()
            self._gone = False

    # ── answering ───────────────────────────────────────────────────────────────────────

    def _answer(self, req: Request) -> Reply:
        stall = 0.0
        with self.lock:
            for i, (seconds, method) in enumerate(self._stalls):
                if method in (None, req.method):
                    stall = seconds
                    del self._stalls[i]
                    break
        if stall:
            time.sleep(stall)
        with self.lock:
            if self._gone:
                reply = Reply(410, self.error_body(410, "gone"))
            elif self._failures:
                f = self._failures.popleft()
                body = f.body if f.body is not None else self.error_body(f.status, "failure")
                reply = Reply(f.status, body)
                if f.retry_after is not None:
                    reply.headers["Retry-After"] = f.retry_after
            else:
                try:
                    reply = self.handle(req)
                except (ValueError, KeyError, TypeError) as err:  # a fake's bug: say it loudly
                    reply = Reply(500, self.error_body(500, f"fake error: {err!r}"))
            self.requests.append(
                Request(req.method, req.path, req.query, req.headers, req.body, reply.status)
            )
            return reply

    def handle(self, req: Request) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message, "status": status}

    def client_session(self) -> requests.Session:
        """A requests session that trusts this fake (its test CA, for an HTTPS fake)."""
        session = requests.Session()
        # Else REQUESTS_CA_BUNDLE (or a proxy) from the environment would win over `verify`.
        session.trust_env = False
        if self.tls_files is not None:
            session.verify = str(self.tls_files.ca)
        return session

    @property
    def attempts(self) -> int:
        """How many requests arrived (answered or failed)."""
        with self.lock:
            return len(self.requests)
