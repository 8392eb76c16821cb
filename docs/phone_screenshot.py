"""A phone-sized (390×844) screenshot of a landing page with interactions, chapters and a theme
(`python docs/phone_screenshot.py`): a copy of the demo campaign given those sections, served
by `reel serve`, in Debian's chromium through Playwright, written to docs/landing-phone.png."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docs.screenshots import wait_until  # noqa: E402
from tests.e2e.test_browser import CHROMIUM, FLAGS  # noqa: E402
from tests.server import reel_serve  # noqa: E402

THEME = """\
  theme: {accent: "#ff7a1a", accent_ink: "#1b1b1b", background: "#0b1f3a", text: "#f4f7fb",
          logo: assets/logo.png, logo_alt: Northwind Cloud}
"""
INTERACTIVE = """
chapters:
  - {id: welcome, title: Welcome, scene: intro}
  - {id: hello, title: "Hello {{ first_name }}", scene: greeting}
  - {id: renewal, title: Your renewal, scene: renewal}
interactions:
  - {type: button, id: book, scene: greeting, start: 1, label: "Book a call",
     action: {open: "https://northwind.example/onboarding"}, at: [0.82, 0.12]}
  - type: choice
    id: pick_plan
    scene: greeting
    start: 1.5
    label: "Which plan fits your team, {{ first_name }}?"
    variable: segment
    options:
      - {label: Starter, value: starter}
      - {label: Growth, value: growth}
      - {label: Enterprise, value: enterprise}
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="reel-phone-") as tmp:
        campaign = Path(tmp) / "campaigns" / "demo"
        shutil.copytree(ROOT / "examples" / "demo", campaign)
        template = campaign / "template.yaml"
        text = template.read_text().replace("\npage:\n", "\npage:\n" + THEME, 1)
        template.write_text(text + INTERACTIVE)
        with reel_serve(campaign.parent, Path(tmp) / "data") as (url, key):
            record = {
                "first_name": "Siobhán",
                "segment": "starter",
                "renewal_date": "2026-02-14",
                "monthly_fee": 19,
                "city": "Dublin",
            }
            body = json.dumps({"campaign_id": "welcome", "data": record}).encode()
            req = urllib.request.Request(f"{url}/recipients/r001/data", body, method="PUT")
            req.add_header("content-type", "application/json")
            req.add_header("x-api-key", key)
            with urllib.request.urlopen(req, timeout=60) as resp:
                page_url = json.loads(resp.read())["page"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.goto(page_url)
                video = "document.getElementById('reel-video')"
                page.evaluate(f"{video}.muted = true; {video}.play()")
                wait_until(page, f"{video}.currentTime > 0.5")
                hello = [
                    c for c in page.evaluate("window.reelInteract.chapters") if c["id"] == "hello"
                ]
                page.evaluate(f"{video}.currentTime = {hello[0]['time'] + 2.2}")
                wait_until(page, "window.reelInteract.visible.includes('pick_plan')")
                wait_until(page, f"{video}.readyState >= 2 && !{video}.seeking")
                page.wait_for_timeout(800)
                page.screenshot(path=str(ROOT / "docs" / "landing-phone.png"))
                browser.close()


if __name__ == "__main__":
    main()
