"""Draw laid-out text: validate the style, shrink until it fits, rasterize masks, composite."""

from __future__ import annotations

import math
import re

from PIL import Image, ImageDraw, ImageFilter

from chalicelib.render.text.breaking import (
    ellipsize,
    layout_block,
    line_limit,
    min_lines,
    packed_widths,
)
from chalicelib.render.text.clusters import cap_marks
from chalicelib.render.text.direction import base_rtl
from chalicelib.render.text.fallback import FREETYPE
from chalicelib.render.text.shaping import Measure, Widths, direction, for_shaper

_SHADOW_OFFSET = 2
_SHADOW_BLUR = 2.0
_SHADOW_ALPHA = 160
_COLOR_RE = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
# C0/C1 controls left after splitlines() have no glyph; drawing them would only show tofu.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _parse_color(value: str, name: str) -> tuple[int, int, int, int]:
    if not isinstance(value, str) or not _COLOR_RE.fullmatch(value):
        raise ValueError(f"{name}: expected '#rrggbb' or '#rrggbbaa', got {value!r}")
    hexes = value[1:] + ("ff" if len(value) == 7 else "")
    r, g, b, a = (int(hexes[i : i + 2], 16) for i in range(0, 8, 2))
    return r, g, b, a


def _paragraphs(text: str, max_chars: int, max_lines: int) -> tuple[list[tuple[str, bool]], bool]:
    cut = len(text) > max_chars
    # A lone surrogate cannot be encoded for FreeType or the bidi library: show U+FFFD.
    text = _SURROGATE_RE.sub("\ufffd", text[:max_chars])
    lines = text.replace("\t", " ").splitlines()
    if len(lines) > max_lines:
        lines, cut = lines[:max_lines], True
    paragraphs = [cap_marks(_CONTROL_RE.sub("", line)) for line in lines]
    return [(p, base_rtl(p)) for p in paragraphs], cut


def _solid(rgba: tuple[int, int, int, int], mask: Image.Image) -> Image.Image:
    layer = Image.new("RGBA", mask.size, (*rgba[:3], 0))
    layer.putalpha(mask.point([v * rgba[3] // 255 for v in range(256)]))
    return layer


def render_text(
    text: str,
    width: int,
    height: int,
    *,
    size: int,
    color: str = "#ffffff",
    weight: int = 700,
    align: str = "center",
    valign: str = "middle",
    line_spacing: float = 1.2,
    min_size: int | None = None,
    stroke_width: int = 0,
    stroke_color: str = "#000000",
    shadow: bool = False,
) -> Image.Image:
    """Draw text verbatim into a (width, height) RGBA image: wrapped, shrunk, then ellipsized."""
    fill_rgba = _parse_color(color, "color")
    stroke_rgba = _parse_color(stroke_color, "stroke_color")
    if width < 1 or height < 1:
        raise ValueError(f"width/height: must be positive, got {width}x{height}")
    if size < 1 or (min_size is not None and min_size < 1):
        raise ValueError(f"size: must be positive, got size={size} min_size={min_size}")
    if align not in ("left", "center", "right"):
        raise ValueError(f"align: expected left, center or right, got {align!r}")
    if valign not in ("top", "middle", "bottom"):
        raise ValueError(f"valign: expected top, middle or bottom, got {valign!r}")
    if not (math.isfinite(line_spacing) and line_spacing > 0):
        raise ValueError(f"line_spacing: must be a positive number, got {line_spacing}")
    if stroke_width < 0:
        raise ValueError(f"stroke_width: must not be negative, got {stroke_width}")

    smallest = min(size, min_size if min_size is not None else max(8, size // 4))
    with FREETYPE:
        return _render(
            text,
            width,
            height,
            size=size,
            smallest=smallest,
            fill_rgba=fill_rgba,
            stroke_rgba=stroke_rgba,
            weight=weight,
            align=align,
            valign=valign,
            line_spacing=line_spacing,
            stroke_width=stroke_width,
            shadow=shadow,
        )


def _render(
    text: str,
    width: int,
    height: int,
    *,
    size: int,
    smallest: int,
    fill_rgba: tuple[int, int, int, int],
    stroke_rgba: tuple[int, int, int, int],
    weight: int,
    align: str,
    valign: str,
    line_spacing: float,
    stroke_width: int,
    shadow: bool,
) -> Image.Image:
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if not text.strip():
        return canvas
    # A size above the box height can never fit; capping it (and the stroke) also caps every
    # bitmap Pillow allocates for a glyph run.
    size = min(size, height)
    smallest = min(smallest, size)
    stroke_width = min(stroke_width, height)
    # Ink spills past advances by the stroke, the shadow and a pixel of antialiasing.
    margin = stroke_width + 1 + (_SHADOW_OFFSET + math.ceil(2 * _SHADOW_BLUR) if shadow else 0)
    avail_w = float(width - 2 * margin)
    avail_h = float(height - 2 * margin)

    # Bound the work by what could show at the smallest size: hardly any character that
    # advances is narrower than 0.2 em, and the factor 3 leaves room for marks and joiners.
    max_lines = int(height // max(1.0, smallest * line_spacing)) + 2
    max_chars = max_lines * (int(width // max(1.0, smallest * 0.2)) + 2) * 3
    paragraphs, cut = _paragraphs(text, max_chars, max_lines)

    widths = Widths(weight)
    limit = line_limit(smallest, avail_h, line_spacing)
    packed = packed_widths(paragraphs, widths, smallest, avail_w, limit)
    # Sizes the lower bound already rules out are skipped without wrapping anything.
    current = size if packed is not None else smallest
    while True:
        needed = sum(min_lines(w * current / widths.REF, avail_w) for w in packed or ())
        if current <= smallest or needed <= line_limit(current, avail_h, line_spacing):
            m = Measure(current, widths)
            block = layout_block(paragraphs, cut, m, avail_w, avail_h, line_spacing)
            if block.fits or current <= smallest:
                break
        current = max(smallest, min(current - 1, int(current * 0.9)))

    lines = block.lines
    if not block.fits:
        visible = max(1, min(block.fits_lines, len(lines)))
        if block.more or len(lines) > visible:
            last, rtl = lines[visible - 1]
            lines = [*lines[: visible - 1], (ellipsize(last, rtl, avail_w, m), rtl)]
    if not any(text.strip() for text, _ in lines):
        return canvas

    fill_mask = Image.new("L", (width, height), 0)
    stroke_mask = Image.new("L", (width, height), 0) if stroke_width else None
    block_h = (len(lines) - 1) * block.line_height + block.ascent + block.descent
    top = {"top": margin, "middle": (height - block_h) / 2, "bottom": height - margin - block_h}
    baseline = top[valign] + block.ascent
    draw_fill = ImageDraw.Draw(fill_mask)
    draw_stroke = ImageDraw.Draw(stroke_mask) if stroke_mask is not None else None
    for text_line, rtl in lines:
        laid = m.line(text_line, rtl)
        left = {
            "left": margin,
            "center": (width - laid.width) / 2,
            "right": width - margin - laid.width,
        }
        line_x = float(round(left[align]))
        y = float(round(baseline))
        for run in laid.runs:
            x = line_x + run.x
            font = m.font(run.index)
            shown = for_shaper(run.text, run.rtl)
            text_dir = direction(run.rtl)
            draw_fill.text((x, y), shown, fill=255, font=font, anchor="ls", direction=text_dir)
            if draw_stroke is not None:
                draw_stroke.text(
                    (x, y),
                    shown,
                    fill=255,
                    font=font,
                    anchor="ls",
                    direction=text_dir,
                    stroke_width=stroke_width,
                    stroke_fill=255,
                )
        baseline += block.line_height

    outline = stroke_mask if stroke_mask is not None else fill_mask
    if shadow:
        offset = Image.new("L", (width, height), 0)
        offset.paste(outline, (_SHADOW_OFFSET, _SHADOW_OFFSET))
        soft = offset.filter(ImageFilter.GaussianBlur(_SHADOW_BLUR))
        alpha = _SHADOW_ALPHA * fill_rgba[3] // 255
        canvas = Image.alpha_composite(canvas, _solid((0, 0, 0, alpha), soft))
    if stroke_mask is not None:
        canvas = Image.alpha_composite(canvas, _solid(stroke_rgba, stroke_mask))
    return Image.alpha_composite(canvas, _solid(fill_rgba, fill_mask))
