"""Interactions in a real browser at phone size (390×844): Ada's page, served by `reel serve`,
plays her stream through hls.js; the hotspot and the button appear at their times inside the
safe area, the chapters menu seeks, the poll is answered, a choice made from the keyboard
changes her record and the stream that follows it, and each event is stored once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page

from chalicelib.adapters.sqlite import SqliteEventStore, SqliteJobStore
from tests.conftest import Campaign
from tests.e2e.test_browser import browser  # noqa: F401  (the module's chromium fixture)
from tests.e2e.test_hls_browser import NO_NATIVE_HLS, put_data
from tests.interactive import interactive_template
from tests.server import reel_serve

PHONE = {"width": 390, "height": 844}
ADA = "ada@example.com"


def wait_for(page: Page, script: str, what: str, timeout: float = 30) -> Any:
    """Poll `script` until truthy (the page's CSP forbids the eval wait_for_function needs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: {page.evaluate('window.reelPlayer.errors')}"
        page.wait_for_timeout(100)


def seek(page: Page, seconds: float) -> None:
    page.evaluate(
        f"""() => new Promise(done => {{
            const v = document.getElementById('reel-video');
            v.addEventListener('seeked', () => setTimeout(done, 50), {{ once: true }});
            setTimeout(done, 5000);  // a seek that never ends fails the checks after it
            v.currentTime = {seconds};
        }})"""
    )


def visible(page: Page) -> list[str]:
    return list(page.evaluate("window.reelInteract.visible"))


def inside_safe_area(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            f"""() => {{
            const v = document.getElementById('reel-video').getBoundingClientRect();
            const r = document.querySelector("{selector}").getBoundingClientRect();
            const e = 1;
            return r.width > 0 && r.left >= v.left + 0.05 * v.width - e
              && r.right <= v.right - 0.05 * v.width + e
              && r.top >= v.top + 0.05 * v.height - e && r.bottom <= v.top + 0.8 * v.height + e;
        }}"""
        )
    )


def test_interactions_on_a_phone(browser: Browser, campaign: Campaign, tmp_path: Path) -> None:  # noqa: F811
    campaign.write_template(interactive_template())
    data_dir = tmp_path / "data"
    with reel_serve(campaign.root.parent, data_dir) as (url, key):
        page_url = put_data(url, key, ADA, {"first_name": "Ada"})["page"]
        context = browser.new_context(viewport=PHONE, device_scale_factor=1)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script(NO_NATIVE_HLS)
        page.goto(page_url)
        assert page.evaluate("window.reelPlayer.mode") == "hls.js"
        # Nothing overflows the phone's width
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.evaluate("document.getElementById('reel-video').play()")
        wait_for(page, "document.getElementById('reel-video').currentTime > 0.2", "playback")
        page.evaluate("document.getElementById('reel-video').pause()")

        # GIVEN the intro: only the hotspot, in the safe area, announced
        seek(page, 0.5)
        assert visible(page) == ["logo"]
        assert inside_safe_area(page, "[data-interaction=logo]")
        assert "Clickable area: The logo" in wait_for(
            page, "document.getElementById('reel-announce').textContent", "announcement"
        )
        assert page.get_attribute("[data-interaction=logo]", "aria-label") == "The logo"

        # WHEN the viewer opens the chapters menu's "Goodbye": the video seeks to 2 s
        page.click("#reel-chapters button[data-chapter=bye]")
        wait_for(
            page, "Math.abs(document.getElementById('reel-video').currentTime - 2) < 0.3", "seek"
        )
        assert page.locator(".reel-mark").count() == 3
        # THEN the poll appears (under the picture, at phone size), and is answered
        wait_for(page, "window.reelInteract.visible.includes('poll')", "the poll")
        page.check("input[name=team_size][value='11-50']")
        page.check("input[name=topics][value=api]")
        page.fill("input[name=email]", "ada@example.com")
        page.click("[data-interaction=poll] button[type=submit]")
        assert "poll" not in visible(page)

        # GIVEN the greeting: the button and the choice (the choice pauses the video)
        seek(page, 0.9)
        assert "book" not in visible(page)  # not before its time
        seek(page, 1.5)
        assert sorted(visible(page)) == ["book", "pick_plan"]
        assert inside_safe_area(page, "[data-interaction=book]")
        assert page.text_content("[data-interaction=book]") == "Book, Ada"
        # WHEN the viewer chooses "Pro" from the keyboard alone
        for _ in range(30):
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.getAttribute('data-value')")
            if focused == "pro":
                break
        assert focused == "pro", "the Pro option is not reachable with Tab"
        page.keyboard.press("Enter")
        # THEN her record says pro, and the stream played now includes the pro scene (3.4 s)
        recipients = SqliteJobStore(data_dir / "reel.db")
        deadline = time.monotonic() + 15
        while recipients.get_recipient("tiny", ADA).data["plan"] != "pro":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the choice did not reach the record"
            time.sleep(0.1)
        wait_for(
            page,
            "Math.abs(document.getElementById('reel-video').duration - 3.4) < 0.15",
            "the stream planned from the new record",
            timeout=60,
        )
        wait_for(page, "document.getElementById('reel-video').currentTime >= 2", "resumed after")
        assert [c["time"] for c in page.evaluate("window.reelInteract.chapters")][-1] == 2.8

        # AND the button still works: a click (its beacon) and its link
        seek(page, 1.5)
        page.evaluate("document.getElementById('reel-video').pause()")
        with page.expect_navigation():
            page.click("[data-interaction=book]")
        assert page.url == f"{url}/health"
        context.close()
        assert errors == []

        # AND every event was stored once
        store = SqliteEventStore(data_dir / "reel.db")
        deadline = time.monotonic() + 15
        while True:
            events = store.for_campaign("tiny")
            kinds = Counter(e.kind.value for e in events)
            if kinds["interaction_click"] and kinds["form_submit"] and kinds["choice"]:
                break
            assert time.monotonic() < deadline, kinds
            time.sleep(0.2)
        assert (kinds["interaction_click"], kinds["form_submit"], kinds["choice"]) == (1, 1, 1)
        shown = Counter(e.interaction for e in events if e.kind.value == "interaction_shown")
        assert shown == {"logo": 1, "poll": 1, "book": 1, "pick_plan": 1}
        [answer] = [e for e in events if e.kind.value == "form_submit"]
        assert answer.answers == {"team_size": "11-50", "topics": ["api"], "email": ADA}
        [choice] = [e for e in events if e.kind.value == "choice"]
        assert (choice.interaction, choice.option) == ("pick_plan", "pro")
