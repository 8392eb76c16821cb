"""`reel serve`: the embedded default over real HTTP on 127.0.0.1 — register at start, then
POST /renders and GET /renders/{id} until the video is served."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Campaign
from tests.server import call, reel_serve


@pytest.fixture
def server(campaign: Campaign, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with reel_serve(campaign.root.parent, tmp_path / "data") as (url, key):
        yield url, key


def test_render_over_http(server: tuple[str, str]) -> None:
    url, key = server
    # The write route refuses a request without the printed dev key
    status, body = call(f"{url}/renders", "POST", {"template_id": "tiny", "data": {}})
    assert status == 401
    # WHEN a render is posted with the key
    status, body = call(
        f"{url}/renders", "POST", {"template_id": "tiny", "data": {"first_name": "Ada"}}, key
    )
    assert status == 202, body
    # THEN polling its status ends with the video, served by the same server
    deadline = time.monotonic() + 120
    while body["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body = call(f"{url}/renders/{body['render_id']}")
    assert body["status"] == "done", body
    assert body["urls"]["video"].startswith(f"{url}/files/videos/")
    req = urllib.request.Request(body["urls"]["video"], headers={"accept": "video/mp4"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["content-type"] == "video/mp4"
        assert resp.read()[4:8] == b"ftyp"
