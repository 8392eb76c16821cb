"""Render benchmark: seconds per demo video at full quality and in preview. Prints one JSON object.

    python bench/render_bench.py [--recipients N]

Renders the first N recipients of examples/demo (default 3) at 1280×720/30 fps and again with
--preview, and reports wall-clock time per video, the speed relative to real time, and the
preview speed-up. Figures go in the README; tests never assert time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.cli import DEMO_DIR, read_csv_records  # noqa: E402
from chalicelib.render.engine import render  # noqa: E402
from chalicelib.render.ffmpeg import ffmpeg_version  # noqa: E402
from chalicelib.template.bind import bind  # noqa: E402
from chalicelib.template.library import load_template  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=3)
    args = parser.parse_args()
    lt = load_template(DEMO_DIR / "template.yaml")
    plans = [bind(lt, row) for row in read_csv_records(DEMO_DIR / "recipients.csv")]
    plans = plans[: args.recipients]
    timings: dict[str, list[float]] = {"full": [], "preview": []}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("full", "preview"):
            for i, plan in enumerate(plans):
                started = time.perf_counter()
                render(plan, Path(tmp) / f"{mode}_{i}.mp4", preview=mode == "preview")
                timings[mode].append(time.perf_counter() - started)
    video_s = statistics.mean(p.duration for p in plans)
    full = statistics.median(timings["full"])
    preview = statistics.median(timings["preview"])
    print(
        json.dumps(
            {
                "bench": "render",
                "recipients": len(plans),
                "video_seconds": round(video_s, 2),
                "full_s_per_video": round(full, 2),
                "full_x_realtime": round(video_s / full, 2),
                "preview_s_per_video": round(preview, 2),
                "preview_speedup": round(full / preview, 1),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "ffmpeg": ffmpeg_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
