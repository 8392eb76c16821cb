"""The `reel` command: exit codes 0 / 1 (bad input, naming the field) / 2 (render failed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from chalicelib.cli import app
from tests.conftest import Campaign
from tests.media import garble_frames

runner = CliRunner()


def test_schema_prints_the_template_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Reel template"
    assert {"canvas", "variables", "scenes"} <= set(schema["properties"])


def test_validate_ok(campaign: Campaign) -> None:
    result = runner.invoke(app, ["validate", str(campaign.template)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


def test_validate_lists_problems_and_exits_1(campaign: Campaign) -> None:
    campaign.write_template(
        campaign.template.read_text().replace(
            "background: {color: '#102040'}", "background: {image: assets/x.png}"
        )
    )
    result = runner.invoke(app, ["validate", str(campaign.template)])
    assert result.exit_code == 1
    assert "scenes[1].background.image: file not found: assets/x.png" in result.stderr


def test_render_writes_video_and_poster(campaign: Campaign, out: Path) -> None:
    record = out / "r.json"
    record.write_text(json.dumps({"first_name": "Zoë"}))
    args = ["render", str(campaign.template), "--data", str(record), "--out", str(out / "v.mp4")]
    result = runner.invoke(app, [*args, "--poster", str(out / "v.jpg"), "--preview"])
    assert result.exit_code == 0, result.output
    assert (out / "v.mp4").stat().st_size > 0 and (out / "v.jpg").stat().st_size > 0


def test_render_bad_data_exits_1_naming_the_field(campaign: Campaign, out: Path) -> None:
    record = out / "r.json"
    record.write_text(json.dumps({"first_name": "x" * 61}))
    result = runner.invoke(
        app, ["render", str(campaign.template), "-d", str(record), "-o", str(out / "v.mp4")]
    )
    assert result.exit_code == 1
    assert "first_name: is 61 characters long; the limit is 60" in result.stderr
    assert not (out / "v.mp4").exists()


def test_render_bad_json_exits_1(campaign: Campaign, out: Path) -> None:
    record = out / "r.json"
    record.write_text("{oops")
    result = runner.invoke(app, ["render", str(campaign.template), "-d", str(record)])
    assert result.exit_code == 1
    assert "invalid JSON at line 1" in result.stderr


def test_render_failure_exits_2(campaign: Campaign, out: Path) -> None:
    # A clip whose boxes are intact and frames garbage: only ffmpeg finds out (a file that is
    # not a video at all is bad input, refused before rendering: exit 1).
    garble_frames(campaign.root / "assets" / "loop.mp4")
    record = out / "r.json"
    record.write_text(json.dumps({"first_name": "A"}))
    result = runner.invoke(
        app, ["render", str(campaign.template), "-d", str(record), "-o", str(out / "v.mp4")]
    )
    assert result.exit_code == 2
    assert "render failed: ffmpeg failed" in result.stderr
    assert not (out / "v.mp4").exists()
