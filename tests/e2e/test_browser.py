"""A real browser on a landing page served by `reel serve`: Playwright drives Debian's chromium
(installed by `make test`), plays the recipient's video to the end and clicks the call to action;
the stored events then show a full view and a click, each progress step exactly once."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from chalicelib.adapters.sqlite import SqliteEventStore
from tests.conftest import Campaign
from tests.server import reel_serve

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: `make test` installs it (apt-get)"
    with tempfile.TemporaryDirectory(prefix="reel-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        assert context.browser is not None
        yield context.browser
        context.close()


def call(url: str, data: Any = None, key: str = "") -> Any:
    req = urllib.request.Request(url, method="POST" if data is not None else "GET")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("x-api-key", key)
    body = json.dumps(data).encode() if data is not None else None
    with urllib.request.urlopen(req, body, timeout=30) as resp:
        return json.loads(resp.read())


def test_watch_to_the_end_and_click(browser: Browser, campaign: Campaign, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with reel_serve(campaign.root.parent, data_dir) as (url, key):
        # GIVEN a rendered recipient with a landing page
        record = {"recipient_id": "ada@example.com", "first_name": "Ada"}
        render = call(f"{url}/renders", {"template_id": "tiny", "data": record}, key)
        deadline = time.monotonic() + 120
        while render["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
            render = call(f"{url}/renders/{render['render_id']}")
        assert render["status"] == "done", render
        page_url = render["urls"]["page"]

        # WHEN a viewer opens it, plays the video to the end and clicks the call to action
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_url)
        assert page.title() == "A video for Ada"
        page.evaluate("document.getElementById('reel-video').play()")
        # (polled from here: the page's CSP forbids the eval that wait_for_function needs)
        deadline = time.monotonic() + 60
        while not page.evaluate("document.getElementById('reel-video').ended"):
            assert time.monotonic() < deadline, "the video did not play to its end"
            page.wait_for_timeout(100)
        with page.expect_navigation():
            page.click("#reel-cta")
        assert page.url == f"{url}/health"
        page.close()
        assert errors == []

        # THEN the stored events show the whole view and the click (beacons may land late)
        store = SqliteEventStore(data_dir / "reel.db")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            events = store.for_campaign("tiny")
            kinds = Counter(e.kind.value for e in events)
            if kinds["cta_click"] and kinds["ended"]:
                break
            time.sleep(0.2)
        assert {e.recipient_id for e in events} == {"ada@example.com"}
        assert kinds["impression"] == 1
        assert kinds["play"] == 1
        assert kinds["ended"] == 1
        assert kinds["cta_click"] == 1
        steps = Counter(e.progress for e in events if e.kind.value == "progress")
        assert steps == {step: 1 for step in range(10, 101, 10)}

        # AND the analytics show that recipient at 100 % and clicked
        report = call(f"{url}/campaigns/tiny/analytics")
        [ada] = report["recipients"]
        assert ada["recipient_id"] == "ada@example.com"
        assert (ada["max_progress"], ada["completed"], ada["clicked"]) == (100, True, True)
        funnel = {step["step"]: step["count"] for step in report["funnel"]}
        assert funnel == dict.fromkeys(funnel, 1)
        assert [point["share"] for point in report["retention"]] == [1.0] * 11
