"""Reel Studio's use cases on a real campaign folder, real ffmpeg and the real app: problems
placed at their lines with `reel validate`'s messages, a preview frame that is the final video's
frame, the timeline and its cost, saving, assets, and paths that stay inside the campaign."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.errors import AssetError, DataError, RequestError, TemplateError
from chalicelib.render import ffmpeg as ff
from chalicelib.render.engine import render
from chalicelib.settings import get_settings
from chalicelib.studio import lines, service, workspace
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from tests.conftest import Campaign

KEY = "studio-test-key"


@pytest.fixture
def ws(campaign: Campaign) -> service.Workspace:
    (campaign.root / "recipients.csv").write_text(
        "recipient_id,first_name,plan\nr1,Ada,basic\nr2,Grace,pro\nr3,,basic\n"
    )
    return service.Workspace(service.LOCAL, campaign.root.resolve(), True)


def test_locate_finds_the_line_of_a_field_path() -> None:
    text = "id: x\nscenes:\n  - use: intro\n  - id: greeting\n    layers:\n      - {type: text}\n"
    assert lines.locate(text, "scenes[1].layers[0]") == (6, 9)
    assert lines.locate(text, "scenes[1].id") == (4, 5)
    # a field that is missing points at its parent; a parse error at the line it names
    assert lines.locate(text, "scenes[1].duration")[0] == 4
    assert lines.locate(text, "", "template.yaml: invalid YAML at line 3: …") == (3, 1)


def test_problems_match_reel_validate_and_sit_at_their_lines(
    ws: service.Workspace, campaign: Campaign
) -> None:
    # GIVEN an unsaved edit with two mistakes: an undeclared variable and an unknown style
    text = campaign.template.read_text().replace("Hi {{ first_name }}!", "Hi {{ nickname }}!")
    text = text.replace("style: title", "style: headline")
    draft = service.Draft(ws, {"template.yaml": text})
    # WHEN the Studio checks the draft
    problems = service.check(draft)
    # THEN it reports what `reel validate` reports for the same file, with the same messages
    campaign.template.write_text(text)
    cli = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "validate", str(campaign.template)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
    )
    assert cli.returncode == 1
    reported = [line.strip().removeprefix("✗ ") for line in cli.stderr.splitlines()[1:]]
    assert [p["text"] for p in problems] == reported
    assert len(problems) == 2
    # … each at the line of its field
    lines_of = {p["field"]: p["line"] for p in problems}
    numbered = text.splitlines()
    assert "nickname" in numbered[lines_of["scenes[1].layers[0].text"] - 1]
    assert "headline" in numbered[lines_of["scenes[1].layers[0].style"] - 1]


def test_a_problem_in_a_scene_file_and_a_yaml_error_are_placed_in_their_files(
    ws: service.Workspace,
) -> None:
    bad_scene = (
        "id: outro\nduration: 0.6\nbackground: {color: '#000000'}\nlayers:\n  - {type: wobble}\n"
    )
    problems = service.check(service.Draft(ws, {"scenes/outro.yaml": bad_scene}))
    assert [(p["file"], p["line"]) for p in problems] == [("scenes/outro.yaml", 5)]
    broken = service.check(service.Draft(ws, {"template.yaml": "id: tiny\nscenes: [\n"}))
    assert broken[0]["file"] == "template.yaml" and broken[0]["line"] >= 2
    assert "line" in broken[0]["message"]


def test_recipients_come_with_the_mapping_applied_and_their_problems(
    ws: service.Workspace, campaign: Campaign
) -> None:
    (campaign.root / "mapping.yaml").write_text(
        "id: recipient_id\npassthrough: false\nfields:\n  first_name: {from: first_name}\n"
        "  plan: {from: plan}\n"
    )
    found = service.recipients(ws)
    assert found["file"] == "recipients.csv"
    assert [r["id"] for r in found["recipients"]] == ["r1", "r2", "r3"]
    assert found["recipients"][0]["record"] == {"first_name": "Ada", "plan": "basic"}
    # the row without a name binds to nothing: the Studio says which field when it is drawn
    draft = service.Draft(ws)
    with pytest.raises(DataError) as exc:
        service.plan(bootstrap.backends(), draft, found["recipients"][2]["record"])
    assert exc.value.field == "first_name"


def _ssim(a: Path, b: Path) -> float:
    args = ["-hide_banner", "-i", str(a), "-i", str(b), "-lavfi", "ssim", "-f", "null", "-"]
    proc = subprocess.run([ff.ffmpeg_path(), *args], capture_output=True, text=True)
    found = re.search(r"All:([0-9.]+)", proc.stderr)
    assert found, proc.stderr[-500:]
    return float(found.group(1))


@pytest.mark.parametrize("at", [0.45, 1.5, 2.2])
def test_a_preview_frame_is_the_frame_of_the_full_render(
    ws: service.Workspace, tmp_path: Path, at: float
) -> None:
    # GIVEN a recipient's full render, and its frame at `at` decoded by ffmpeg
    record = {"first_name": "Ada", "plan": "pro", "avatar": "assets/avatar.png"}
    lt = load_template(ws.root / "template.yaml")
    video = tmp_path / "full.mp4"
    render(bind(lt, record), video)
    decoded = tmp_path / "decoded.png"
    ff.run(
        [
            "-y",
            "-i",
            str(video),
            "-vf",
            f"select=eq(n\\,{round(at * 10)})",
            "-frames:v",
            "1",
            "-pix_fmt",
            "rgb24",
            str(decoded),
        ]
    )
    # WHEN the Studio draws the frame at the same time
    jpeg, index = service.frame(bootstrap.backends(), service.Draft(ws), record, at, tmp_path)
    drawn = tmp_path / "drawn.jpg"
    drawn.write_bytes(jpeg)
    # THEN it is that frame (SSIM by ffmpeg's own filter: a JPEG against an H.264 frame, so
    # not 1; measured 0.989 to 0.995 over runs, and far lower for any other scene's frame)
    assert index == round(at * 10)
    assert _ssim(drawn, decoded) >= 0.98


def test_the_timeline_greys_skipped_scenes_and_prices_the_personal_runs(
    ws: service.Workspace,
) -> None:
    b = bootstrap.backends()
    basic = service.layout(b, service.Draft(ws), {"first_name": "Ada"})
    assert [(s["id"], s["skipped"]) for s in basic["scenes"]] == [
        ("intro", False),
        ("greeting", False),
        ("pro_offer", True),
        ("outro", False),
    ]
    # only the greeting shows the name: one personal second, and what it costs
    assert [r for r in basic["runs"] if r["personal"]] == [
        {"start": 1.0, "end": 2.0, "personal": True}
    ]
    assert basic["personal_seconds"] == 1.0
    pixel_rate = (160 * 96 * 10) / (1280 * 720 * 30)  # the bench's measure, scaled to this canvas
    expected = service.CPU_S_PER_PERSONAL_S * pixel_rate
    assert basic["estimated_cpu_seconds"] == pytest.approx(expected, rel=0.1)
    pro = service.layout(b, service.Draft(ws), {"first_name": "Ada", "plan": "pro"})
    assert pro["duration"] == pytest.approx(basic["duration"] + 0.8)


def test_saving_writes_work_in_progress_atomically(ws: service.Workspace) -> None:
    text = (ws.root / "template.yaml").read_text() + "\nbogus_key: 1\n"
    saved = service.save(bootstrap.backends(), service.Draft(ws, {"template.yaml": text}))
    assert saved == {"saved": ["template.yaml"], "problems": 1, "version": None}
    assert (ws.root / "template.yaml").read_text() == text
    assert not [p for p in ws.root.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    "rel",
    ["../outside.yaml", "/etc/passwd.yaml", "scenes/../../x.yaml", ".reel/x.yaml", "a\x00.yaml"],
)
def test_paths_stay_inside_the_campaign(ws: service.Workspace, rel: str) -> None:
    with pytest.raises(RequestError):
        service.Draft(ws, {rel: "id: x"})


def test_a_symlink_out_of_the_campaign_is_refused(ws: service.Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text("token: 1")
    (ws.root / "scenes" / "evil.yaml").symlink_to(outside)
    with pytest.raises(RequestError):
        workspace.read_text(ws.root, "scenes/evil.yaml")
    assert "scenes/evil.yaml" not in workspace.text_files(ws.root)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size (and holds almost nothing): a pixel bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_assets_are_checked_like_any_asset(ws: service.Workspace, media_dir: Path) -> None:
    added = workspace.add_asset(ws.root, "logo.png", (media_dir / "red.png").read_bytes())
    assert added["path"] == "assets/logo.png" and (ws.root / "assets/logo.png").is_file()
    with pytest.raises(AssetError, match=r"pixels|bomb|large"):
        workspace.add_asset(ws.root, "huge.png", _png_header(30000, 30000))
    with pytest.raises(AssetError, match="not an image"):
        workspace.add_asset(ws.root, "fake.png", b"<html>hello</html>")
    with pytest.raises(RequestError):
        workspace.add_asset(ws.root, "../x.png", (media_dir / "red.png").read_bytes())
    assert not (ws.root / "assets/huge.png").exists()
    assert not (ws.root / "assets/fake.png").exists()


@pytest.fixture
def studio_app(ws: service.Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    settings = get_settings().model_copy(update={"api_keys": KEY, "studio_dir": ws.root})
    bootstrap.use(settings)
    from app import app

    with Client(app) as client:
        yield client
    bootstrap.reset()


def _post(client: Client, path: str, body: dict, key: str = KEY):  # type: ignore[no-untyped-def]
    headers = {"content-type": "application/json", "accept": "*/*", "x-api-key": key}
    return client.http.post(path, headers=headers, body=json.dumps(body))


def test_the_api_needs_the_key_and_draws_frames(studio_app: Client) -> None:
    page = studio_app.http.get("/studio")
    assert page.status_code == 200 and "nonce-" in page.headers["Content-Security-Policy"]
    assert _post(studio_app, "/studio/api/local/check", {}, key="wrong").status_code == 401
    assert studio_app.http.get("/studio/api/local/files").status_code == 401
    frame = _post(
        studio_app, "/studio/api/local/frame", {"record": {"first_name": "Ada"}, "at": 1.5}
    )
    assert frame.status_code == 200, frame.body
    assert frame.body[:3] == b"\xff\xd8\xff"
    assert frame.headers["X-Reel-Frame"] == "15"
    bad = _post(studio_app, "/studio/api/local/frame", {"record": {}, "at": 1.5})
    assert bad.status_code == 400 and json.loads(bad.body)["error"]["field"] == "first_name"
    out = _post(studio_app, "/studio/api/local/save", {"files": {"../x.yaml": "a: 1"}})
    assert out.status_code == 400 and json.loads(out.body)["error"]["field"] == "files.../x.yaml"
    missing = _post(studio_app, "/studio/api/nope/check", {})
    assert missing.status_code == 404


def test_a_registered_template_saves_as_a_new_version(
    ws: service.Workspace, campaign: Campaign
) -> None:
    from chalicelib.services import templates

    b = bootstrap.backends()
    first = templates.register_folder(b, campaign.root)
    hosted = service.open_workspace(b, "tiny", folder=None, data=None, version=None)
    assert not hosted.folder and hosted.version == first.version
    text = (hosted.root / "template.yaml").read_text().replace("Made for you", "Made for you!")
    saved = service.save(b, service.Draft(hosted, {"template.yaml": text}))
    assert saved["version"] and saved["version"] != first.version
    assert (hosted.root / "template.yaml").read_text() != text  # a version never changes
    with pytest.raises(TemplateError):
        service.save(b, service.Draft(hosted, {"template.yaml": text + "\nbogus: 1\n"}))


def test_the_api_opens_a_registered_template_and_saves_a_new_version(campaign: Campaign) -> None:
    # GIVEN `reel serve` (no folder open) with the campaign registered
    bootstrap.use(get_settings().model_copy(update={"api_keys": KEY, "studio_dir": None}))
    from app import app
    from chalicelib.services import templates

    first = templates.register_folder(bootstrap.backends(), campaign.root)
    with Client(app) as client:
        headers = {"x-api-key": KEY}
        listed = json.loads(client.http.get("/studio/api/workspaces", headers=headers).body)
        assert listed == {"workspaces": []}  # the page opens /studio?template=ID
        opened = json.loads(client.http.get("/studio/api/tiny/files", headers=headers).body)
        assert opened["version"] == first.version and not opened["folder"]
        text = opened["files"]["template.yaml"].replace("Made for you", "Made for you.")
        saved = _post(client, "/studio/api/tiny/save", {"files": {"template.yaml": text}})
        version = json.loads(saved.body)["version"]
        assert saved.status_code == 200 and version != first.version
        # the new version is what POST /renders takes
        again = client.http.get(f"/studio/api/tiny/files?version={version}", headers=headers)
        assert json.loads(again.body)["files"]["template.yaml"] == text
        # a folder-only call says so
        refused = client.http.put(
            "/studio/api/tiny/assets/x.png",
            headers={**headers, "content-type": "image/png"},
            body=b"\x89PNG\r\n\x1a\n",
        )
        assert refused.status_code == 400
    bootstrap.reset()
