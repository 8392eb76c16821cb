"""Server-rendered HTML of the delivery side: the landing page and its captions (WebVTT)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from chalicelib.landing.pages import Page
from chalicelib.landing.tokens import signed_token
from chalicelib.template.expr import is_rtl
from chalicelib.template.interactive import PageChapter, PageInteraction
from chalicelib.template.model import Theme

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("chalicelib.landing", "templates"),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def landing_page(
    page: Page,
    *,
    video_url: str | None,
    poster_url: str,
    secret: str,
    lang: str,
    tracking: str = "identified",
    interactive: tuple[list[PageInteraction], list[PageChapter]] | None = None,
    theme: Theme | None = None,
) -> str:
    """The recipient's page. Its links are relative, so it works under any path prefix.

    The player streams the recipient's personal HLS (`hls_url`, rendered just in time, with
    their current data) and falls back to the MP4 (`video_url`, when one was rendered).
    `tracking` is the view's mode (tracking/consent.py): `ask` shows the consent banner, `off`
    sends nothing, `anonymous` sends events the server keeps without the recipient."""
    config: dict[str, Any] = {
        "token": signed_token(secret, page.token, page.recipient_id, page.campaign_id),
        "events_url": "../events",
        "hls_url": f"../hls/{page.token}/index.m3u8",
        "video_url": video_url,
        "tracking": tracking,
    }
    interactions, chapters = interactive or (page.interactions, page.chapters)
    if interactions or chapters:
        config |= {
            "interactive_url": f"{page.token}/interactive.json",
            "interactions": [i.model_dump(mode="json") for i in interactions],
            "chapters": [c.model_dump(mode="json") for c in chapters],
            "canvas": [page.width, page.height],
            "duration": page.duration,
        }
    return (
        environment()
        .get_template("page.html")
        .render(
            page=page,
            video_url=video_url,
            poster_url=poster_url,
            config=config,
            static="../static",
            lang=lang,
            direction="rtl" if is_rtl(lang) else "ltr",
            tracking=tracking,
            chapters=chapters,
            theme=theme,
        )
    )


def theme_css(theme: Theme) -> str:
    """The page theme as a style sheet (the CSP allows no inline style): custom properties,
    colours and the brand font, loaded from beside it (`font`)."""
    lines = ["/* The campaign's theme (page.theme). */"]
    props = {"--accent": theme.accent, "--accent-ink": theme.accent_ink}
    declared = "; ".join(f"{k}: {v}" for k, v in props.items() if v)
    if declared:
        lines.append(f":root {{ {declared}; }}")
    body = []
    if theme.background:
        body.append(f"background: {theme.background}")
    if theme.text:
        body.append(f"color: {theme.text}")
    if theme.font:
        suffix = theme.font[theme.font.rfind(".") :].lower()
        formats = {".woff2": "woff2", ".woff": "woff", ".ttf": "truetype", ".otf": "opentype"}
        lines.append(
            '@font-face { font-family: "ReelBrand"; src: url("theme-font") '
            f'format("{formats[suffix]}"); font-display: swap; }}'
        )
        body.append('font-family: "ReelBrand", system-ui, sans-serif')
    if body:
        lines.append(f"body {{ {'; '.join(body)}; }}")
    if theme.background or theme.text:
        lines.append(".reel-consent { background: inherit; color: inherit; }")
    return "\n".join(lines) + "\n"


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def captions_vtt(page: Page) -> str:
    """The page's captions: one cue per text layer while it is on screen."""
    lines = ["WEBVTT", ""]
    for i, cue in enumerate(page.captions, start=1):
        # "-->" would end the cue's timing line; blank lines would end the cue.
        text = "\n".join(line for line in cue.text.replace("-->", "→").splitlines() if line.strip())
        lines += [str(i), f"{_vtt_time(cue.start)} --> {_vtt_time(cue.end)}", text, ""]
    return "\n".join(lines)


def static_file(name: str) -> tuple[bytes, str] | None:
    """A file of the page's script and style sheet, or a vendored one (hls.js, installed from
    npm by `make player` into static/vendor/): served by the app, no third-party CDN."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in STATIC_TYPES:
        return None
    static = resources.files("chalicelib.landing").joinpath("static")
    for ref in (static.joinpath(name), static.joinpath("vendor", name)):
        if ref.is_file():
            return ref.read_bytes(), STATIC_TYPES[suffix]
    return None
