"""Tracking ingest benchmark: `POST /events` on `reel serve` under load. Prints one JSON object.

    python bench/ingest_bench.py [--seconds 30] [--clients 16] [--viewers 40] [--per-request 2]

Starts `reel serve` on 127.0.0.1 (fresh data dir, the demo campaign), gives `--viewers`
recipients a landing page (PUT /recipients/{id}/data: nothing is rendered), and reads each
page's signed token from its HTML, as the player does. Then `--clients` threads, each on its
own keep-alive connection, post beacons for `--seconds`: every request carries `--per-request`
new events of one viewer (the player batches what a second of viewing produced: a play and a
progress step, say), viewers taken round and round.

- events_sent: events in requests that were sent;
- events_stored: events the EventStore holds for the campaign afterwards (read from the
  server's SQLite file through the store itself);
- events_per_s: events answered 2xx per second of the run;
- p99_ms: the 99th-percentile request latency (send → response read).

Goals: events_per_s ≥ 300, events_stored == events_sent (nothing lost, nothing doubled).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/server.py: the one way to start `reel serve` aside

from tests.server import reel_serve  # noqa: E402

DEMO = ROOT / "examples" / "demo"
CAMPAIGN = "welcome"
_CONFIG = re.compile(r'<script id="reel-config" type="application/json">(.*?)</script>', re.S)


def viewer(url: str, key: str, n: int) -> str:
    """A recipient with a landing page; returns the signed token the page gives its script."""
    body = json.dumps({"campaign_id": CAMPAIGN, "data": {"first_name": f"Viewer {n}"}}).encode()
    req = urllib.request.Request(f"{url}/recipients/bench-{n}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, timeout=60) as resp:
        page = json.loads(resp.read())["page"]
    path = urllib.parse.urlsplit(page).path
    with urllib.request.urlopen(f"{url}{path}", timeout=60) as resp:
        html = resp.read().decode()
    match = _CONFIG.search(html)
    assert match, "the landing page has no reel-config"
    return str(json.loads(match.group(1))["token"])


class Client(threading.Thread):
    """Posts beacons on one keep-alive connection until `stop`."""

    def __init__(self, url: str, tokens: list[str], per_request: int, stop: float, first: int):
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.tokens, self.per_request, self.stop, self.next = tokens, per_request, stop, first
        self.sent = self.ok = self.failed_requests = 0
        self.latencies: list[float] = []

    def body(self) -> bytes:
        token = self.tokens[self.next % len(self.tokens)]
        self.next += 1
        now = time.time() * 1000
        events: list[dict[str, Any]] = [
            {"id": uuid.uuid4().hex, "kind": "play", "ts": now, "position": 1.5}
            for _ in range(self.per_request)
        ]
        return json.dumps({"token": token, "events": events}).encode()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"content-type": "application/json"}
        while time.monotonic() < self.stop:
            body = self.body()
            t0 = time.monotonic()
            try:
                conn.request("POST", "/events", body, headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnect on the next request
                status = 0
            self.latencies.append((time.monotonic() - t0) * 1000)
            self.sent += self.per_request
            if 200 <= status < 300:
                self.ok += self.per_request
            else:
                self.failed_requests += 1
        conn.close()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0


def stored_events(data_dir: Path) -> int:
    os.environ["REEL_DATA_DIR"] = str(data_dir)
    from chalicelib import bootstrap

    bootstrap.reset()
    return len(bootstrap.backends().events.for_campaign(CAMPAIGN))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--viewers", type=int, default=40)
    parser.add_argument("--per-request", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reel-ingest-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        # The relay worker runs as in production; no connector is configured, so it only
        # drains the outbox (the work every stored event causes).
        env = {"REEL_CACHE_DIR": str(Path(tmp) / "cache")}
        with reel_serve(DEMO.parent, data_dir, workers=1, env=env) as (url, key):
            tokens = [viewer(url, key, n) for n in range(args.viewers)]
            stop = time.monotonic() + args.seconds
            clients = [
                Client(url, tokens, args.per_request, stop, i * 7) for i in range(args.clients)
            ]
            started = time.monotonic()
            for c in clients:
                c.start()
            for c in clients:
                c.join(timeout=args.seconds + 60)
            elapsed = time.monotonic() - started
        sent = sum(c.sent for c in clients)
        ok = sum(c.ok for c in clients)
        latencies = [ms for c in clients for ms in c.latencies]
        stored = stored_events(data_dir)
    print(
        json.dumps(
            {
                "events_sent": sent,
                "events_stored": stored,
                "events_per_s": round(ok / elapsed, 1),
                "p99_ms": round(pct(latencies, 99), 1),
                "p50_ms": round(pct(latencies, 50), 1),
                "requests": len(latencies),
                "failed_requests": sum(c.failed_requests for c in clients),
                "seconds": round(elapsed, 1),
                "clients": args.clients,
                "events_per_request": args.per_request,
                "goal": {"events_per_s": 300, "events_stored == events_sent": stored == sent},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
