"""Shared fixtures: a tiny campaign on disk (real media made with the project's ffmpeg)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

if TYPE_CHECKING:
    from chalice.test import Client

    from chalicelib.pipeline.folder import BatchSummary

from chalicelib.render import ffmpeg as ff

TINY = {"width": 160, "height": 96, "fps": 10}

BASE_TEMPLATE = """\
id: tiny
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true, max_length: 60}
  plan: {type: enum, values: [basic, pro], default: basic}
  avatar: {type: image}
styles:
  title: {size: 20, color: '#ffffff'}
audio: {music: assets/bed.m4a, volume: 0.5, fade_out: 0.3}
transition: {type: cut}
scenes:
  - use: intro
  - id: greeting
    duration: 1.0
    background: {color: '#102040'}
    layers:
      - {type: text, text: "Hi {{ first_name }}!", style: title, size: [140, 40], at: [0.5, 0.5]}
      - {type: image, src: "{{ avatar }}", fit: circle, size: 30, at: [0.85, 0.2], when: avatar}
  - use: pro_offer
    when: "plan == 'pro'"
  - use: outro
page:
  title: "A video for {{ first_name }}"
  description: Made for you
  cta: {label: "Book a call, {{ first_name }}", url: /health}
"""

SCENES = {
    "intro": """\
        id: intro
        duration: 1.0
        background: {video: assets/loop.mp4}
        layers:
          - {type: shape, shape: rect, color: '#ffffff80', size: [80, 20], at: [0.5, 0.8]}
        """,
    "pro_offer": """\
        id: pro_offer
        duration: 0.8
        background: {image: assets/red.png, fit: cover}
        """,
    "outro": """\
        id: outro
        duration: 0.6
        background: {color: '#000000'}
        layers:
          - {type: audio, src: assets/chime.m4a, volume: 0.8}
        """,
}


@dataclass
class Campaign:
    root: Path

    @property
    def template(self) -> Path:
        return self.root / "template.yaml"

    def write_template(self, text: str) -> Path:
        self.template.write_text(textwrap.dedent(text), encoding="utf-8")
        return self.template

    def write_scene(self, scene_id: str, text: str) -> None:
        (self.root / "scenes" / f"{scene_id}.yaml").write_text(textwrap.dedent(text))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny real media, generated once per session with the project's ffmpeg."""
    d = tmp_path_factory.mktemp("media")
    ff.run(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            "gradients=s=96x64:r=10:d=1:speed=0.05",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(d / "loop.mp4"),
        ]
    )
    ff.run(["-y", "-f", "lavfi", "-i", "sine=f=330:d=4", "-c:a", "aac", str(d / "bed.m4a")])
    ff.run(["-y", "-f", "lavfi", "-i", "sine=f=880:d=0.3", "-c:a", "aac", str(d / "chime.m4a")])
    Image.new("RGB", (64, 48), (220, 30, 30)).save(d / "red.png")
    Image.new("RGB", (50, 50), (30, 200, 60)).save(d / "avatar.png")
    return d


@pytest.fixture
def campaign(tmp_path: Path, media_dir: Path) -> Campaign:
    """A campaign folder: template.yaml, scenes/, assets/ (copies of the session media)."""
    root = tmp_path / "campaign"
    (root / "assets").mkdir(parents=True)
    (root / "scenes").mkdir()
    for f in media_dir.iterdir():
        (root / "assets" / f.name).write_bytes(f.read_bytes())
    c = Campaign(root)
    for sid, text in SCENES.items():
        c.write_scene(sid, text)
    c.write_template(BASE_TEMPLATE)
    return c


@pytest.fixture
def make_campaign(campaign: Campaign) -> Callable[[str], Campaign]:
    def make(template_text: str) -> Campaign:
        campaign.write_template(template_text)
        return campaign

    return make


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty output folder (apart from the campaign's)."""
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own segment cache and data dir; settings are re-read from the
    environment, and AWS clients only ever see fake credentials (moto)."""
    import os

    from chalicelib import bootstrap

    # Nothing from the machine or an earlier test (a CDK synth sets the stage's variables).
    for name in [n for n in os.environ if n.startswith("REEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REEL_CACHE_DIR", str(tmp_path / "segment-cache"))
    monkeypatch.setenv("REEL_DATA_DIR", str(tmp_path / "reel-data"))
    monkeypatch.setenv("REEL_BACKEND", "local")
    # A stalled ffmpeg fails the test in two minutes instead of ten.
    monkeypatch.setenv("REEL_RENDER_TIMEOUT", "120")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "reel",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bootstrap.reset()
    yield
    bootstrap.reset()


def run_batch(
    template: Path, data: Path, out: Path, *, workers: int = 1, **kw: Any
) -> BatchSummary:
    """`reel batch` as a function: the folder's backends around the batch engine."""
    from chalicelib import bootstrap
    from chalicelib.pipeline import folder

    with bootstrap.folder(out, workers=workers) as b:
        return folder.run_batch(b, template, data, out, **kw)


API_KEY = "test-key-0123456789"


@pytest.fixture
def local_app(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The HTTP app on the embedded default, accepting API_KEY, with the tiny campaign
    registered as its folder is when the fixture is asked for."""
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from chalicelib.services import templates

    monkeypatch.setenv("REEL_API_KEYS", API_KEY)
    bootstrap.reset()
    templates.register_folder(bootstrap.backends(), campaign.root)
    with Client(app, stage_name="local") as client:
        yield client
    bootstrap.reset()


# Reel on moto (tests/aws.py) and the fake CRMs (tests/fakes/), for every test module.
from tests.aws import aws  # noqa: E402, F401
from tests.fakes.fixtures import fake_hubspot, fake_salesforce, fake_webhook, refused_url  # noqa: E402, F401
