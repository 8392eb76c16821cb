"""Chart layers drawn with Pillow: one RGBA picture per frame while the chart builds (bars grow,
a line draws, a donut fills, a counter counts up), then its last picture held.

Pure: (layer, size, scale, progress in [0, 1]) → pixels. Numbers are written in the layer's
locale through the same babel formatting as `{{ x | number }}` and `{{ x | currency }}`.
"""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageDraw

from chalicelib.render import text as textmod
from chalicelib.render.text import fallback
from chalicelib.template.expr import DEFAULT_LOCALE, format_money, format_number
from chalicelib.template.model import ChartKind, ChartLayer

SUPERSAMPLE = 2  # lines, arcs and round ends are drawn at 2× and shrunk: antialiased edges


def _rgba(color: str) -> tuple[int, int, int, int]:
    h = color.lstrip("#")
    alpha = int(h[6:8], 16) if len(h) == 8 else 255
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), alpha


def frame_count(layer: ChartLayer, fps: int) -> int:
    """Pictures to draw: the build-up, then one more (its end state, held)."""
    return max(1, round(layer.animate * fps)) + 1 if layer.animate > 0 else 1


def progress(index: int, count: int) -> float:
    """Eased (cubic out) progress of picture `index` of `count`."""
    if count <= 1:
        return 1.0
    p = min(1.0, index / (count - 1))
    return 1 - (1 - p) ** 3


def _numbers(layer: ChartLayer) -> list[float]:
    assert isinstance(layer.values, list), "a bound chart layer holds its numbers"
    return [float(v) for v in layer.values]


def _labels(layer: ChartLayer) -> list[str]:
    labels = layer.labels if isinstance(layer.labels, list) else []
    return list(labels)


def _decimals(values: list[float], wanted: int | None) -> int:
    if wanted is not None:
        return wanted
    return 0 if all(float(v).is_integer() for v in values) else 2


def format_value(layer: ChartLayer, value: float, decimals: int) -> str:
    """A number as the layer writes it: its locale, its currency or unit."""
    locale = layer.locale or DEFAULT_LOCALE
    number: float | int = round(value) if decimals == 0 else round(value, decimals)
    if layer.style.currency:
        text = format_money(number, layer.style.currency, locale)
    else:
        text = format_number(number, decimals, locale)
    return f"{text} {layer.unit}" if layer.unit else text


def _paste_number(
    img: Image.Image, text: str, box: tuple[int, int, int, int], size: int, color: str, weight: int
) -> None:
    """A number (it changes every frame while the chart builds): drawn straight with the
    primary font, shrunk to fit its box, when the font has every character of it; else as
    any text is."""
    covered = fallback.cmap(0)
    if not all(ord(ch) in covered for ch in text):
        _paste_text(img, text, box, size, color, weight)
        return
    x0, y0, x1, y1 = box
    if x1 - x0 < 2 or y1 - y0 < 2 or not text:
        return
    with fallback.FREETYPE:
        face = fallback.font(0, size, weight)
        left, top, right, bottom = face.getbbox(text)
        fit = min(1.0, (x1 - x0) / max(1, right - left), (y1 - y0) / max(1, bottom - top))
        if fit < 1:
            face = fallback.font(0, max(4, int(size * fit)), weight)
        ImageDraw.Draw(img).text(
            ((x0 + x1) / 2, (y0 + y1) / 2), text, font=face, fill=_rgba(color), anchor="mm"
        )


@lru_cache(maxsize=512)
def _text(text: str, width: int, height: int, size: int, color: str, weight: int) -> Image.Image:
    return textmod.render_text(
        text, max(1, width), max(1, height), size=size, color=color, weight=weight
    )


def _paste_text(
    img: Image.Image, text: str, box: tuple[int, int, int, int], size: int, color: str, weight: int
) -> None:
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(img.width, box[2]), min(img.height, box[3])
    if x1 - x0 < 2 or y1 - y0 < 2 or not text:
        return
    pic = _text(text, x1 - x0, y1 - y0, size, color, weight)
    img.alpha_composite(pic, (x0, y0))


def draw(layer: ChartLayer, size: tuple[int, int], scale: float, p: float) -> Image.Image:
    """The chart at build-up progress `p` (0: empty, 1: complete), `size` pixels, RGBA."""
    values = _numbers(layer)
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    if not values:
        return img
    font = max(6, round(layer.style.font_size * scale))
    kind = layer.kind
    if kind is ChartKind.counter:
        _counter(img, layer, values, font, p)
    elif kind is ChartKind.progress:
        _progress(img, layer, values, font, scale, p)
    elif kind is ChartKind.donut:
        _donut(img, layer, values, font, p)
    elif kind is ChartKind.line:
        _line(img, layer, values, font, scale, p)
    else:
        _bars(img, layer, values, font, scale, p)
    if layer.opacity < 1:
        alpha = img.getchannel("A").point(lambda a: round(a * layer.opacity))
        img.putalpha(alpha)
    return img


def _top(layer: ChartLayer, values: list[float]) -> float:
    top = layer.max if layer.max is not None else max(values)
    return top if top > 0 else 1.0


def _color(layer: ChartLayer, i: int) -> str:
    colors = layer.style.colors
    return colors[i % len(colors)] if colors else layer.style.color


def _counter(img: Image.Image, layer: ChartLayer, values: list[float], font: int, p: float) -> None:
    target = values[0]
    decimals = _decimals([target], layer.style.decimals)
    w, h = img.size
    label = _labels(layer)[:1]
    text_h = h if not label else round(h * 0.7)
    big = min(font * 3, text_h)
    shown = format_value(layer, target * p, decimals)
    _paste_number(img, shown, (0, 0, w, text_h), big, layer.style.text_color, layer.style.weight)
    if label:
        _paste_text(img, label[0], (0, text_h, w, h), font, layer.style.text_color, 500)


def _progress(
    img: Image.Image, layer: ChartLayer, values: list[float], font: int, scale: float, p: float
) -> None:
    w, h = img.size
    top = _top(layer, values)
    share = max(0.0, min(1.0, values[0] / top))
    bar_h = max(4, round(h * 0.35))
    y0 = h - bar_h
    draw = ImageDraw.Draw(img)
    radius = bar_h // 2
    draw.rounded_rectangle((0, y0, w - 1, h - 1), radius=radius, fill=_rgba(layer.style.track))
    filled = round((w - 1) * share * p)
    if filled >= 2:
        draw.rounded_rectangle(
            (0, y0, filled, h - 1), radius=min(radius, filled // 2), fill=_rgba(layer.style.color)
        )
    if layer.style.show_values:
        decimals = _decimals([values[0]], layer.style.decimals)
        shown = format_value(layer, values[0] * p, decimals)
        label = _labels(layer)[:1]
        caption = f"{label[0]}  {shown}" if label else shown
        _paste_text(img, caption, (0, 0, w, y0), font, layer.style.text_color, layer.style.weight)


def _donut(img: Image.Image, layer: ChartLayer, values: list[float], font: int, p: float) -> None:
    w, h = img.size
    s = SUPERSAMPLE
    side = min(w, h)
    big = Image.new("RGBA", (side * s, side * s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    ring = max(2, round(side * s * 0.16))
    box = (ring // 2, ring // 2, side * s - ring // 2 - 1, side * s - ring // 2 - 1)
    draw.arc(box, 0, 360, fill=_rgba(layer.style.track), width=ring)
    positive = [max(0.0, v) for v in values]
    # One value against `max` reads as a gauge; several values are parts of their total.
    total = layer.max if (layer.max is not None and len(values) == 1) else sum(positive)
    total = total if total > 0 else 1.0
    start = -90.0
    sweep_left = 360.0 * p
    for i, v in enumerate(positive):
        sweep = min(360.0 * v / total, sweep_left)
        if sweep > 0.05:
            draw.arc(box, start, start + sweep, fill=_rgba(_color(layer, i)), width=ring)
        start += sweep
        sweep_left -= sweep
        if sweep_left <= 0:
            break
    pic = big.reduce(s)
    ox, oy = (w - side) // 2, (h - side) // 2
    img.alpha_composite(pic, (ox, oy))
    if layer.style.show_values:
        decimals = _decimals(values, layer.style.decimals)
        shown = format_value(layer, sum(values) * p, decimals)
        inner = round(side * 0.2)
        box_i = (ox + inner, oy + inner, ox + side - inner, oy + side - inner)
        _paste_number(img, shown, box_i, font, layer.style.text_color, layer.style.weight)


def _plot_area(
    layer: ChartLayer, size: tuple[int, int], font: int
) -> tuple[int, int, int, int, int]:
    """(left, top, right, bottom, label band) of the plot inside the layer box."""
    w, h = size
    band = round(font * 1.5) if _labels(layer) else 0
    head = round(font * 1.4) if layer.style.show_values else 0
    return 0, head, w, h - band, band


def _bars(
    img: Image.Image, layer: ChartLayer, values: list[float], font: int, scale: float, p: float
) -> None:
    h = img.height
    left, top_y, right, bottom, _ = _plot_area(layer, img.size, font)
    n = len(values)
    slot = (right - left) / n
    bar_w = max(1, round(slot * 0.62))
    top = _top(layer, values)
    draw = ImageDraw.Draw(img)
    labels = _labels(layer)
    decimals = _decimals(values, layer.style.decimals)
    plot_h = max(1, bottom - top_y)
    for i, v in enumerate(values):
        share = max(0.0, min(1.0, v / top))
        bar_h = round(plot_h * share * p)
        x0 = round(left + slot * i + (slot - bar_w) / 2)
        if bar_h >= 1:
            radius = min(bar_w // 4, bar_h // 2, round(8 * scale))
            draw.rounded_rectangle(
                (x0, bottom - bar_h, x0 + bar_w - 1, bottom - 1),
                radius=radius,
                fill=_rgba(_color(layer, i)),
            )
        cell = (round(left + slot * i), 0, round(left + slot * (i + 1)), 0)
        if layer.style.show_values and p > 0:
            y1 = bottom - bar_h
            y0 = max(0, y1 - round(font * 1.4))
            shown = format_value(layer, v * p, decimals)
            small = max(6, round(font * 0.8))
            color = layer.style.text_color
            _paste_number(img, shown, (cell[0], y0, cell[2], y1), small, color, layer.style.weight)
        if i < len(labels):
            _paste_text(
                img, labels[i], (cell[0], bottom, cell[2], h), font, layer.style.text_color, 500
            )


def _line(
    img: Image.Image, layer: ChartLayer, values: list[float], font: int, scale: float, p: float
) -> None:
    w, h = img.size
    left, top_y, right, bottom, _ = _plot_area(layer, img.size, font)
    n = len(values)
    top = _top(layer, values)
    low = min(0.0, min(values))
    span = (top - low) or 1.0
    s = SUPERSAMPLE
    pad = max(2, round(layer.style.line_width * scale * 1.5))
    side = max(pad, round((right - left) / (2 * n)))  # room for the first and last labels
    slot = (right - left - 2 * side) / max(1, n - 1)
    points = [
        (
            (left + side + slot * i if n > 1 else (left + right) / 2) * s,
            (bottom - pad - (bottom - top_y - 2 * pad) * (v - low) / span) * s,
        )
        for i, v in enumerate(values)
    ]
    # Draw the polyline up to `p` of its length, the last piece interpolated.
    reach = p * (n - 1)
    whole = math.floor(reach)
    shown = points[: whole + 1]
    if whole < n - 1 and reach > whole:
        (x0, y0), (x1, y1) = points[whole], points[whole + 1]
        t = reach - whole
        shown.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    big = Image.new("RGBA", (w * s, h * s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    width = max(1, round(layer.style.line_width * scale * s))
    color = _rgba(layer.style.color)
    if len(shown) > 1:
        draw.line(shown, fill=color, width=width, joint="curve")
    r = width * 0.9
    for x, y in shown[: whole + 1]:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    img.alpha_composite(big.reduce(s))
    labels = _labels(layer)
    decimals = _decimals(values, layer.style.decimals)
    cell_w = max(2, round(slot)) if n > 1 else w
    for i, (x, y) in enumerate(points):
        cx = round(x / s)
        if layer.style.show_values and i <= whole:
            y1 = round(y / s) - round(r / s) - 2
            small = max(6, round(font * 0.8))
            text = format_value(layer, values[i], decimals)
            box = (cx - cell_w // 2, max(0, y1 - round(font * 1.3)), cx + cell_w // 2, max(1, y1))
            _paste_number(img, text, box, small, layer.style.text_color, layer.style.weight)
        if i < len(labels):
            box = (cx - cell_w // 2, bottom, cx + cell_w // 2, h)
            _paste_text(img, labels[i], box, font, layer.style.text_color, 500)
