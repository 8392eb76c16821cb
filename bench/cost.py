"""What a batch costs on AWS (`make cost`): render plus orchestration, per 1,000 and per
1,000,000 recipients, for STANDARD and EXPRESS child workflows. Prints JSON, then a table.

    python bench/cost.py [--bench bench/render.json] [--plan bench/plan.json] [--json-only]
                         [--readme]

Its inputs, each from one place:
- the render benchmark's measured CPU seconds (`make bench` writes bench/render.json; without
  it, the figures of its last run in the README, dated below);
- the plan benchmark's seconds per row (`make bench-plan` writes bench/plan.json; else dated);
- the stack's settings: the render function's memory and /tmp (infra/pipeline.py), the
  Distributed Map's batch size and concurrency (chalicelib/settings.py defaults, what
  infra/app.py deploys), and the child execution type (chalicelib/pipeline/statemachine.py);
- ONE dated table of list prices (PRICES), us-east-1, x86, no free tier.

The model (each assumption named in ASSUMPTIONS): a recipient bills its CPU seconds spread
over the vCPUs Lambda gives the memory size (at most the parallelism the benchmark measured),
plus fixed I/O; an invocation of a batch of recipients adds its bookkeeping; each function
instance the Map starts (up to MaxConcurrency) pays a cold start and fetches the shared static
segments once into its /tmp cache. A STANDARD child is billed its state transitions; an EXPRESS
child a request and its duration (64 MB billed memory); both cost the Map one transition each.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.pipeline import statemachine  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from infra import pipeline  # noqa: E402

#: us-east-1 list prices (x86, no free tier), from the AWS pricing pages of Lambda, Step
#: Functions, S3, SQS and DynamoDB as quoted in infra/README.md on this date. Check them for
#: your region before relying on the result.
PRICES_AS_OF = "2026-11-29"
PRICES: dict[str, float] = {
    "lambda_gb_s": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "lambda_storage_gb_s": 0.0000000309,  # ephemeral storage above the free 512 MB
    "sfn_standard_transition": 0.025 / 1e3,
    "sfn_express_request": 1.00 / 1e6,
    "sfn_express_gb_s": 0.00001667,  # first 1,000 GB-hours a month ($0.06 / GB-hour)
    "s3_put": 0.005 / 1e3,
    "s3_get": 0.0004 / 1e3,
    "sqs_request": 0.40 / 1e6,
    "dynamodb_write": 0.625 / 1e6,
    "dynamodb_read": 0.125 / 1e6,
}

#: The render benchmark's figures when bench/render.json is absent: its run on 2026-11-29
#: (README "Benchmarks": the demo's 30 s videos, 20 recipients, x86_64, 2 cpus).
DEFAULT_RENDER = {
    "measured": "2026-11-29",
    "video_s": 30.0,
    "warm_cpu_s_per_recipient": 2.608,
    "warm_wall_s_per_recipient": 1.653,
    "cold_cpu_s_per_recipient": 11.473,
}
#: The plan benchmark's figure when bench/plan.json is absent (bench/plan_bench.py, 2026-12-03).
DEFAULT_PLAN = {"measured": "2026-12-03", "seconds_per_row": 0.0000704}

ASSUMPTIONS: dict[str, float] = {
    "io_s_per_recipient": 0.5,  # S3 puts of the MP4 (≈ 12 MB) and poster, DynamoDB, the page
    "invocation_s": 0.2,  # a batch's bookkeeping: its record, the template (memoized after)
    "cold_start_s": 3.0,  # the render image's init, billed since 2025-08
    "static_fetch_s": 0.5,  # a new instance copies the shared static segments into /tmp
    "s3_puts_per_recipient": 5,  # MP4, poster, personal segments and audio, the result
    "s3_gets_per_recipient": 1,  # a personal segment looked up before it is rendered
    "s3_gets_per_instance": 8,  # the template bundle and the static segments, once
    "dynamodb_writes_per_recipient": 4,  # idempotency (2), the result, the page
    "dynamodb_reads_per_recipient": 2,  # the batch, the idempotency record
    "standard_transitions_per_child": 1,  # RenderRecipient (a Retry or Catch adds one)
    "express_billed_gb": 64 / 1024,  # 50 MB + definition + payload, in 64 MB chunks
    "sqs_messages_per_batch": 1,  # the completion notice
    "fixed_transitions_per_batch": 6,  # Plan, Render, Finalize and their bookkeeping
}
#: The budget a 30-second video's render plus orchestration aims for, per 1,000 recipients.
GOAL_PER_1000 = 0.25


def _load(path: Path | None, default: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if path is not None and path.is_file():
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return {**default, **json.loads(path.read_text())}, str(shown)
    return dict(default), f"default figures measured {default['measured']}"


def stack() -> dict[str, Any]:
    """The deployed configuration, read from where the stack takes it."""
    defaults = Settings.model_fields
    return {
        "memory_mb": pipeline.RENDER_MEMORY_MB,
        "storage_mb": pipeline.RENDER_STORAGE_MB,
        "batch_size": defaults["render_batch_size"].default,
        "max_concurrency": defaults["max_concurrency"].default,
        "execution_type": statemachine.CHILD_EXECUTION_TYPE,
    }


def vcpus(memory_mb: int) -> float:
    """Lambda's CPU share: one vCPU at 1,769 MB, proportional (six at 10,240 MB)."""
    return min(6.0, memory_mb / 1769)


def cost(
    n: int,
    *,
    render: dict[str, Any],
    plan: dict[str, Any],
    memory_mb: int,
    storage_mb: int,
    batch_size: int,
    max_concurrency: int,
    execution_type: str,
) -> dict[str, float]:
    """Dollars for a batch of `n` recipients, by line."""
    a, p = ASSUMPTIONS, PRICES
    gb = memory_mb / 1024
    parallel = min(
        vcpus(memory_mb),
        render["warm_cpu_s_per_recipient"] / render["warm_wall_s_per_recipient"],
    )
    per_recipient_s = render["warm_cpu_s_per_recipient"] / parallel + a["io_s_per_recipient"]
    invocations = math.ceil(n / batch_size)
    instances = min(invocations, max_concurrency)
    render_s = (
        n * per_recipient_s
        + invocations * a["invocation_s"]
        + instances * (a["cold_start_s"] + a["static_fetch_s"])
    )
    # Plan: the rows read into the item list, and the static segments rendered once.
    static_cpu = render["cold_cpu_s_per_recipient"] - render["warm_cpu_s_per_recipient"]
    plan_s = a["cold_start_s"] + n * plan["seconds_per_row"] + static_cpu / parallel
    extra_storage_gb = max(0.0, storage_mb / 1024 - 0.5)
    lambda_s = render_s + plan_s
    lines = {
        "lambda_compute": lambda_s * gb * p["lambda_gb_s"],
        "lambda_storage": lambda_s * extra_storage_gb * p["lambda_storage_gb_s"],
        "lambda_requests": (invocations + 2) * p["lambda_request"],
    }
    # Every child costs the Map one transition; then its own kind of billing.
    transitions = a["fixed_transitions_per_batch"] + invocations
    if execution_type == "STANDARD":
        transitions += invocations * a["standard_transitions_per_child"]
        lines["sfn_express"] = 0.0
    else:
        child_s = batch_size * per_recipient_s + a["invocation_s"]
        billed_s = math.ceil(child_s * 10) / 10  # rounded up to 100 ms
        lines["sfn_express"] = invocations * (
            p["sfn_express_request"] + billed_s * a["express_billed_gb"] * p["sfn_express_gb_s"]
        )
    lines["sfn_transitions"] = transitions * p["sfn_standard_transition"]
    lines["s3_requests"] = (
        n * a["s3_puts_per_recipient"] * p["s3_put"]
        + (n * a["s3_gets_per_recipient"] + instances * a["s3_gets_per_instance"]) * p["s3_get"]
    )
    lines["dynamodb"] = n * (
        a["dynamodb_writes_per_recipient"] * p["dynamodb_write"]
        + a["dynamodb_reads_per_recipient"] * p["dynamodb_read"]
    )
    lines["sqs"] = a["sqs_messages_per_batch"] * p["sqs_request"]
    lines["total"] = sum(lines.values())
    return {k: round(v, 6) for k, v in lines.items()}


def report(render_path: Path | None, plan_path: Path | None) -> dict[str, Any]:
    render, render_source = _load(render_path, DEFAULT_RENDER)
    plan, plan_source = _load(plan_path, DEFAULT_PLAN)
    config = stack()
    options = {k: v for k, v in config.items() if k != "execution_type"}
    by_type = {
        kind: {
            str(n): cost(n, render=render, plan=plan, execution_type=kind, **options)
            for n in (1_000, 1_000_000)
        }
        for kind in ("STANDARD", "EXPRESS")
    }
    cheaper = min(by_type, key=lambda k: by_type[k]["1000000"]["total"])
    chosen = by_type[config["execution_type"]]
    return {
        "bench": "cost",
        "prices_as_of": PRICES_AS_OF,
        "region": "us-east-1",
        "render_figures": render_source,
        "plan_figures": plan_source,
        "video_s": render.get("video_s"),
        "warm_cpu_s_per_recipient": render["warm_cpu_s_per_recipient"],
        "stack": config,
        "per_1000": chosen["1000"],
        "per_1000000": chosen["1000000"],
        "by_execution_type": by_type,
        "cheaper_execution_type": cheaper,
        "stack_uses_the_cheaper": cheaper == config["execution_type"],
        "goal_per_1000": GOAL_PER_1000,
        "goal_met": chosen["1000"]["total"] <= GOAL_PER_1000,
        "assumptions": ASSUMPTIONS,
        "prices": PRICES,
    }


def table(found: dict[str, Any]) -> str:
    """The report as a Markdown table (what infra/README.md shows)."""
    s = found["stack"]
    head = (
        f"{s['memory_mb']} MB render function, batches of {s['batch_size']} recipients, "
        f"{s['execution_type']} children, MaxConcurrency {s['max_concurrency']}; "
        f"{found['warm_cpu_s_per_recipient']} CPU-s a recipient ({found['render_figures']}); "
        f"list prices of {found['prices_as_of']} ({found['region']})"
    )
    rows = [
        "| | per 1,000 | per 1,000,000 |",
        "|---|---:|---:|",
    ]
    for line in found["per_1000"]:
        a, b = found["per_1000"][line], found["per_1000000"][line]
        name = f"**{line}**" if line == "total" else line
        rows.append(f"| {name} | ${a:,.4f} | ${b:,.2f} |")
    other = "EXPRESS" if s["execution_type"] == "STANDARD" else "STANDARD"
    alt = found["by_execution_type"][other]
    verdict = "met" if found["goal_met"] else "NOT met"
    tail = (
        f"With {other} children instead: ${alt['1000']['total']:,.4f} per 1,000, "
        f"${alt['1000000']['total']:,.2f} per 1,000,000. Goal ≤ ${found['goal_per_1000']} "
        f"per 1,000: {verdict}."
    )
    return "\n".join([head, "", *rows, "", tail])


README = ROOT / "infra" / "README.md"
BEGIN, END = "<!-- make cost: begin -->", "<!-- make cost: end -->"


def write_readme(found: dict[str, Any], readme: Path = README) -> None:
    """Put the table between the markers of infra/README.md (`--readme`)."""
    text = readme.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + table(found) + "\n" + text[stop:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=ROOT / "bench" / "render.json")
    parser.add_argument("--plan", type=Path, default=ROOT / "bench" / "plan.json")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--readme", action="store_true", help="update infra/README.md's table")
    args = parser.parse_args()
    found = report(args.bench, args.plan)
    print(json.dumps(found))
    if args.readme:
        write_readme(found)
    if not args.json_only:
        print()
        print(table(found))


if __name__ == "__main__":
    main()
