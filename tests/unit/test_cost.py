"""`make cost` (bench/cost.py): its inputs come from the stack and the benchmarks, its lines
add up, and it follows the model's levers (CPU seconds, batch size, execution type)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cost
from chalicelib.pipeline import statemachine
from chalicelib.settings import Settings
from infra import pipeline


def test_the_stack_settings_come_from_the_stack() -> None:
    found = cost.stack()
    assert found == {
        "memory_mb": pipeline.RENDER_MEMORY_MB,
        "storage_mb": pipeline.RENDER_STORAGE_MB,
        "batch_size": Settings().render_batch_size,
        "max_concurrency": Settings().max_concurrency,
        "execution_type": statemachine.CHILD_EXECUTION_TYPE,
    }


def test_the_report_adds_up_and_says_whether_the_goal_is_met(tmp_path: Path) -> None:
    found = cost.report(tmp_path / "none.json", tmp_path / "none.json")
    assert found["render_figures"].startswith("default figures measured ")
    for n in ("per_1000", "per_1000000"):
        lines = dict(found[n])
        total = lines.pop("total")
        assert total == pytest.approx(sum(lines.values()), abs=1e-5)
    assert found["goal_met"] == (found["per_1000"]["total"] <= cost.GOAL_PER_1000)
    cheaper = found["cheaper_execution_type"]
    by = found["by_execution_type"]
    assert by[cheaper]["1000000"]["total"] <= min(t["1000000"]["total"] for t in by.values())
    json.dumps(found)  # printable as is
    assert "| **total** |" in cost.table(found)


def test_measured_cpu_seconds_drive_the_render_line(tmp_path: Path) -> None:
    base = cost.report(tmp_path / "none.json", tmp_path / "none.json")
    slow = tmp_path / "render.json"
    slow.write_text(json.dumps({"warm_cpu_s_per_recipient": 10 * 2.608}))
    found = cost.report(slow, tmp_path / "none.json")
    assert found["warm_cpu_s_per_recipient"] == pytest.approx(26.08)
    assert found["per_1000"]["lambda_compute"] > 5 * base["per_1000"]["lambda_compute"]


def test_batching_cuts_requests_and_transitions() -> None:
    common = {
        "render": cost.DEFAULT_RENDER,
        "plan": cost.DEFAULT_PLAN,
        "memory_mb": 3008,
        "storage_mb": 4096,
        "max_concurrency": 200,
        "execution_type": "STANDARD",
    }
    one = cost.cost(1_000_000, batch_size=1, **common)
    ten = cost.cost(1_000_000, batch_size=10, **common)
    assert ten["lambda_requests"] < one["lambda_requests"] / 9
    assert ten["sfn_transitions"] < one["sfn_transitions"] / 9
    assert ten["total"] < one["total"]


def test_the_stack_runs_the_cheaper_kind_of_child(tmp_path: Path) -> None:
    # The child execution type is chosen with these figures: a change of batch size, memory or
    # prices that makes the other kind cheaper must reconsider it (statemachine.py).
    found = cost.report(tmp_path / "none.json", tmp_path / "none.json")
    assert found["stack_uses_the_cheaper"], found["by_execution_type"]
