"""Just-in-time HLS benchmark on the emulated AWS stack (tests/lambdalike). Prints one JSON object.

    python bench/realtime_aws_bench.py [--recipients N]

The stack: API Gateway → the API Lambda (Chalice), the render Lambda by asynchronous
invocations, S3 / DynamoDB / SQS on one moto server, each container a process frozen once it
has answered (see tests/lambdalike/harness.py). The same run as `bench/realtime_bench.py`: three
warm-up recipients (one per offer variant, every rendition played through: the static chunks
rendered, the containers warm), then N NEW recipients, one after another, each stream fetched
chunk by chunk as fast as it comes, by a player that retries a 503 every 0.5 s (the landing
page's hls.js configuration). Stored static chunks come from the store's URLs (the edge).

- first_segment_ms: the master playlist request → the first video and audio chunks (and their
  initialization segments) received;
- stalls: chunks not received by their playback deadline at 1×;
- invocations: by function and kind, during the N recipients;
- billed_ms_per_recipient: the handlers' durations summed (every function), per recipient;
- cold_start_ms: a container's process start → its handler imported and ready (every container
  the run started), and how many started during the N recipients;
- sync_lambda_waits: render invocations some Lambda waited for (RequestResponse): 0 by design.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/lambdalike: the emulated stack

from bench.realtime_bench import entries, pct, records, view  # noqa: E402
from tests.lambdalike.harness import API_KEY, lambda_stack  # noqa: E402

DEMO = ROOT / "examples" / "demo"
RETRY_SECONDS = 0.5  # as the landing page's hls.js retries a chunk answered 503
retries = Counter[str]()


def get(url: str) -> bytes:
    """GET like a player: a 503 (a chunk still rendering) is asked again shortly."""
    for _ in range(240):
        req = urllib.request.Request(url, headers={"accept": "*/*"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            retries["503"] += 1
            time.sleep(RETRY_SECONDS)
    raise RuntimeError(f"{url} was never ready")


def put_data(url: str, rid: str, data: dict[str, Any]) -> str:
    body = json.dumps({"campaign_id": "welcome", "data": data}).encode()
    req = urllib.request.Request(f"{url}/recipients/{rid}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", API_KEY)
    with urllib.request.urlopen(req, timeout=120) as resp:
        page = json.loads(resp.read())["page"]
    return str(page).rsplit("/", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="reel-rt-aws-bench-") as tmp,
        lambda_stack(Path(tmp), api_concurrency=2, render_concurrency=3) as stack,
    ):
        os.environ.update(stack.environ)  # this process registers the template
        from chalicelib import bootstrap
        from chalicelib.services import templates

        bootstrap.reset()
        templates.register_folder(bootstrap.backends(), DEMO)
        h, url = stack.harness, stack.url
        data = records()
        started = time.monotonic()
        for variant in ("starter", "growth", "enterprise"):
            token = put_data(url, f"warmup-{variant}", {**next(data), "segment": variant})
            base = f"{url}/hls/{token}"
            master = get(f"{base}/index.m3u8").decode()
            names = [ln for ln in master.splitlines() if ln and not ln.startswith("#")]
            for name in [*names, "audio.m3u8"]:
                for _, part in entries(get(f"{base}/{name}").decode(), base):
                    get(part)
        h.settle(300)
        warmup = time.monotonic() - started
        mark, containers = len(h.invocations), len(h.cold_starts_ms())
        retries.clear()

        views = []
        i = 0
        while len(views) < args.recipients:
            i += 1
            try:
                token = put_data(url, f"bench-{i:03d}", next(data))
            except urllib.error.HTTPError as exc:  # the demo's deliberately bad rows
                if exc.code != 400:
                    raise
                continue
            views.append(view(url, token, get))
        h.settle(300)
        measured = h.invocations[mark:]
        cold = h.cold_starts_ms()
    first = [v["first_segment_ms"] for v in views]
    kinds = Counter(f"{i.function}:{i.kind}" for i in measured)
    print(
        json.dumps(
            {
                "recipients": len(views),
                "first_segment_ms_p50": round(pct(first, 50), 1),
                "first_segment_ms_p95": round(pct(first, 95), 1),
                "stalls": sum(v["stalls"] for v in views),
                "segments": sum(v["segments"] for v in views),
                "retries_503": retries["503"],
                "invocations": len(measured),
                "invocations_by_kind": dict(sorted(kinds.items())),
                "billed_ms_per_recipient": round(sum(i.ms for i in measured) / len(views), 1),
                "render_ms_per_recipient": round(
                    sum(i.ms for i in measured if i.function == "render") / len(views), 1
                ),
                "sync_lambda_waits": sum(
                    1 for i in measured if i.function == "render" and i.kind == "sync"
                ),
                "cold_start_ms_p50": round(pct(cold, 50), 1),
                "cold_start_ms_max": round(max(cold), 1),
                "cold_starts": len(cold),
                "cold_starts_measured": len(cold) - containers,
                "warmup_s": round(warmup, 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
