"""The consent banner in a real browser (Playwright, Debian's chromium) on `reel serve`: a page
with `page.consent: ask` shows a labelled region with two buttons; nothing is sent before an
answer; "Allow" makes the view identified, "No, thanks" anonymous; the strict CSP holds."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from chalicelib.adapters.sqlite import SqliteEventStore, SqliteJobStore
from tests.conftest import BASE_TEMPLATE, Campaign
from tests.e2e.test_browser import browser  # noqa: F401 (the module's chromium)
from tests.server import reel_serve


def put_data(url: str, key: str, rid: str) -> str:
    """A recipient known by their record (no consent answer on record); their page's URL."""
    body = json.dumps({"campaign_id": "tiny", "data": {"first_name": rid.title()}}).encode()
    req = urllib.request.Request(f"{url}/recipients/{rid}/data", data=body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["page"])


def events_of(data_dir: Path, until: Any) -> list[Any]:
    store = SqliteEventStore(data_dir / "reel.db")
    deadline = time.monotonic() + 15
    while True:
        found = store.for_campaign("tiny")
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_banner_asks_and_the_answer_decides(
    browser: Browser,  # noqa: F811
    campaign: Campaign,
    tmp_path: Path,
) -> None:
    campaign.write_template(
        BASE_TEMPLATE.replace("  cta: {label:", "  consent: ask\n  cta: {label:")
    )
    data_dir = tmp_path / "data"
    with reel_serve(campaign.root.parent, data_dir) as (url, key):
        ada, bo = put_data(url, key, "ada"), put_data(url, key, "bo")
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if "Security" in m.text else None)
        # GIVEN Ada opens her page: the banner asks, by name, with two buttons
        page.goto(ada)
        region = page.get_by_role("region", name="May we measure how you watch?")
        assert region.is_visible()
        allow = region.get_by_role("button", name="Allow")
        assert region.get_by_role("button", name="No, thanks").is_visible()
        # THEN nothing is sent while she has not answered (the player flushes every second)
        page.wait_for_timeout(1500)
        assert SqliteEventStore(data_dir / "reel.db").for_campaign("tiny") == []
        # WHEN she allows (by keyboard: the button takes the focus like any other)
        allow.focus()
        page.keyboard.press("Enter")
        assert not region.is_visible()
        events = events_of(data_dir, lambda found: bool(found))
        # THEN her view is identified, and her answer is kept
        assert {e.recipient_id for e in events} == {"ada"}
        known = SqliteJobStore(data_dir / "reel.db").get_recipient("tiny", "ada")
        assert known is not None and (known.consent, known.consent_source) == (True, "page")
        # AND when Bo declines, his view is counted with nothing tied to him
        page.goto(bo)
        page.get_by_role("button", name="No, thanks").click()
        events = events_of(data_dir, lambda found: any(not e.recipient_id for e in found))
        assert {e.recipient_id for e in events} == {"ada", ""}
        assert all(e.view for e in events if not e.recipient_id)
        page.close()
        assert problems == []
