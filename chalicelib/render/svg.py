"""SVG layers drawn by resvg (resvg-py: a self-contained wheel, no system libraries), crisp at
the layer's size, with the bundled fonts only (no system fonts: the same pixels everywhere)."""

from __future__ import annotations

import io
from pathlib import Path

import resvg_py
from PIL import Image

from chalicelib.errors import TemplateError
from chalicelib.render.text import FONT_DIR
from chalicelib.template.motion import fill_svg, load_svg

FONT_FAMILY = "Noto Sans"


def _draw(svg: str, width: int | None, height: int | None) -> Image.Image:
    png = resvg_py.svg_to_bytes(
        svg_string=svg,
        width=width,
        height=height,
        skip_system_fonts=True,
        font_dirs=[str(FONT_DIR)],
        font_family=FONT_FAMILY,
        sans_serif_family=FONT_FAMILY,
    )
    with Image.open(io.BytesIO(bytes(png))) as img:
        img.load()
        return img.convert("RGBA")


def svg_image(
    src: str, resolved: dict[str, str], size: tuple[int, int], fit: str, field: str = ""
) -> Image.Image:
    """The SVG at `src`, its `{{ }}` snippets replaced by `resolved`, drawn into a `size` box
    (contain: its aspect kept, centred; stretch: filling the box)."""
    path = Path(src)
    svg = fill_svg(load_svg(path, field), resolved, path)
    w, h = size
    try:
        # Given both, resvg fits the drawing into w×h keeping its aspect: never more pixels
        # than the box, whatever size or viewBox the file claims.
        pic = _draw(svg, w, h)
    except (ValueError, RuntimeError, OSError) as exc:  # resvg's own refusals
        raise TemplateError(f"{path.name}: /svg: {str(exc)[:200]}", field=field) from exc
    if fit == "stretch":
        return pic if pic.size == size else pic.resize(size, Image.Resampling.LANCZOS)
    box = Image.new("RGBA", size, (0, 0, 0, 0))
    box.alpha_composite(
        pic.crop((0, 0, min(w, pic.width), min(h, pic.height))),
        ((w - min(w, pic.width)) // 2, (h - min(h, pic.height)) // 2),
    )
    return box
