"""An asset host on 127.0.0.1 (HTTP or HTTPS with the test CA of tests/fakes/tls.py) serving
programmed routes, hostile ones included: bodies that never end, stalls, slow drips and
redirects. Every loop is bounded in bytes and seconds, and stops when the client goes away."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import LoopbackServer, QuietHandler

MAX_STREAM_BYTES = 64 * 1024 * 1024  # the most an endless body sends
MAX_WAIT = 10.0  # seconds: the longest a stall or a drip lasts


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]  # names in lower case


@dataclass
class _Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length
    endless: bool = False  # after `body`, zeros until the client stops reading
    stall: float = 0.0  # seconds of silence before the headers
    stall_mid_body: float = 0.0  # seconds of silence after the first bytes of `body`
    drip: float = 0.0  # seconds between the bytes of the body


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        host: AssetHost = self.server.owner
        path = self.path.split("?", 1)[0]
        with host.lock:
            host.hits.append(Hit(path, {k.lower(): v for k, v in self.headers.items()}))
            route = host.routes.get(path)
        if route is None:
            route = _Route(404, b"not found", {"Content-Type": "text/plain"})
        if route.stall:
            host.stopping.wait(min(route.stall, MAX_WAIT))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.length and not route.endless:
            self.send_header("Content-Length", str(len(route.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self._body(route)

    def _body(self, route: _Route) -> None:
        host: AssetHost = self.server.owner
        try:
            if route.drip:
                until = time.monotonic() + MAX_WAIT
                for i in range(len(route.body)):
                    if time.monotonic() > until or host.stopping.wait(route.drip):
                        return
                    self.wfile.write(route.body[i : i + 1])
                    self.wfile.flush()
                return
            if route.stall_mid_body:
                half = len(route.body) // 2
                self.wfile.write(route.body[:half])
                self.wfile.flush()
                host.stopping.wait(min(route.stall_mid_body, MAX_WAIT))
                self.wfile.write(route.body[half:])
            else:
                self.wfile.write(route.body)
            if route.endless:
                zeros = bytes(64 * 1024)
                for _ in range(MAX_STREAM_BYTES // len(zeros)):
                    if host.stopping.is_set():
                        return
                    self.wfile.write(zeros)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
            return  # the client stopped reading: what a guarded fetcher does


class AssetHost(LoopbackServer):
    """`with AssetHost(tls=True) as host:`; program routes, then fetch `host.url + path`."""

    handler = _Handler

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__()
        self.tls = tls
        self.lock = threading.Lock()
        self.routes: dict[str, _Route] = {}
        self.hits: list[Hit] = []
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()  # releases stalls and endless bodies
        super().stop()

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits]

    # ── programming ─────────────────────────────────────────────────────────────────────

    def serve(self, path: str, body: bytes, content_type: str = "application/octet-stream",
              **options: Any) -> str:  # fmt: skip
        """Answer GET `path` with `body`; returns the route's full URL."""
        with self.lock:
            self.routes[path] = _Route(body=body, headers={"Content-Type": content_type}, **options)
        return self.url + path

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        with self.lock:
            self.routes[path] = _Route(status=status, headers={"Location": location})
        return self.url + path

    def endless(self, path: str, head: bytes) -> str:
        """`head`, then zeros without a Content-Length until the client stops reading."""
        return self.serve(path, head, endless=True)


Resolver = Callable[..., list[tuple[Any, ...]]]


def fake_dns(names: dict[str, list[str]], real: Resolver) -> Resolver:
    """A getaddrinfo answering `names` (host → addresses) and asking `real` for the rest."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        key = host.decode() if isinstance(host, bytes) else host
        if key in names:
            out = []
            for address in names[key]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (
                    (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0))
                )
                out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            return out
        return real(host, port, *args, **kwargs)

    return getaddrinfo
