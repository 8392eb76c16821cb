"""Screenshots of Reel Studio for the README (`python docs/screenshots.py`): `reel studio` on a
copy of the demo campaign, in Debian's chromium through Playwright, written to docs/."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.test_browser import CHROMIUM, FLAGS  # noqa: E402
from tests.server import reel_studio  # noqa: E402


def wait_until(page, expression: str, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        page.wait_for_timeout(100)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="reel-shots-") as tmp:
        campaign = Path(tmp) / "demo"
        shutil.copytree(ROOT / "examples" / "demo", campaign)
        with reel_studio(campaign, Path(tmp) / "data") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(url)
            wait_until(page, "document.body.dataset.ready === '1' && window.reelStudio.idle()")
            page.select_option("#recipient", index=1)
            wait_until(page, "window.reelStudio.idle()")
            page.evaluate("window.reelStudio.seek(8.5)")
            wait_until(page, "window.reelStudio.idle()")
            page.click('#tabs button[data-file="scenes/greeting.yaml"]')
            page.wait_for_timeout(300)
            page.screenshot(path=str(ROOT / "docs" / "studio.png"))
            # A mistake, shown at its line with the words of `reel validate`.
            page.evaluate(
                """() => {
                    const view = window.reelStudio.view;
                    const at = view.state.doc.toString().indexOf('style: title');
                    view.dispatch({changes: {from: at, to: at + 12, insert: 'style: headline'}});
                }"""
            )
            page.wait_for_timeout(600)
            wait_until(page, "window.reelStudio.idle()")
            page.screenshot(path=str(ROOT / "docs" / "studio-problem.png"))
            browser.close()


if __name__ == "__main__":
    main()
