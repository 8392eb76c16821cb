"""`reel serve`'s HTTP server: the Chalice app on a socket of this machine, a thread per
connection, a backlog for bursts of beacons. It wraps the app; it does not change it (the app
keeps each thread's request apart by itself: `chalicelib.api.ReelApp`)."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

BACKLOG = 128  # http.server's default of 5 resets a burst of connections (many viewers at once)


class _Server(ThreadedHTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True


class _Handler(ChaliceRequestHandler):
    # The headers and the body go out in two writes: with Nagle's algorithm, each answer on a
    # kept-alive connection waited ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method it has no `do_*` for (TRACE, CONNECT…) with a 501; the
        # app answers 405 (403 for an unknown path), as API Gateway does.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


class LocalServer:
    """The app listening on `host:port` (0: any free port); `url` says where."""

    def __init__(self, app: Chalice, host: str = "127.0.0.1", port: int = 0) -> None:
        config = Config.create(chalice_stage="local", app_name=app.app_name)
        self._dev = LocalDevServer(app, config, host, port, _Handler, _Server)
        self.url = f"http://{host}:{self._dev.server.server_address[1]}"

    def serve_forever(self) -> None:
        self._dev.server.serve_forever()

    def shutdown(self) -> None:
        """Stop serving (from another thread than the one serving)."""
        self._dev.server.shutdown()
        self._dev.server.server_close()
