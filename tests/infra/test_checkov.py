"""checkov on the synthesized stack: nothing fails, and every skip says why, in the stack itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.deps import ROOT
from tests.infra import synth

#: `make checkov` installs checkov in a venv of its own: it pins boto3, packaging and networkx
#: far below what Reel and moto need, so it cannot share the project's.
CHECKOV_VENV = ROOT / ".venv-checkov"
#: Findings that must be fixed, never skipped (issue 18): point-in-time recovery, reserved
#: concurrency, the API stage's and the distribution's access logs, the bucket's access logs,
#: X-Ray on the API.
MUST_PASS = {
    "CKV_AWS_28": {"Jobs", "Events", "Idempotency"},
    "CKV_AWS_115": {"Render", "RelayWorker", "APIHandler", "Incoming"},
    "CKV_AWS_76": {"RestAPI"},
    "CKV_AWS_73": {"RestAPI"},
    "CKV_AWS_86": {"Cdn"},
    "CKV_AWS_18": {"Media"},
}


def checkov_executable() -> Path:
    for candidate in (
        CHECKOV_VENV / "bin" / "checkov",
        Path(sys.executable).with_name("checkov"),
        Path(shutil.which("checkov") or "/nonexistent"),
    ):
        if candidate.is_file():
            return candidate
    pytest.fail(f"checkov is not installed: `make checkov` installs it in {CHECKOV_VENV}")


def scan(template: dict[str, Any], directory: Path) -> dict[str, Any]:
    """checkov's JSON report on `template` (CloudFormation checks only, offline)."""
    path = directory / "template.json"
    path.write_text(json.dumps(template))
    result = subprocess.run(
        [
            str(checkov_executable()),
            "--file",
            str(path),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _resource(check: dict[str, Any], names: dict[str, str]) -> str:
    """Reel's name of the resource a check is about (its logical id where Reel has none)."""
    logical_id = check["resource"].split(".", 1)[1]
    return names.get(logical_id, logical_id)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan(synth.template_json(), tmp_path_factory.mktemp("checkov"))


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    """synth.names, with the media bucket and the distribution (found by what they are)."""
    template = synth.template_json()
    found = synth.names(template)
    for rid, res in template["Resources"].items():
        if "NotificationConfiguration" in res.get("Properties", {}):
            found[rid] = "Media"
        if res["Type"] == "AWS::CloudFront::Distribution":
            found[rid] = "Cdn"
    return found


def test_no_check_fails_and_every_skip_has_its_reason(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == len(synth.template_json()["Resources"])
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"].get(
        "failed_checks", [])]  # fmt: skip
    assert failed == []
    assert summary["passed"] > 100  # the scan did look at the stack
    for check in report["results"]["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) > 20, (check["check_id"], check["resource"])


def test_the_required_fixes_pass_and_are_never_skipped(
    report: dict[str, Any], names: dict[str, str]
) -> None:
    def found(kind: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for check in report["results"][kind]:
            out.setdefault(check["check_id"], set()).add(_resource(check, names))
        return out

    passed, skipped = found("passed_checks"), found("skipped_checks")
    for check_id, resources in MUST_PASS.items():
        assert resources <= passed.get(check_id, set()), check_id
        assert not resources & skipped.get(check_id, set()), check_id
    # Tables, the API stage and the distribution: none of their kind may skip these.
    for check_id in ("CKV_AWS_28", "CKV_AWS_76", "CKV_AWS_73", "CKV_AWS_86"):
        assert check_id not in skipped, skipped[check_id]


def test_a_resource_without_its_skips_fails_them(tmp_path: Path) -> None:
    # GIVEN the media bucket alone, its checkov metadata and its access logging taken away
    template = synth.template_json()
    media = synth.logical_ids(template).get("Media") or next(
        rid
        for rid, r in template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and "NotificationConfiguration" in r["Properties"]
    )
    bucket = template["Resources"][media]
    assert [s["id"] for s in bucket["Metadata"]["checkov"]["skip"]] == ["CKV_AWS_21"]
    del bucket["Metadata"]["checkov"]
    del bucket["Properties"]["LoggingConfiguration"]
    alone = {**template, "Resources": {media: bucket}}
    # WHEN checkov scans it THEN both the skipped check and the fixed one fail
    report = scan(alone, tmp_path)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert {"CKV_AWS_21", "CKV_AWS_18"} <= failed
