"""Email snippets: a page's animated GIF, made once and stored beside its video."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path, PurePosixPath

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError
from chalicelib.landing.pages import Page
from chalicelib.services.recipients import get_page, page_url
from chalicelib.services.templates import scratch


def _gif_key(page: Page) -> str:
    return f"thumbnails/{PurePosixPath(page.video_key).stem}.gif"


def email_gif(b: Backends, token: str) -> bytes:
    """The stored GIF of a page's email snippet (`reel email-snippet` makes it)."""
    page = get_page(b, token)
    try:
        return b.blobs.get_bytes(_gif_key(page))
    except KeyError:
        raise NotFoundError("no email GIF yet: reel email-snippet makes it") from None


def email_snippet(b: Backends, page: Page) -> str:
    """The email HTML of a page: its animated GIF (made once, stored beside the video) linking
    to it. The GIF starts a second before the poster frame: the personal moment."""
    from PIL import Image

    from chalicelib.landing.snippet import gif_thumbnail, snippet_html

    key = _gif_key(page)
    if not b.blobs.exists(key):
        with tempfile.TemporaryDirectory(prefix="reel-gif-", dir=scratch(b)) as tmp:
            video = b.blobs.fetch(page.video_key, Path(tmp))
            start = max(0, page.poster_time - 1)
            gif = gif_thumbnail(video, Path(tmp) / "thumb.gif", start=start, config=b.render)
            b.blobs.put_file(key, gif.path)
    with Image.open(io.BytesIO(b.blobs.get_bytes(key))) as image:
        width, height = image.size
    return snippet_html(
        page_url=page_url(b, page.token),
        # A stable link (emails outlive signed media URLs): the route serves the stored GIF.
        gif_url=page_url(b, page.token) + "/email.gif",
        title=page.title,
        alt=f"{page.title}: play the video",
        width=width,
        height=height,
    )
