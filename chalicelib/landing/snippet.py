"""The email snippet: a looping GIF thumbnail of a recipient's video, and the HTML linking it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import ffmpeg
from PIL import Image, UnidentifiedImageError

from chalicelib.errors import DataError, RenderError
from chalicelib.render import ffmpeg as ff
from chalicelib.render.config import DEFAULT, RenderConfig

# Each retry trades a little more quality for size: (width factor, fps factor, palette colours).
# Bounded on purpose: past the last step a GIF this long simply does not fit the budget.
LADDER: tuple[tuple[float, float, int], ...] = (
    (1.0, 1.0, 256),
    (0.75, 1.0, 128),
    (0.5, 0.8, 64),
    (0.375, 0.6, 32),
)
MIN_WIDTH = 32
MIN_FPS = 4


@dataclass(frozen=True)
class GifInfo:
    """An animated GIF thumbnail as written: where, how big on screen and on disk."""

    path: Path
    width: int
    height: int
    frames: int
    bytes: int


def _even(value: float) -> int:
    return max(MIN_WIDTH, int(value) // 2 * 2)


def gif_args(
    video: Path, out: Path, *, start: float, seconds: float, width: int, fps: int, colors: int
) -> list[str]:
    """ffmpeg arguments for one palette-optimised, infinitely looping GIF (only numbers enter
    the filtergraph; the palette is generated and applied in the same run)."""
    source = ffmpeg.input(
        str(video), ss=f"{start:.3f}", t=f"{seconds:.3f}", protocol_whitelist="file"
    ).video
    frames = source.filter("fps", fps).filter("scale", width, -1, flags="lanczos")
    split = frames.filter_multi_output("split")
    # stats_mode=diff spends the palette on what moves, which is what the eye follows.
    palette = split.stream(0).filter("palettegen", max_colors=colors, stats_mode="diff")
    gif = ffmpeg.filter(
        [split.stream(1), palette], "paletteuse", dither="bayer", bayer_scale=5,
        diff_mode="rectangle",
    )  # fmt: skip
    args: list[str] = gif.output(str(out), f="gif", loop=0).overwrite_output().get_args()
    return args


def _window(
    video: Path, start: float, seconds: float, config: RenderConfig
) -> tuple[float, float, int | None]:
    """(start, seconds) clamped to the video's duration, and the video's width if known."""
    info = ff.probe(video, config=config)
    if not info.has_video:
        raise RenderError(f"{video.name} has no video stream")
    start = max(0.0, start)
    if info.duration is not None and info.duration > 0:
        seconds = min(seconds, info.duration)
        # A start too late still yields a full-length GIF: the last `seconds` of the video.
        start = min(start, max(0.0, info.duration - seconds))
    return start, seconds, info.width


def _read_gif(path: Path) -> tuple[int, int, int]:
    try:
        with Image.open(path) as im:
            return im.width, im.height, getattr(im, "n_frames", 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise RenderError(f"ffmpeg wrote an unreadable GIF: {exc}") from exc


def gif_thumbnail(
    video: Path,
    out: Path,
    *,
    start: float = 0.0,
    seconds: float = 3.0,
    width: int = 480,
    fps: int = 10,
    max_bytes: int = 1_000_000,
    config: RenderConfig = DEFAULT,
) -> GifInfo:
    """Write `seconds` of `video` from `start` to `out` as a looping GIF of at most `max_bytes`.

    Never upscales. Over budget, it retries down a short ladder of smaller width, fewer frames
    and fewer colours, and raises RenderError if even the smallest does not fit. `out` appears
    atomically: on failure nothing is left there.
    """
    if seconds <= 0 or width <= 0 or fps <= 0 or max_bytes <= 0:
        raise ValueError("seconds, width, fps and max_bytes must be positive")
    video = video.resolve()
    out = out.resolve()
    start, seconds, source_width = _window(video, start, seconds, config)
    if source_width:
        width = min(width, source_width)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part.gif")
    tried: list[str] = []
    try:
        for width_factor, fps_factor, colors in LADDER:
            w = _even(width * width_factor) if width_factor < 1 else width
            rate = max(MIN_FPS, round(fps * fps_factor)) if fps_factor < 1 else fps
            ff.run(gif_args(video, tmp, start=start, seconds=seconds, width=w, fps=rate,
                            colors=colors), config=config)  # fmt: skip
            size = tmp.stat().st_size
            if size <= max_bytes:
                gif_w, gif_h, frames = _read_gif(tmp)
                tmp.replace(out)
                return GifInfo(out, gif_w, gif_h, frames, size)
            tried.append(f"{w}px {rate}fps {colors} colours: {size} bytes")
    finally:
        tmp.unlink(missing_ok=True)
    raise RenderError(
        f"a {seconds:g}s GIF of {video.name} does not fit the budget of {max_bytes} bytes "
        f"(max_bytes); tried " + "; ".join(tried),
        field="max_bytes",
    )


def _url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError("must be an absolute http(s) URL", field=field)
    return value


FONT = "font-family:Arial,Helvetica,sans-serif"


def snippet_html(
    *, page_url: str, gif_url: str, title: str, alt: str, width: int, height: int
) -> str:
    """An email-safe HTML fragment: the GIF linking to the landing page, and a text link under
    it for clients that block images. Tables and inline styles only; every value is escaped."""
    if width <= 0 or height <= 0:
        raise DataError("must be positive", field="width" if width <= 0 else "height")
    page = escape(_url(page_url, "page_url"), quote=True)
    gif = escape(_url(gif_url, "gif_url"), quote=True)
    title_attr = escape(title, quote=True)
    alt_attr = escape(alt, quote=True)
    w, h = int(width), int(height)
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" align="center" '
        f'width="{w}" style="border-collapse:collapse;margin:0 auto;">\n'
        "  <tr>\n"
        '    <td align="center" style="padding:0;">\n'
        f'      <a href="{page}" target="_blank" title="{title_attr}" '
        'style="text-decoration:none;border:0;">'
        f'<img src="{gif}" alt="{alt_attr}" title="{title_attr}" width="{w}" height="{h}" '
        f'style="display:block;border:0;outline:none;text-decoration:none;width:{w}px;'
        'max-width:100%;height:auto;"></a>\n'
        "    </td>\n"
        "  </tr>\n"
        "  <tr>\n"
        f'    <td align="center" style="padding:12px 0 0 0;{FONT};font-size:16px;'
        'line-height:22px;">\n'
        f'      <a href="{page}" target="_blank" title="{title_attr}" '
        'style="color:#1a5fd0;text-decoration:underline;">Watch your video</a>\n'
        "    </td>\n"
        "  </tr>\n"
        "</table>\n"
    )
