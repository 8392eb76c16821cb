"""hls.js in a real browser: a NEW recipient (data set, nothing rendered) opens their landing page
served by `reel serve`; hls.js plays their just-in-time stream to the end without a stall, and
the page's tracking still records the whole view. Chromium plays HLS natively these days, so
the page is told it cannot (as Firefox would), which makes it use hls.js."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from chalicelib.adapters.sqlite import SqliteEventStore
from tests.conftest import Campaign
from tests.e2e.test_browser import browser  # noqa: F401  (the module's chromium fixture)
from tests.server import reel_serve

NO_NATIVE_HLS = """
const canPlayType = HTMLMediaElement.prototype.canPlayType;
HTMLMediaElement.prototype.canPlayType = function (type) {
  return /mpegurl/i.test(type) ? "" : canPlayType.call(this, type);
};
"""

WATCH = """() => {
  const video = document.getElementById("reel-video");
  window.reelWatch = { started: false, waiting: 0, stalls: [] };
  video.addEventListener("playing", () => { window.reelWatch.started = true; });
  video.addEventListener("waiting", () => {
    if (window.reelWatch.started && !video.ended) window.reelWatch.waiting += 1;
  });
}"""


# hls.js 1.7 warns once that the first audio fragment "did not grow the buffer" when the audio
# SourceBuffer is created after its append was queued (it waits for the video's first PTS);
# its own log shows the fragment buffered right after. Not a stall: stalls are
# bufferStalledError, bufferSeekOverHole, bufferNudgeOnStall, and the `waiting` events.
BENIGN = {"bufferAppendNoProgress"}


def put_data(url: str, key: str, rid: str, data: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"campaign_id": "tiny", "data": data}).encode()
    req = urllib.request.Request(f"{url}/recipients/{rid}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def test_hlsjs_plays_a_new_recipients_stream_without_stalls(
    browser: Browser,  # noqa: F811
    campaign: Campaign,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with reel_serve(campaign.root.parent, data_dir) as (url, key):
        # GIVEN a recipient whose record was just set: a page, a stream, nothing rendered
        page_url = put_data(url, key, "lin@example.com", {"first_name": "Lin", "plan": "pro"})[
            "page"
        ]

        # WHEN they open the page in a browser without native HLS and play it to the end
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script(NO_NATIVE_HLS)
        page.goto(page_url)
        assert page.title() == "A video for Lin"
        assert page.evaluate("window.reelPlayer.mode") == "hls.js"
        page.evaluate(WATCH)
        page.evaluate("document.getElementById('reel-video').play()")
        # (polled from here: the page's CSP forbids the eval that wait_for_function needs)
        deadline = time.monotonic() + 90
        while not page.evaluate("document.getElementById('reel-video').ended"):
            assert time.monotonic() < deadline, page.evaluate("window.reelPlayer.errors")
            page.wait_for_timeout(100)

        # THEN hls.js played it through: no error (a stall is one), no `waiting` once started
        assert page.evaluate("window.reelPlayer.mode") == "hls.js"
        reported = page.evaluate("window.reelPlayer.errors")
        assert [e for e in reported if e["details"] not in BENIGN] == [], reported
        assert page.evaluate("window.reelWatch.waiting") == 0
        duration = page.evaluate("document.getElementById('reel-video').duration")
        assert abs(duration - 3.4) < 0.15  # intro 1 + greeting 1 + pro offer 0.8 + outro 0.6
        page.close()
        assert errors == []

        # AND the tracking saw the whole view
        store = SqliteEventStore(data_dir / "reel.db")
        deadline = time.monotonic() + 15
        kinds: Counter[str] = Counter()
        while time.monotonic() < deadline:
            events = store.for_campaign("tiny")
            kinds = Counter(e.kind.value for e in events)
            if kinds["ended"]:
                break
            time.sleep(0.2)
        assert (kinds["impression"], kinds["play"], kinds["ended"]) == (1, 1, 1)
        steps = Counter(e.progress for e in events if e.kind.value == "progress")
        assert steps == {step: 1 for step in range(10, 101, 10)}
