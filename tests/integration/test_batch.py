"""Batches on a tiny template: a bad row fails alone, reruns render nothing new, and a batch
killed with SIGKILL finishes on rerun with no duplicate outputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from chalicelib.cli import app
from chalicelib.pipeline.folder import RESULTS, read_results
from tests.conftest import Campaign, run_batch

ROOT = Path(__file__).resolve().parents[2]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["recipient_id", "first_name", "plan", "avatar"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def people(n: int) -> list[dict[str, str]]:
    return [{"recipient_id": f"r{i}", "first_name": f"Name {i}"} for i in range(n)]


def outputs(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "videos").glob("*.mp4"))


def test_a_bad_row_fails_alone(campaign: Campaign, tmp_path: Path) -> None:
    rows = [
        {"recipient_id": "ok1", "first_name": "Ann"},
        {"recipient_id": "bad1", "first_name": ""},
        {"recipient_id": "bad2", "first_name": "Bo", "avatar": "../../etc/passwd"},
        {"recipient_id": "ok2", "first_name": "Ann", "plan": "pro"},
    ]
    data = write_csv(tmp_path / "r.csv", rows)
    out = tmp_path / "batch"
    summary = run_batch(campaign.template, data, out, workers=1)
    assert summary.counts == {"rendered": 2, "cached": 0, "failed": 2}
    results = read_results(out / RESULTS)
    assert [(r.recipient_id, r.status.value, r.field) for r in results] == [
        ("ok1", "rendered", None),
        ("bad1", "failed", "first_name"),
        ("bad2", "failed", "avatar"),
        ("ok2", "rendered", None),
    ]
    assert results[1].reason == "first_name: is required"
    assert results[1].line == 3
    assert len(outputs(out)) == 2
    assert all(Path(r.output.removeprefix("file://")).is_file() for r in results if r.output)


def test_a_rerun_renders_nothing_new(campaign: Campaign, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "r.csv", people(3))
    out = tmp_path / "batch"
    lt = campaign.template
    run_batch(lt, data, out, workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    summary = run_batch(lt, data, out, workers=2)
    assert summary.counts == {"rendered": 0, "cached": 3, "failed": 0}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()} == before
    assert len(read_results(out / RESULTS)) == 3


def test_a_changed_record_gets_a_new_output(campaign: Campaign, tmp_path: Path) -> None:
    lt = campaign.template
    out = tmp_path / "batch"
    run_batch(lt, write_csv(tmp_path / "a.csv", people(1)), out, workers=1)
    changed = [{"recipient_id": "r0", "first_name": "Renamed"}]
    summary = run_batch(lt, write_csv(tmp_path / "b.csv", changed), out, workers=1)
    assert summary.counts["rendered"] == 1
    assert len(outputs(out)) == 2


def test_sigkill_mid_batch_then_rerun_finishes(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN a batch of 8 running in its own process group
    data = write_csv(tmp_path / "r.csv", people(8))
    out = tmp_path / "batch"
    cmd = [sys.executable, "-m", "chalicelib.cli", "batch", str(campaign.template),
           "--data", str(data), "--out", str(out), "--workers", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # WHEN it is killed (with its workers) once a few recipients are done
    deadline = time.monotonic() + 120
    log = out / RESULTS
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = {r.recipient_id for r in read_results(log)}
    assert 3 <= len(done_before) < 8, "the batch should have been killed mid-way"
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir() if p.suffix == ".mp4"}
    # THEN a rerun finishes the rest, re-rendering nothing that was done
    summary = run_batch(campaign.template, data, out, workers=2)
    results = read_results(log)
    assert sorted(r.recipient_id for r in results) == [f"r{i}" for i in range(8)]
    assert summary.counts["failed"] == 0
    assert {r.recipient_id for r in results if r.status.value == "cached"} >= done_before
    assert len(outputs(out)) == 8  # one per recipient: no duplicates, no leftovers
    assert not list(out.rglob(".*.part*"))
    for name, mtime in kept.items():
        assert (out / "videos" / name).stat().st_mtime_ns == mtime


def test_batch_cli_with_a_mapping_and_jsonl(campaign: Campaign, tmp_path: Path) -> None:
    data = tmp_path / "r.jsonl"
    data.write_text(
        json.dumps({"Email": "a@x.io", "First": "  zoë "}) + "\n{broken\n"
        + json.dumps({"Email": "b@x.io", "First": "ann", "Tier": "PRO"}) + "\n"
    )  # fmt: skip
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "id: Email\nfields:\n"
        "  first_name: {from: First, transform: [trim, title]}\n"
        "  plan: {from: Tier, transform: [lower]}\n"
    )
    out = tmp_path / "batch"
    args = ["batch", str(campaign.template), "-d", str(data), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--mapping", str(mapping), "--workers", "1"])
    assert result.exit_code == 1  # a row was bad input (unreadable)
    results = read_results(out / RESULTS)
    assert [(r.recipient_id, r.status.value) for r in results] == [
        ("a@x.io", "rendered"),
        ("line-2", "failed"),
        ("b@x.io", "rendered"),
    ]
    assert "2 rendered, 0 already done, 1 failed" in result.stdout
    assert "✗ line 2 line-2: line 2: invalid JSON" in result.stderr


FALLBACK_TEMPLATE = """\
id: hello
locale: en_US
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true}
translations:
  en_US: {hi: "Hi {{ first_name }}!", bye: Bye}
  fr_FR: {hi: "Bonjour {{ first_name }} !"}
scenes:
  - id: greeting
    duration: 1
    layers:
      - {type: text, text: "{{ t('hi') }} {{ t('bye') }}", size: [140, 40]}
"""


def test_a_batch_counts_the_recipients_whose_locale_lacks_a_translation(
    campaign: Campaign, tmp_path: Path
) -> None:
    campaign.write_template(FALLBACK_TEMPLATE)
    data = tmp_path / "r.csv"
    data.write_text("recipient_id,first_name,locale\nr1,Ann,en_US\nr2,Zoé,fr_FR\n")
    out = tmp_path / "batch"
    args = ["batch", str(campaign.template), "-d", str(data), "-o", str(out), "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = read_results(out / RESULTS)
    # 'bye' has no French string: Zoé hears it in English, and it is counted
    assert [(r.recipient_id, r.fallbacks) for r in results] == [("r1", None), ("r2", ["bye"])]
    assert "1 of 2 recipients lack translations" in " ".join(result.stdout.split())
