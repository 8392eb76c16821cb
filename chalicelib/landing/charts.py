"""Server-side charts of a CampaignReport: standalone SVG (no JavaScript) and a PNG with Pillow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, ImageDraw, ImageFont

from chalicelib.render.text import FONT_DIR
from chalicelib.tracking.analytics import CampaignReport, FunnelStep, percent, step_label

FONT_FILE = FONT_DIR / "NotoSans-VF.ttf"
PNG_SIZE = (1200, 1040)

INK = "#0f172a"
MUTED = "#64748b"
GRID = "#e2e8f0"
TRACK = "#f1f5f9"
ACCENT = "#4f46e5"
STEP_COLORS = {"sent": "#64748b", "clicked": "#059669"}  # every other step: ACCENT
FONT_FAMILY = "system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, Helvetica, Arial, sans-serif"

_SVG_NS = "http://www.w3.org/2000/svg"


def _n(x: float) -> str:
    """A coordinate: at most one decimal, no trailing '.0'."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg_open(width: int, height: int, title: str, desc: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="{_SVG_NS}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label={quoteattr(title)} class="{css_class}" '
        f'font-family="{FONT_FAMILY}" font-size="13">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
    ]


def funnel_svg(report: CampaignReport) -> str:
    """Horizontal bars, one per funnel step, each with its count and its rate of `sent`."""
    steps = report.funnel
    width, top, row, bar_h, pad = 640, 56, 34, 20, 16
    label_w, value_w = 104, 112
    x0 = pad + label_w
    bar_max = width - x0 - value_w - pad
    height = top + row * len(steps) + 8
    title = f"Funnel — campaign {report.campaign_id}"
    desc = "; ".join(f"{step_label(s.step)}: {s.count} ({percent(s.rate)})" for s in steps)
    out = _svg_open(width, height, title, desc or "no steps", "reel-chart reel-funnel")
    out.append(
        f'<text x="{pad}" y="28" font-size="16" font-weight="600" fill="{INK}">'
        f"{escape(title)}</text>"
    )
    out.append(
        f'<text x="{pad}" y="46" fill="{MUTED}">Recipients at each step, and their share of '
        f"the {report.sent} sent</text>"
    )
    for i, s in enumerate(steps):
        y = top + i * row
        cy = y + bar_h / 2
        color = STEP_COLORS.get(s.step, ACCENT)
        w = bar_max * min(max(s.rate, 0.0), 1.0)
        out += [
            f'<g class="step" data-step={quoteattr(s.step)}>',
            f'<text class="label" x="{pad}" y="{_n(cy + 4.5)}" fill="{INK}">'
            f"{escape(step_label(s.step))}</text>",
            f'<rect class="track" x="{x0}" y="{y}" width="{bar_max}" height="{bar_h}" '
            f'rx="4" fill="{TRACK}"/>',
            f'<rect class="bar" x="{x0}" y="{y}" width="{_n(w)}" height="{bar_h}" rx="4" '
            f'fill="{color}"><title>{escape(step_label(s.step))}: {s.count} of {report.sent} '
            f"({percent(s.rate)})</title></rect>",
            f'<text class="count" x="{width - pad - 56}" y="{_n(cy + 4.5)}" text-anchor="end" '
            f'font-weight="600" fill="{INK}">{s.count}</text>',
            f'<text class="rate" x="{width - pad}" y="{_n(cy + 4.5)}" text-anchor="end" '
            f'fill="{MUTED}">{percent(s.rate)}</text>',
            "</g>",
        ]
    out.append("</svg>")
    return "\n".join(out)


def retention_svg(report: CampaignReport) -> str:
    """The retention curve: progress of the video (0–100 %) on x, share of viewers on y."""
    width, height = 640, 320
    left, right, top, bottom = 56, width - 24, 64, height - 52
    played = report.step("played").count if report.funnel else 0

    def x(p: float) -> float:
        return left + p / 100 * (right - left)

    def y(share: float) -> float:
        return bottom - min(max(share, 0.0), 1.0) * (bottom - top)

    title = f"Retention — campaign {report.campaign_id}"
    desc = "Share of the recipients who played still watching at each point: " + ", ".join(
        f"{p.percent}%: {percent(p.share)}" for p in report.retention
    )
    out = _svg_open(width, height, title, desc, "reel-chart reel-retention")
    out.append(
        f'<text x="16" y="28" font-size="16" font-weight="600" fill="{INK}">{escape(title)}</text>'
    )
    out.append(
        f'<text x="16" y="46" fill="{MUTED}">Share of the {played} recipients who played '
        f"who reached each point of the video</text>"
    )
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        gy = _n(y(share))
        out.append(
            f'<line class="grid" x1="{left}" y1="{gy}" x2="{right}" y2="{gy}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{_n(y(share) + 4.5)}" text-anchor="end" fill="{MUTED}">'
            f"{percent(share)}</text>"
        )
    for tick in range(0, 101, 20):
        out.append(
            f'<text x="{_n(x(tick))}" y="{bottom + 20}" text-anchor="middle" fill="{MUTED}">'
            f"{tick}%</text>"
        )
    out.append(
        f'<text x="{_n((left + right) / 2)}" y="{bottom + 42}" text-anchor="middle" '
        f'fill="{MUTED}">Progress of the video</text>'
    )
    points = [(x(p.percent), y(p.share)) for p in report.retention]
    coords = " ".join(f"{_n(px)},{_n(py)}" for px, py in points)
    if points:
        base = f"{_n(points[-1][0])},{_n(bottom)} {_n(points[0][0])},{_n(bottom)}"
        out.append(
            f'<polygon class="area" points="{coords} {base}" fill="{ACCENT}" fill-opacity="0.14"/>'
        )
        out.append(
            f'<polyline class="line" points="{coords}" fill="none" stroke="{ACCENT}" '
            f'stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    for (px, py), point in zip(points, report.retention, strict=True):
        out.append(
            f'<circle class="point" cx="{_n(px)}" cy="{_n(py)}" r="3.5" fill="#ffffff" '
            f'stroke="{ACCENT}" stroke-width="2"><title>{point.percent}% of the video: '
            f"{percent(point.share)} of viewers</title></circle>"
        )
    if not played:
        out.append(
            f'<text x="{_n((left + right) / 2)}" y="{_n((top + bottom) / 2)}" '
            f'text-anchor="middle" fill="{MUTED}">Nobody has played the video yet</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{MUTED}"/>\n</svg>'
    )
    return "\n".join(out)


# ── PNG ───────────────────────────────────────────────────────────────────────────────────

_SCALE = 2  # drawn at twice the size, then downsampled: Pillow's shapes are not antialiased


class _Painter:
    """Draws in PNG_SIZE coordinates onto a canvas _SCALE times larger."""

    def __init__(self) -> None:
        w, h = PNG_SIZE
        self.image = Image.new("RGB", (w * _SCALE, h * _SCALE), "#ffffff")
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        self._fonts: dict[tuple[int, bool], ImageFont.FreeTypeFont] = {}

    def font(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        key = (size, bold)
        if key not in self._fonts:
            font = ImageFont.truetype(str(FONT_FILE), size * _SCALE)
            font.set_variation_by_name("Bold" if bold else "Regular")
            self._fonts[key] = font
        return self._fonts[key]

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        size: int,
        *,
        fill: str = INK,
        bold: bool = False,
        anchor: str = "ls",
        max_width: float | None = None,
    ) -> None:
        font = self.font(size, bold)
        if max_width is not None:
            text = _fit(text, font, max_width * _SCALE)
        self.draw.text(_s(xy), text, font=font, fill=fill, anchor=anchor)

    def rect(self, box: Sequence[float], fill: str, radius: float = 0) -> None:
        x0, y0, x1, y1 = (v * _SCALE for v in box)
        if x1 - x0 < 1:
            return
        self.draw.rounded_rectangle((x0, y0, x1, y1), radius=radius * _SCALE, fill=fill)

    def line(self, points: Sequence[tuple[float, float]], fill: str, width: float) -> None:
        self.draw.line(
            [_s(p) for p in points], fill=fill, width=round(width * _SCALE), joint="curve"
        )

    def polygon(self, points: Sequence[tuple[float, float]], fill: tuple[int, ...]) -> None:
        self.draw.polygon([_s(p) for p in points], fill=fill)

    def dot(self, center: tuple[float, float], radius: float, fill: str, outline: str) -> None:
        cx, cy = _s(center)
        r = radius * _SCALE
        self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=4)


def _s(xy: tuple[float, float]) -> tuple[float, float]:
    return (xy[0] * _SCALE, xy[1] * _SCALE)


def _fit(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> str:
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text + "…"


def _hex_rgba(color: str, alpha: int) -> tuple[int, int, int, int]:
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), alpha)


def _paint_funnel(p: _Painter, steps: list[FunnelStep], sent: int, top: float) -> None:
    width = PNG_SIZE[0]
    p.text((48, top), "Funnel", 22, bold=True)
    p.text(
        (48, top + 26),
        f"Recipients at each step, and their share of the {sent} sent",
        15,
        fill=MUTED,
    )
    x0, x1 = 220.0, width - 220.0
    row, bar_h = 48.0, 30.0
    for i, s in enumerate(steps):
        y = top + 52 + i * row
        cy = y + bar_h / 2
        p.text((48, cy), step_label(s.step), 17, anchor="lm")
        p.rect((x0, y, x1, y + bar_h), TRACK, radius=6)
        share = min(max(s.rate, 0.0), 1.0)
        p.rect((x0, y, x0 + (x1 - x0) * share, y + bar_h), STEP_COLORS.get(s.step, ACCENT), 6)
        p.text((width - 120, cy), str(s.count), 18, bold=True, anchor="rm")
        p.text((width - 48, cy), percent(s.rate), 17, fill=MUTED, anchor="rm")


def _paint_retention(p: _Painter, report: CampaignReport, top: float) -> None:
    width = PNG_SIZE[0]
    played = report.step("played").count if report.funnel else 0
    p.text((48, top), "Retention", 22, bold=True)
    p.text(
        (48, top + 26),
        f"Share of the {played} recipients who played who reached each point of the video",
        15,
        fill=MUTED,
    )
    left, right = 120.0, width - 60.0
    ctop, bottom = top + 60, top + 300

    def x(pct: float) -> float:
        return left + pct / 100 * (right - left)

    def y(share: float) -> float:
        return bottom - min(max(share, 0.0), 1.0) * (bottom - ctop)

    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        p.line([(left, y(share)), (right, y(share))], GRID, 1)
        p.text((left - 14, y(share)), percent(share), 15, fill=MUTED, anchor="rm")
    for pct in range(0, 101, 20):
        p.text((x(pct), bottom + 12), f"{pct}%", 15, fill=MUTED, anchor="mt")
    p.text(((left + right) / 2, bottom + 38), "Progress of the video", 15, fill=MUTED, anchor="mt")
    points = [(x(pt.percent), y(pt.share)) for pt in report.retention]
    if points:
        p.polygon([*points, (points[-1][0], bottom), (points[0][0], bottom)], _hex_rgba(ACCENT, 36))
        p.line(points, ACCENT, 3)
        for pt in points:
            p.dot(pt, 5, "#ffffff", ACCENT)
    p.line([(left, bottom), (right, bottom)], MUTED, 1)
    if not played:
        p.text(
            ((left + right) / 2, (ctop + bottom) / 2),
            "Nobody has played the video yet",
            17,
            fill=MUTED,
            anchor="mm",
        )


def report_image(report: CampaignReport) -> Image.Image:
    """Both charts of the report, with a header, as one RGB image of PNG_SIZE."""
    p = _Painter()
    width = PNG_SIZE[0]
    p.text((48, 56), f"Campaign {report.campaign_id}", 30, bold=True, max_width=width - 96)
    when = datetime.fromtimestamp(report.generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    views, watch = report.totals.views, report.totals.watch_time
    p.text(
        (48, 86),
        f"Generated {when} · {report.sent} sent · {views} views · {watch / 60:.1f} min watched",
        16,
        fill=MUTED,
    )
    p.line([(48, 112), (width - 48, 112)], GRID, 2)
    _paint_funnel(p, report.funnel, report.sent, 156)
    _paint_retention(p, report, 650)
    return p.image.resize(PNG_SIZE, Image.Resampling.LANCZOS)


def report_png(report: CampaignReport, path: Path | str) -> None:
    """Write both charts of the report into one PNG at `path` (PNG_SIZE pixels)."""
    report_image(report).save(path, format="PNG", optimize=True)
