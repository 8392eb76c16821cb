"""Reel Studio benchmark on the demo campaign, through `reel studio`'s HTTP API as its page
calls it. Prints one JSON object.

    python bench/studio_bench.py [--frames N]

Starts `reel studio` on a copy of examples/demo (fresh data), then measures, client side:

- first_frame_ms: the first frame asked for once the server listens (cold: the template is
  loaded, the recipient bound, the layers rasterized);
- frame_ms_p50 / frame_ms_p95: warm frames at random times for random recipients, one request
  after another, each with the template's text as the editor sends it (1280×720);
- validate_ms_p95: checking the template as typed (a different edit each time);
- switch_recipient_ms_p95: choosing another recipient: its timeline, then its frame.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/server.py: the one way to start `reel` aside

from tests.server import reel_studio  # noqa: E402


def _call(base: str, key: str, path: str, body: dict[str, Any]) -> bytes:
    req = urllib.request.Request(f"{base}/studio/api/local/{path}", method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("accept", "*/*")  # a binary answer (the JPEG) needs an Accept that takes it
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, json.dumps(body).encode(), timeout=60) as resp:
        return resp.read()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20)[18], 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="reel-studio-bench-") as tmp:
        campaign = Path(tmp) / "demo"
        shutil.copytree(ROOT / "examples" / "demo", campaign)
        with reel_studio(campaign, Path(tmp) / "data") as url:
            base, key = url.split("/studio#key=")
            recipients = json.loads(_call(base, key, "recipients", {}))["recipients"]
            records = [r["record"] for r in recipients if "record" in r]
            text = (campaign / "template.yaml").read_text()

            started = time.perf_counter()
            _call(base, key, "frame", {"record": records[0], "at": 8.0})
            first_frame = _ms(started)

            frames = []
            for _ in range(args.frames):
                body = {
                    "record": rng.choice(records),
                    "at": rng.uniform(0, 29.5),
                    "files": {"template.yaml": text},
                }
                started = time.perf_counter()
                _call(base, key, "frame", body)
                frames.append(_ms(started))

            checks = []
            for i in range(40):
                edited = text.replace("Northwind Cloud welcome", f"Northwind Cloud welcome {i}")
                started = time.perf_counter()
                _call(base, key, "check", {"files": {"template.yaml": edited}})
                checks.append(_ms(started))

            switches = []
            for record in rng.sample(records, min(20, len(records))):
                started = time.perf_counter()
                _call(base, key, "timeline", {"record": record})
                _call(base, key, "frame", {"record": record, "at": 8.0})
                switches.append(_ms(started))

    print(
        json.dumps(
            {
                "campaign": "examples/demo",
                "size": "1280x720",
                "first_frame_ms": round(first_frame, 1),
                "frames": len(frames),
                "frame_ms_p50": round(statistics.median(frames), 1),
                "frame_ms_p95": _p95(frames),
                "validate_ms_p95": _p95(checks),
                "switch_recipient_ms_p95": _p95(switches),
                "goals": {"frame_ms_p95": 250, "validate_ms_p95": 100},
                "machine": f"{platform.machine()}, {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
