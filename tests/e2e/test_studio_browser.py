"""Reel Studio in a real browser: `reel studio` on a campaign folder, driven by Playwright in
Debian's chromium. Typing changes the preview's pixels, a mistake shows at its line with
`reel validate`'s words, another recipient changes only the pixels of their name, saving writes
the file and an edit on disk reloads the editor, and a dropped file is checked like any asset."""

from __future__ import annotations

import base64
import io
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Page, sync_playwright

from tests.conftest import Campaign
from tests.e2e.test_browser import CHROMIUM, FLAGS
from tests.server import reel_studio

RECIPIENTS = "recipient_id,first_name,plan\nr1,Ada,basic\nr2,Maximiliane,basic\n"


@pytest.fixture
def studio(campaign: Campaign, tmp_path: Path) -> Iterator[str]:
    """`reel studio` on the tiny campaign (with a recipients file), its URL with the key."""
    (campaign.root / "recipients.csv").write_text(RECIPIENTS)
    with reel_studio(campaign.root, tmp_path / "data") as url:
        yield url


@pytest.fixture
def page(studio: str) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "chromium is missing: `make test` installs it (apt-get)"
    with tempfile.TemporaryDirectory(prefix="reel-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        # (a 4xx answer is logged too: a draft with problems is refused a frame, as it should)
        tab.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        tab.goto(studio)
        _until(tab, lambda: tab.evaluate("document.body.dataset.ready") == "1", "the page opens")
        _until(tab, lambda: _drawn(tab) >= 1 and _idle(tab), "the first frame is drawn")
        yield tab
        assert errors == [], errors  # no script error, no CSP violation
        context.close()


def _until(page: Page, done: Callable[[], bool], what: str, seconds: float = 30) -> None:
    # Polled: the page's CSP forbids the eval that wait_for_function needs.
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        page.wait_for_timeout(100)


def _drawn(page: Page) -> int:
    return int(page.evaluate("document.getElementById('frame').dataset.drawn || 0"))


def _frame(page: Page) -> Image.Image:
    """The preview's own pixels (the JPEG the engine drew), not a screenshot of them."""
    url = page.evaluate(
        """async () => {
            const img = document.getElementById('frame');
            await img.decode();
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext('2d').drawImage(img, 0, 0);
            return canvas.toDataURL('image/png');
        }"""
    )
    png = base64.b64decode(url.split(",", 1)[1])
    return Image.open(io.BytesIO(png)).convert("RGB")


def _after_redraw(page: Page, act: Callable[[], None], what: str) -> Image.Image:
    before = _drawn(page)
    act()
    _until(page, lambda: _drawn(page) > before and _idle(page), what)
    return _frame(page)


def _idle(page: Page) -> bool:
    return bool(page.evaluate("window.reelStudio.idle()"))


def _type_over(page: Page, old: str, new: str) -> None:
    """Select `old` in the editor and type `new` over it with the keyboard."""
    page.evaluate(
        """([old]) => {
            const view = window.reelStudio.view;
            const at = view.state.doc.toString().indexOf(old);
            view.dispatch({selection: {anchor: at, head: at + old.length}});
            view.focus();
        }""",
        [old],
    )
    page.keyboard.type(new)


def test_typing_changes_the_preview(page: Page) -> None:
    # GIVEN the greeting on screen (the playhead opens on the first personal run)
    before = _frame(page)
    # WHEN the designer types another background colour for it
    after = _after_redraw(page, lambda: _type_over(page, "#102040", "#e0c020"), "a redraw")
    # THEN the preview's pixels change (from dark blue to yellow)
    corner = (5, 5)
    assert before.getpixel(corner)[2] > before.getpixel(corner)[0]
    r, g, b = after.getpixel(corner)
    assert r > 150 and g > 120 and b < 100, (r, g, b)


def test_a_mistake_shows_at_its_line_with_the_words_of_reel_validate(
    page: Page, campaign: Campaign
) -> None:
    # WHEN the designer types a style that does not exist
    _type_over(page, "style: title", "style: headline")
    _until(page, lambda: page.locator("#problems li").count() == 1, "a problem is listed")
    # THEN it is listed at the line of the layer, and marked in the editor
    item = page.locator("#problems li").first
    text = campaign.template.read_text().replace("style: title", "style: headline")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "headline" in t)
    assert item.get_attribute("data-line") == str(line)
    _until(page, lambda: page.locator(".cm-lintRange-error").count() >= 1, "the mark")
    # … with the message `reel validate` prints for the same file
    campaign.template.write_text(text)
    cli = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "validate", str(campaign.template)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    reported = [row.strip().removeprefix("✗ ") for row in cli.stderr.splitlines()[1:]]
    shown = item.inner_text().split("\n")[-1].strip()
    assert reported and shown.endswith(reported[0]), (shown, reported)


def test_another_recipient_changes_only_the_pixels_of_their_name(page: Page) -> None:
    ada = _frame(page)
    grace = _after_redraw(
        page, lambda: page.select_option("#recipient", index=1), "the other recipient's frame"
    )
    diff = ImageChops.difference(ada, grace).convert("L").point(lambda v: 255 if v > 48 else 0)
    box = diff.getbbox()
    assert box is not None, "the name did not change"
    # the text layer: 140×40 centred on a 160×96 canvas (a few pixels of JPEG ringing around)
    left, top, right, bottom = box
    assert left >= 10 - 3 and right <= 150 + 3 and top >= 28 - 3 and bottom <= 68 + 3, box


def test_save_writes_the_file_and_an_edit_on_disk_reloads_the_editor(
    page: Page, campaign: Campaign
) -> None:
    _type_over(page, "Made for you", "Made for you, today")
    page.click("#save")
    _until(page, lambda: "saved template.yaml" in page.inner_text("#status"), "the save")
    assert "today" in campaign.template.read_text()
    # WHEN another editor changes the file on disk
    edited = campaign.template.read_text().replace("Made for you, today", "Made elsewhere")
    campaign.template.write_text(edited)
    # THEN the editor shows it
    doc = "window.reelStudio.view.state.doc.toString()"
    _until(page, lambda: "Made elsewhere" in page.evaluate(doc), "the editor reloads")
    assert "reloaded from disk: template.yaml" in page.inner_text("#status")


def _png(width: int, height: int) -> bytes:
    """A PNG declaring `width`×`height` that holds almost nothing: a pixel bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _drop(page: Page, name: str, data: bytes) -> None:
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: 'image/png'}));
            return dt;
        }""",
        [name, base64.b64encode(data).decode()],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_a_dropped_file_lands_under_assets_and_a_pixel_bomb_is_refused(
    page: Page, campaign: Campaign, media_dir: Path
) -> None:
    _drop(page, "logo.png", (media_dir / "red.png").read_bytes())
    _until(page, lambda: (campaign.root / "assets" / "logo.png").is_file(), "the upload lands")
    _until(
        page, lambda: page.locator('#assets li[data-path="assets/logo.png"]').count() == 1, "listed"
    )
    _drop(page, "huge.png", _png(30000, 30000))
    _until(page, lambda: "refused" in page.inner_text("#upload-note"), "the refusal")
    assert "huge.png" in page.inner_text("#upload-note")
    assert "pixels" in page.inner_text("#upload-note")
    assert not (campaign.root / "assets" / "huge.png").exists()


def test_play_renders_the_recipients_video_and_plays_it_in_the_page(page: Page) -> None:
    page.click("#play")
    player = page.locator("#player")
    _until(page, lambda: player.is_visible(), "the video is rendered", seconds=120)
    src = player.get_attribute("src") or ""
    assert "/files/videos/" in src
    _until(
        page, lambda: page.evaluate("document.getElementById('player').readyState") >= 1, "it loads"
    )
    duration = page.evaluate("document.getElementById('player').duration")
    assert duration == pytest.approx(2.6, abs=0.15)  # intro 1 + greeting 1 + outro 0.6
    assert "preview rendered" in page.inner_text("#status")


def test_the_schema_completes_and_documents_as_you_type(page: Page) -> None:
    # GIVEN the cursor at the end of a scene taken from the library
    page.evaluate(
        """() => {
            const view = window.reelStudio.view;
            const at = view.state.doc.toString().indexOf('  - use: outro') + 14;
            view.dispatch({selection: {anchor: at}});
            view.focus();
        }"""
    )
    # WHEN the designer starts a new key of it
    page.keyboard.press("Enter")
    page.keyboard.type("dur")
    # THEN the schema offers the key a scene reference may have
    options = page.locator(".cm-tooltip-autocomplete li")
    _until(page, lambda: options.count() >= 1, "completion")
    labels = page.locator(".cm-tooltip-autocomplete li .cm-completionLabel").all_inner_texts()
    assert "duration" in labels


def test_scrubbing_draws_only_the_latest_frame_asked_for(page: Page) -> None:
    before = _drawn(page)
    # WHEN the playhead is dragged through 30 positions faster than frames are drawn
    page.evaluate("for (let i = 0; i < 30; i++) window.reelStudio.seek(0.05 * i)")
    _until(page, lambda: _idle(page), "the frames are drawn")
    # THEN far fewer frames are drawn than asked for, the last one being the playhead's
    drawn = _drawn(page) - before
    assert 1 <= drawn <= 3, drawn
    assert page.get_attribute("#frame", "data-frame") == str(round(0.05 * 29 * 10))


def test_a_record_that_does_not_bind_names_its_field(page: Page) -> None:
    page.click("summary")
    page.fill("#paste", '{"plan": "pro"}')
    page.click("#use-paste")
    error = page.locator("#bind-error")
    _until(page, lambda: error.is_visible(), "the binding problem")
    assert "first_name" in error.inner_text()
