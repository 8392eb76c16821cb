"""Just-in-time HLS benchmark against `reel serve` on the demo campaign. Prints one JSON object.

    python bench/realtime_bench.py [--recipients N]

Starts `reel serve` (fresh data and segment cache), then one warm-up recipient (not counted)
whose stream is played through in every rendition: what a template's first viewer does, and
what leaves its static chunks and audio in the cache. Then N NEW recipients (PUT
/recipients/{id}/data: a page and a record, nothing rendered), one after another:

- playlist_ms: the master playlist request → the first rendition's media playlist received;
- first_segment_ms: the same start → the first video chunk's bytes AND the first audio chunk's
  received (fetched side by side after the playlists): when a player can start;
- stalls: chunks (video, and audio fetched alongside) not received by their playback deadline
  at 1×: that start plus the durations of the chunks before them. Chunks are fetched in
  order as fast as they come (no waiting in real time).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/server.py: the one way to start `reel serve` aside

from tests.server import reel_serve  # noqa: E402

DEMO = ROOT / "examples" / "demo"


def get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"accept": "*/*"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return bytes(resp.read())


def put_data(url: str, key: str, rid: str, data: dict[str, Any]) -> str:
    body = json.dumps({"campaign_id": "welcome", "data": data}).encode()
    req = urllib.request.Request(f"{url}/recipients/{rid}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, timeout=60) as resp:
        page = json.loads(resp.read())["page"]
    return str(page).rsplit("/", 1)[1]


def entries(playlist: str, base: str) -> list[tuple[float, str]]:
    """(duration, absolute URL) of each chunk of a media playlist at `base`/, after its
    initialization segment (EXT-X-MAP: no duration of its own, needed before the first)."""
    out = []
    duration = 0.0
    for line in playlist.splitlines():
        if line.startswith('#EXT-X-MAP:URI="'):
            out.append((0.0, urllib.parse.urljoin(base + "/", line[16:].split('"')[0])))
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            out.append((duration, urllib.parse.urljoin(base + "/", line)))
    return out


def records() -> Iterator[dict[str, Any]]:
    """Template variables from the demo's recipients.csv, round and round."""
    with (DEMO / "recipients.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i in range(10_000):
        row = rows[i % len(rows)]
        data: dict[str, Any] = {
            "first_name": f"{row['first_name']} {i}",  # new data: new personal chunks
            "segment": row["segment"],
        }
        if row["renewal_date"]:
            data["renewal_date"] = row["renewal_date"]
        if row["monthly_fee"]:
            data["monthly_fee"] = float(row["monthly_fee"])
        if row["avatar"]:
            data["avatar"] = row["avatar"]
        if row["city"]:
            data["city"] = row["city"]
        yield data


def fetch_in_order(
    chunks: list[tuple[float, str]],
    both: threading.Barrier,
    firsts: list[float],
    late: list[int],
    fetch: Callable[[str], bytes] = get,
) -> None:
    """Fetch chunks one after another; count those arriving after their 1× deadline. Playback
    starts when the first video and the first audio chunk have both arrived (`firsts`)."""
    elapsed = 0.0
    first = next(i for i, (duration, _) in enumerate(chunks) if duration > 0)
    for i, (duration, url) in enumerate(chunks):
        fetch(url)
        arrived = time.monotonic()
        if i < first:
            continue  # the initialization segment: needed before the first chunk, no deadline
        if i == first:
            firsts.append(arrived)
            both.wait()
        if arrived > max(firsts) + elapsed + 1e-3:
            late.append(i)
            print(f"late: chunk {i} by {arrived - max(firsts) - elapsed:.3f} s", file=sys.stderr)
        elapsed += duration


def view(url: str, token: str, fetch: Callable[[str], bytes] = get) -> dict[str, Any]:
    """One viewer: master → first rendition → its chunks (and the audio's) in order."""
    base = f"{url}/hls/{token}"
    t0 = time.monotonic()
    master = fetch(f"{base}/index.m3u8").decode()
    first_variant = next(ln for ln in master.splitlines() if ln and not ln.startswith("#"))
    video = entries(fetch(f"{base}/{first_variant}").decode(), base)
    playlist_ms = (time.monotonic() - t0) * 1000
    audio = entries(fetch(f"{base}/audio.m3u8").decode(), base)
    firsts: list[float] = []
    both = threading.Barrier(2)
    late_video: list[int] = []
    late_audio: list[int] = []
    sound = threading.Thread(target=fetch_in_order, args=(audio, both, firsts, late_audio, fetch))
    sound.start()
    fetch_in_order(video, both, firsts, late_video, fetch)
    sound.join()
    return {
        "playlist_ms": playlist_ms,
        "first_segment_ms": (max(firsts) - t0) * 1000,
        "stalls": len(late_video) + len(late_audio),
        "segments": sum(d > 0 for d, _ in video) + sum(d > 0 for d, _ in audio),
        "personal": sum("/p/" in u for _, u in video),
    }


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reel-rt-bench-") as tmp:
        templates = Path(tmp) / "templates"
        templates.mkdir()
        (templates / "demo").symlink_to(DEMO)
        cache = {"REEL_CACHE_DIR": str(Path(tmp) / "cache")}
        serving = reel_serve(
            templates, Path(tmp) / "data", workers=None, env=cache, start_timeout=120
        )
        with serving as (url, key):
            data = records()
            # The template's first viewers, one per offer variant (as a batch's first renders
            # do): its static chunks and audio rendered and cached.
            started = time.monotonic()
            for variant in ("starter", "growth", "enterprise"):
                record = {**next(data), "segment": variant}
                token = put_data(url, key, f"warmup-{variant}", record)
                base = f"{url}/hls/{token}"
                master = get(f"{base}/index.m3u8").decode()
                for name in [ln for ln in master.splitlines() if ln and not ln.startswith("#")]:
                    for _, chunk in entries(get(f"{base}/{name}").decode(), base):
                        get(chunk)
                for _, chunk in entries(get(f"{base}/audio.m3u8").decode(), base):
                    get(chunk)
            warmup = time.monotonic() - started

            views = []
            i = 0
            while len(views) < args.recipients:
                i += 1
                try:
                    token = put_data(url, key, f"bench-{i:03d}", next(data))
                except urllib.error.HTTPError as exc:  # the demo's deliberately bad rows
                    if exc.code != 400:
                        raise
                    continue
                views.append(view(url, token))
    playlist = [v["playlist_ms"] for v in views]
    first = [v["first_segment_ms"] for v in views]
    print(
        json.dumps(
            {
                "recipients": len(views),
                "playlist_ms_p50": round(pct(playlist, 50), 1),
                "playlist_ms_p95": round(pct(playlist, 95), 1),
                "first_segment_ms_p50": round(pct(first, 50), 1),
                "first_segment_ms_p95": round(pct(first, 95), 1),
                "stalls": sum(v["stalls"] for v in views),
                "segments": sum(v["segments"] for v in views),
                "personal_segments": sum(v["personal"] for v in views),
                "warmup_s": round(warmup, 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
