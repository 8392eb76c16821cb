"""Plan benchmark: the batch's Plan step on a generated 1,000,000-row CSV, locally. Prints one
JSON object (and keeps it with --out for `make cost`); never run by the tests.

    python bench/plan_bench.py [--rows 1000000] [--out bench/plan.json]

The rows are the demo's recipients.csv, repeated with new ids and names. Plan is
`services.batches.plan_batch` on the local backend: the source read row by row, the item list
written as it goes (a JSON array, what the Distributed Map's ItemReader reads), then the shared
static segments rendered once. Measured: wall and CPU time (reading and writing apart from the
static render), the process's peak resident memory above its baseline, and the source and item
list sizes; then checked against what the Plan function and Step Functions allow.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO = ROOT / "examples" / "demo"

#: What the Plan function may use (infra/pipeline.py gives it the render function's size) and
#: what the Distributed Map reads; the Step Functions figures are from its documentation
#: ("Quotas related to Map Run", "ItemReader"), not re-checked online when this was written.
LIMITS = {
    "lambda_timeout_s": 900,
    "item_reader_json_max_bytes": 10 * 1024**3,
    "map_item_max_bytes": 256 * 1024,  # one child's input (a batch of items)
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_s() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def generate(path: Path, rows: int) -> None:
    """`rows` recipients: the demo's, cycled, each with its own id, name and email."""
    with (DEMO / "recipients.csv").open(newline="", encoding="utf-8") as fh:
        demo = list(csv.DictReader(fh))
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(demo[0]))
        writer.writeheader()
        for i in range(rows):
            row = dict(demo[i % len(demo)])
            row["recipient_id"] = f"r{i:07d}"
            row["first_name"] = f"{row['first_name'][:20]}{i % 997}"
            row["email"] = f"user{i}@example.com"
            writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reel-plan-bench-") as tmp_name:
        tmp = Path(tmp_name)
        from chalicelib import bootstrap
        from chalicelib.settings import Settings

        # explicit settings win over the environment (a local backend in the temporary folder)
        bootstrap.use(Settings(backend="local", data_dir=tmp / "data", cache_dir=tmp / "cache"))
        found = run(bootstrap, tmp, args.rows)
        bootstrap.reset()
    print(json.dumps(found))
    if args.out:
        args.out.write_text(json.dumps(found) + "\n")


def run(bootstrap: Any, tmp: Path, rows: int) -> dict[str, Any]:
    from chalicelib.pipeline.jobs import BatchRecord, JobState, new_id
    from chalicelib.render import engine
    from chalicelib.services import batches, templates

    source = tmp / "recipients.csv"
    started = time.perf_counter()
    generate(source, rows)
    generate_s = time.perf_counter() - started

    b = bootstrap.backends()
    template = templates.register_folder(b, DEMO)
    batch_id = new_id("b")
    source_key = f"batches/{batch_id}/source.csv"
    b.blobs.put_file(source_key, source)
    now = time.time()
    b.jobs.create_batch(
        BatchRecord(
            id=batch_id,
            template_id=template.id,
            version=template.version,
            source_key=source_key,
            items_key=f"batches/{batch_id}/items.json",
            state=JobState.queued,
            created_at=now,
            updated_at=now,
        )
    )
    warm_times: list[tuple[float, float]] = []
    real_warm = engine.warm

    def timed_warm(*a: Any, **kw: Any) -> Any:
        cpu, wall = cpu_s(), time.perf_counter()
        try:
            return real_warm(*a, **kw)
        finally:
            warm_times.append((cpu_s() - cpu, time.perf_counter() - wall))

    engine.warm = timed_warm  # plan_batch imports it at call time
    baseline = peak_rss_mb()
    cpu, wall = cpu_s(), time.perf_counter()
    planned = batches.plan_batch(b, batch_id)
    wall = time.perf_counter() - wall
    cpu = cpu_s() - cpu
    peak = peak_rss_mb()
    engine.warm = real_warm
    warm_cpu, warm_wall = warm_times[0] if warm_times else (0.0, 0.0)
    items_path = b.blobs.path(planned.items_key)
    items_bytes = items_path.stat().st_size
    source_bytes = source.stat().st_size
    from infra.pipeline import RENDER_MEMORY_MB, RENDER_STORAGE_MB

    read_wall = wall - warm_wall
    return {
        "bench": "plan",
        "rows": rows,
        "total": planned.total,
        "source_bytes": source_bytes,
        "items_bytes": items_bytes,
        "item_bytes_mean": round(items_bytes / max(1, planned.total or 1), 1),
        "generate_s": round(generate_s, 1),
        "plan_wall_s": round(wall, 1),
        "plan_cpu_s": round(cpu, 1),
        "read_write_wall_s": round(read_wall, 1),
        "static_render_wall_s": round(warm_wall, 1),
        "static_render_cpu_s": round(warm_cpu, 1),
        "seconds_per_row": round(read_wall / rows, 7),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_baseline_mb": round(peak - baseline, 1),
        "limits": {
            **LIMITS,
            "lambda_memory_mb": RENDER_MEMORY_MB,
            "lambda_tmp_mb": RENDER_STORAGE_MB,
        },
        "within": {
            # the function's time, with the Plan function as fast as this machine
            "lambda_timeout": wall < LIMITS["lambda_timeout_s"],
            "lambda_memory": peak < RENDER_MEMORY_MB,
            # the source downloaded and the item list written both sit in /tmp at once
            "lambda_tmp": (source_bytes + items_bytes) / 2**20 < RENDER_STORAGE_MB,
            "item_reader_file": items_bytes < LIMITS["item_reader_json_max_bytes"],
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
    }


if __name__ == "__main__":
    main()
