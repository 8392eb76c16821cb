"""Generate every asset of the demo campaign (Pillow + the project's ffmpeg), deterministically.

Run from anywhere:  python examples/demo/make_assets.py
Writes examples/demo/assets/: two looping background videos, the Northwind Cloud logo, eight
abstract avatars, a product illustration, a light background, a calendar icon, a music bed and
a chime. No network, no randomness: the same Pillow and ffmpeg give the same files.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for chalicelib

from chalicelib.render.ffmpeg import run  # noqa: E402

ASSETS = HERE / "assets"
W, H, FPS = 1280, 720, 30

RGB = tuple[int, int, int]

# Brand palette of the fictional Northwind Cloud.
NAVY: RGB = (8, 26, 51)
NAVY_2: RGB = (13, 43, 79)
TEAL: RGB = (25, 179, 166)
SKY: RGB = (79, 195, 247)
INDIGO: RGB = (88, 96, 214)
VIOLET: RGB = (124, 92, 240)
CORAL: RGB = (255, 138, 101)
CLOUD: RGB = (245, 247, 250)

# Output options shared by every encode: small, bit-exact, no metadata, fixed thread count
# (x264's output depends on its thread count, so we pin it).
VIDEO_OPTS = [
    "-c:v", "libx264", "-preset", "slow", "-crf", "24", "-tune", "animation",
    "-pix_fmt", "yuv420p", "-profile:v", "high", "-threads", "4",
    "-an", "-movflags", "+faststart", "-map_metadata", "-1",
    "-fflags", "+bitexact", "-flags:v", "+bitexact",
]  # fmt: skip
AUDIO_OPTS = [
    "-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2",
    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
]  # fmt: skip


# ── drawing helpers ─────────────────────────────────────────────────────────────────────────


def hex_rgb(color: str) -> RGB:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def vertical_gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BICUBIC)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def diagonal_gradient(size: tuple[int, int], a: RGB, b: RGB) -> Image.Image:
    side = int(math.hypot(*size)) + 2
    mask = Image.linear_gradient("L").resize((side, side)).rotate(45, Image.Resampling.BICUBIC)
    left = (side - size[0]) // 2
    top = (side - size[1]) // 2
    mask = mask.crop((left, top, left + size[0], top + size[1]))
    return Image.composite(Image.new("RGB", size, b), Image.new("RGB", size, a), mask)


_GLOW = Image.radial_gradient("L")  # 256×256: 0 in the centre, 255 at the rim


def glow_mask(diameter: int, strength: float) -> Image.Image:
    """A soft round blob: `strength` in the centre, fading smoothly to 0 at the rim."""
    peak = round(255 * strength)
    # smoothstep falloff: no visible edge
    lut = []
    for v in range(256):
        d = min(1.0, v / 180)
        lut.append(round(peak * (1 - d * d * (3 - 2 * d))))
    return _GLOW.point(lut).resize((diameter, diameter), Image.Resampling.BICUBIC)


def add_glow(
    img: Image.Image, center: tuple[float, float], diameter: int, color: RGB, strength: float
) -> None:
    """Screen-blend a coloured glow onto an RGB image, in place."""
    mask = glow_mask(diameter, strength)
    x = round(center[0] - diameter / 2)
    y = round(center[1] - diameter / 2)
    layer = Image.new("RGB", img.size, (0, 0, 0))
    full = Image.new("L", img.size, 0)
    full.paste(mask, (x, y))
    layer.paste(Image.new("RGB", img.size, color), (0, 0), full)
    img.paste(ImageChops.screen(img, layer))


def supersampled(
    size: tuple[int, int], factor: int, draw: Callable[[Image.Image, int], None]
) -> Image.Image:
    """Draw at `factor`× the size and shrink: antialiased geometric shapes."""
    big = Image.new("RGBA", (size[0] * factor, size[1] * factor), (0, 0, 0, 0))
    draw(big, factor)
    return big.resize(size, Image.Resampling.LANCZOS)


def gradient_fill(size: tuple[int, int], a: RGB, b: RGB, mask: Image.Image) -> Image.Image:
    """An RGBA image: a diagonal a→b gradient, visible where `mask` is."""
    img = diagonal_gradient(size, a, b).convert("RGBA")
    img.putalpha(mask)
    return img


# ── background loops ────────────────────────────────────────────────────────────────────────


def encode_frames(frames: Sequence[Image.Image], out: Path) -> None:
    """Write frames as PNGs in a scratch folder and encode a 1280×720 30 fps H.264 loop."""
    work = Path(tempfile.mkdtemp(prefix="reel-demo-"))
    try:
        for i, frame in enumerate(frames):
            frame.save(work / f"f{i:04d}.png", compress_level=1)
        args = [
            "-y", "-framerate", str(FPS), "-i", str(work / "f%04d.png"),
            "-vf", f"scale={W}:{H}:flags=bicubic,format=yuv420p",
            # A keyframe every half second: a render that starts mid-loop seeks, not decodes.
            "-r", str(FPS), "-g", str(FPS // 2), *VIDEO_OPTS, str(out),
        ]  # fmt: skip
        run(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def aurora_frames(seconds: int = 5, scale: int = 2) -> list[Image.Image]:
    """Dark navy with slow teal, sky and indigo glows on closed paths: a seamless loop."""
    w, h = W // scale, H // scale
    base = vertical_gradient((w, h), NAVY, NAVY_2)
    # (centre x, centre y, radius x, radius y, turns per loop, phase, diameter, colour, strength)
    blobs = [
        (0.25, 0.35, 0.10, 0.08, 1, 0.0, 0.80, TEAL, 0.55),
        (0.75, 0.30, 0.08, 0.10, -1, 1.7, 0.70, INDIGO, 0.60),
        (0.55, 0.80, 0.12, 0.06, 1, 3.1, 0.90, SKY, 0.35),
        (0.10, 0.85, 0.06, 0.05, -1, 4.4, 0.55, VIOLET, 0.40),
        (0.92, 0.75, 0.05, 0.08, 2, 0.9, 0.50, TEAL, 0.35),
    ]
    n = seconds * FPS
    frames = []
    for i in range(n):
        phase = 2 * math.pi * i / n
        img = base.copy()
        for cx, cy, rx, ry, turns, ph, dia, color, strength in blobs:
            x = (cx + rx * math.cos(turns * phase + ph)) * w
            y = (cy + ry * math.sin(turns * phase + ph)) * h
            pulse = 0.85 + 0.15 * math.sin(phase + ph)
            add_glow(img, (x, y), round(dia * w), color, strength * pulse)
        frames.append(img)
    return frames


def bokeh_frames(seconds: int = 5, scale: int = 2) -> list[Image.Image]:
    """Deep indigo with soft light discs orbiting gently: a seamless loop."""
    w, h = W // scale, H // scale
    base = diagonal_gradient((w, h), (27, 20, 70), (12, 52, 86))
    add_glow(base, (w * 0.8, h * 0.2), round(w * 0.9), (70, 40, 140), 0.45)
    add_glow(base, (w * 0.15, h * 0.9), round(w * 0.7), (10, 110, 120), 0.35)
    # A fixed, hand-made scatter (no RNG): x, y, radius, colour, alpha, orbit, phase
    discs = [
        (0.08, 0.22, 34, SKY, 0.16, 10, 0.3), (0.21, 0.62, 22, TEAL, 0.22, 14, 1.1),
        (0.33, 0.15, 18, CLOUD, 0.14, 8, 2.0), (0.42, 0.78, 40, VIOLET, 0.14, 12, 2.8),
        (0.57, 0.35, 26, SKY, 0.12, 16, 3.6), (0.66, 0.86, 16, CLOUD, 0.18, 9, 4.2),
        (0.74, 0.55, 46, TEAL, 0.10, 11, 5.0), (0.86, 0.18, 20, CORAL, 0.12, 13, 5.7),
        (0.93, 0.68, 30, SKY, 0.15, 10, 0.8), (0.50, 0.10, 12, CLOUD, 0.20, 7, 1.9),
        (0.15, 0.90, 28, INDIGO, 0.20, 12, 3.3), (0.62, 0.60, 14, CLOUD, 0.16, 6, 4.9),
    ]  # fmt: skip
    n = seconds * FPS
    frames = []
    for i in range(n):
        phase = 2 * math.pi * i / n
        layer = Image.new("RGBA", (w * 2, h * 2), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for k, (x, y, r, color, alpha, orbit, ph) in enumerate(discs):
            turn = 1 if k % 2 else -1
            cx = (x * w + orbit * math.cos(turn * phase + ph)) * 2
            cy = (y * h + orbit * math.sin(turn * phase + ph)) * 2
            a = alpha * (0.75 + 0.25 * math.sin(phase + ph))
            rr = r * 2
            draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=(*color, round(255 * a)))
        layer = layer.resize((w, h), Image.Resampling.LANCZOS).filter(ImageFilter.GaussianBlur(2.5))
        frame = base.convert("RGBA")
        frame.alpha_composite(layer)
        frames.append(frame.convert("RGB"))
    return frames


# ── stills ──────────────────────────────────────────────────────────────────────────────────


def cloud_mask(size: int, factor: int, box: tuple[float, float, float, float]) -> Image.Image:
    """A cloud silhouette (three circles on a rounded base) inside `box` (fractions)."""
    s = size * factor
    mask = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(mask)
    x0, y0, x1, y1 = (v * s for v in box)
    bw, bh = x1 - x0, y1 - y0
    base_top = y0 + bh * 0.55
    d.rounded_rectangle((x0, base_top, x1, y1), radius=(y1 - base_top) / 2, fill=255)
    for cx, cy, r in ((0.30, 0.62, 0.22), (0.55, 0.42, 0.30), (0.78, 0.63, 0.19)):
        px, py, pr = x0 + cx * bw, y0 + cy * bh, r * bw
        d.ellipse((px - pr, py - pr, px + pr, py + pr), fill=255)
    return mask


def make_logo(out: Path, size: int = 512) -> None:
    """The Northwind Cloud mark: a gradient disc, a white cloud, a north star above it."""
    f = 4
    s = size * f
    disc = Image.new("L", (s, s), 0)
    ImageDraw.Draw(disc).ellipse((0, 0, s - 1, s - 1), fill=255)
    img = gradient_fill((s, s), TEAL, INDIGO, disc)
    # wind: three light arcs sweeping across the lower half
    arcs = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ad = ImageDraw.Draw(arcs)
    for k, (top, alpha) in enumerate(((0.62, 70), (0.70, 50), (0.78, 35))):
        width = round(s * 0.018)
        ad.arc(
            (s * (-0.15 + 0.05 * k), s * top, s * (1.05 - 0.05 * k), s * (top + 0.5)),
            start=200,
            end=340,
            fill=(255, 255, 255, alpha),
            width=width,
        )
    img.alpha_composite(Image.composite(arcs, Image.new("RGBA", (s, s)), disc))
    # cloud with a soft shadow
    cmask = cloud_mask(size, f, (0.20, 0.36, 0.80, 0.74))
    shadow = Image.new("RGBA", (s, s), (*NAVY, 0))
    shadow.putalpha(cmask.point(lambda v: v * 70 // 255).filter(ImageFilter.GaussianBlur(s * 0.02)))
    img.alpha_composite(shadow, (0, round(s * 0.025)))
    cloud = Image.new("RGBA", (s, s), (*CLOUD, 0))
    cloud.putalpha(cmask)
    img.alpha_composite(cloud)
    # the north star: a four-pointed star, long point up
    cx, cy = s * 0.5, s * 0.20
    long_, short_, waist = s * 0.13, s * 0.07, s * 0.022
    star = [
        (cx, cy - long_), (cx + waist, cy - waist), (cx + short_, cy), (cx + waist, cy + waist),
        (cx, cy + short_), (cx - waist, cy + waist), (cx - short_, cy), (cx - waist, cy - waist),
    ]  # fmt: skip
    ImageDraw.Draw(img).polygon(star, fill=(255, 214, 102, 255))
    img.resize((size, size), Image.Resampling.LANCZOS).save(out, optimize=True)


AVATAR_PALETTES = [  # background a, background b, skin, shirt, hair, accent
    ("#ffb74d", "#ff7043", "#ffe0bd", "#26468c", "#4a2c1e", "#ffffff"),
    ("#4dd0e1", "#2678dc", "#f1c296", "#ff7043", "#1e1e32", "#ffeb3b"),
    ("#aed581", "#388e3c", "#c6865a", "#3f51b5", "#141414", "#ffffff"),
    ("#f06292", "#8e24aa", "#ffd5aa", "#009688", "#fac83c", "#ffffff"),
    ("#90a4ae", "#37474f", "#8d553c", "#ffa726", "#191414", "#81d4fa"),
    ("#fff176", "#ffa000", "#e0ac82", "#5e35b1", "#783c1e", "#ffffff"),
    ("#81c784", "#00796b", "#ffcdb4", "#e91e63", "#c85028", "#ffffff"),
    ("#b39ddb", "#4527a0", "#6e4632", "#26a69a", "#0f0f19", "#ffca28"),
]


def make_avatar(index: int, out: Path, size: int = 400) -> None:
    """An abstract geometric portrait: gradient backdrop, shoulders, head, one of four hair cuts."""
    bg_a, bg_b, skin, shirt, hair, accent = (hex_rgb(c) for c in AVATAR_PALETTES[index])
    f = 3
    s = size * f
    img = diagonal_gradient((s, s), bg_a, bg_b).convert("RGBA")
    d = ImageDraw.Draw(img)
    # a large decorative ring behind the figure
    ring = s * (0.30 + 0.04 * (index % 3))
    d.ellipse(
        (s / 2 - ring, s * 0.42 - ring, s / 2 + ring, s * 0.42 + ring),
        outline=(*accent, 70),
        width=round(s * 0.02),
    )
    # shoulders
    d.ellipse((s * 0.14, s * 0.70, s * 0.86, s * 1.30), fill=shirt)
    d.rectangle((s * 0.44, s * 0.58, s * 0.56, s * 0.74), fill=skin)  # neck
    d.polygon([(s * 0.42, s * 0.71), (s * 0.5, s * 0.82), (s * 0.58, s * 0.71)], fill=skin)
    cx, cy, r = s * 0.5, s * 0.43, s * 0.17
    style = index % 4
    if style == 1:  # long hair behind the head
        d.rounded_rectangle(
            (cx - r * 1.25, cy - r * 1.15, cx + r * 1.25, cy + r * 1.45), radius=r, fill=hair
        )
    d.ellipse((cx - r, cy - r * 1.1, cx + r, cy + r * 1.1), fill=skin)
    if style == 0:  # short cap of hair
        d.chord(
            (cx - r * 1.05, cy - r * 1.25, cx + r * 1.05, cy + r * 0.7),
            start=180,
            end=360,
            fill=hair,
        )
    elif style == 1:  # fringe
        d.chord(
            (cx - r * 1.02, cy - r * 1.2, cx + r * 1.02, cy + r * 0.35),
            start=180,
            end=360,
            fill=hair,
        )
    elif style == 2:  # bun on top
        d.ellipse((cx - r * 0.45, cy - r * 1.75, cx + r * 0.45, cy - r * 0.85), fill=hair)
        d.chord(
            (cx - r * 1.02, cy - r * 1.15, cx + r * 1.02, cy + r * 0.5),
            start=180,
            end=360,
            fill=hair,
        )
    else:  # geometric side part
        part = [(-1.05, 0), (-0.9, -0.9), (0, -1.2), (1.0, -0.7), (1.05, -0.1), (0.2, -0.55)]
        d.polygon([(cx + r * px, cy + r * py) for px, py in part], fill=hair)
    # eyes and a small smile, as simple shapes
    eye_y, eye_dx, eye_r = cy + r * 0.12, r * 0.38, r * 0.09
    ink = (40, 30, 40)
    for sx in (-1, 1):
        d.ellipse(
            (cx + sx * eye_dx - eye_r, eye_y - eye_r, cx + sx * eye_dx + eye_r, eye_y + eye_r),
            fill=ink,
        )
    d.arc(
        (cx - r * 0.35, cy + r * 0.2, cx + r * 0.35, cy + r * 0.68),
        start=20,
        end=160,
        fill=ink,
        width=round(r * 0.08),
    )
    if index in (1, 5):  # round glasses
        for sx in (-1, 1):
            gx = cx + sx * eye_dx
            d.ellipse(
                (gx - r * 0.27, eye_y - r * 0.25, gx + r * 0.27, eye_y + r * 0.25),
                outline=ink,
                width=round(r * 0.06),
            )
        d.line(
            (cx - eye_dx + r * 0.27, eye_y, cx + eye_dx - r * 0.27, eye_y),
            fill=ink,
            width=round(r * 0.06),
        )
    small = img.resize((size, size), Image.Resampling.LANCZOS).convert("RGB")
    # 256 colours (deterministic median cut + Floyd–Steinberg): a third of the bytes
    small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def drop_shadow(
    img: Image.Image, box: tuple[float, float, float, float], radius: float, blur: float, alpha: int
) -> None:
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).rounded_rectangle(box, radius=radius, fill=alpha)
    shadow = shadow.filter(ImageFilter.GaussianBlur(blur))
    layer = Image.new("RGBA", img.size, (*NAVY, 0))
    layer.putalpha(shadow)
    img.alpha_composite(layer)


def make_product(out: Path, size: tuple[int, int] = (880, 660)) -> None:
    """A dashboard card with charts, a floating status card and a cloud badge."""
    f = 2
    w, h = size[0] * f, size[1] * f
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    # main window
    win = (w * 0.04, h * 0.10, w * 0.86, h * 0.86)
    drop_shadow(img, (win[0], win[1] + 24, win[2], win[3] + 24), 40, 30, 90)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(win, radius=40, fill=(255, 255, 255, 255))
    d.rounded_rectangle((win[0], win[1], win[2], win[1] + 90), radius=40, fill=NAVY)
    d.rectangle((win[0], win[1] + 50, win[2], win[1] + 90), fill=NAVY)
    for k, color in enumerate((CORAL, (255, 214, 102), TEAL)):
        x = win[0] + 50 + k * 44
        d.ellipse((x - 14, win[1] + 31, x + 14, win[1] + 59), fill=color)
    # sidebar
    d.rectangle((win[0], win[1] + 90, win[0] + 200, win[3] - 40), fill=(236, 241, 248))
    d.rounded_rectangle(
        (win[0], win[3] - 80, win[0] + 200, win[3]), radius=40, fill=(236, 241, 248)
    )
    d.rectangle((win[0] + 40, win[3] - 80, win[0] + 200, win[3]), fill=(236, 241, 248))
    for k in range(5):
        y = win[1] + 140 + k * 70
        color = TEAL if k == 0 else (196, 207, 222)
        d.rounded_rectangle((win[0] + 36, y, win[0] + 164, y + 22), radius=11, fill=color)
    # area chart
    cx0, cy0, cx1, cy1 = win[0] + 250, win[1] + 140, win[2] - 50, win[1] + 560
    d.rounded_rectangle((cx0, cy0, cx1, cy1), radius=24, fill=(244, 248, 252))
    pts = []
    values = [0.30, 0.42, 0.38, 0.55, 0.50, 0.66, 0.62, 0.78, 0.74, 0.88]
    for k, v in enumerate(values):
        x = cx0 + 30 + k * (cx1 - cx0 - 60) / (len(values) - 1)
        y = cy1 - 30 - v * (cy1 - cy0 - 80)
        pts.append((x, y))
    area = Image.new("L", (w, h), 0)
    ImageDraw.Draw(area).polygon([*pts, (pts[-1][0], cy1 - 30), (pts[0][0], cy1 - 30)], fill=255)
    fade = Image.linear_gradient("L").resize((w, h)).point(lambda v: 150 - v * 130 // 255)
    fill = Image.new("RGBA", (w, h), (*TEAL, 0))
    fill.putalpha(ImageChops.multiply(area, fade))
    img.alpha_composite(fill)
    d = ImageDraw.Draw(img)
    d.line(pts, fill=TEAL, width=10, joint="curve")
    for x, y in [*pts[::3], pts[-1]]:
        d.ellipse((x - 14, y - 14, x + 14, y + 14), fill=(255, 255, 255), outline=TEAL, width=7)
    # bar chart row
    bx0, by1 = win[0] + 250, win[3] - 50
    for k, v in enumerate((0.45, 0.7, 0.55, 0.9, 0.65, 0.8, 0.5)):
        x = bx0 + k * 90
        color = INDIGO if k == 3 else (178, 190, 230)
        d.rounded_rectangle((x, by1 - v * 300, x + 56, by1), radius=14, fill=color)
    # floating status card
    card = (w * 0.58, h * 0.52, w * 0.97, h * 0.78)
    drop_shadow(img, (card[0], card[1] + 16, card[2], card[3] + 16), 30, 22, 110)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(card, radius=30, fill=(255, 255, 255))
    gx, gy = card[0] + 90, (card[1] + card[3]) / 2
    d.ellipse((gx - 52, gy - 52, gx + 52, gy + 52), fill=TEAL)
    d.line(
        [(gx - 24, gy + 2), (gx - 6, gy + 20), (gx + 28, gy - 18)],
        fill=(255, 255, 255),
        width=14,
        joint="curve",
    )
    for k, (length, color) in enumerate(((0.55, NAVY), (0.38, (160, 172, 190)))):
        y = gy - 30 + k * 50
        d.rounded_rectangle(
            (gx + 90, y, gx + 90 + (card[2] - gx - 130) * length / 0.55, y + 24),
            radius=12,
            fill=color,
        )
    # cloud badge top right
    bs = round(w * 0.22)
    badge = Image.new("L", (bs, bs), 0)
    ImageDraw.Draw(badge).ellipse((0, 0, bs - 1, bs - 1), fill=255)
    disc = gradient_fill((bs, bs), SKY, INDIGO, badge)
    cloud = Image.new("RGBA", (bs, bs), (*CLOUD, 0))
    cloud.putalpha(cloud_mask(bs, 1, (0.2, 0.28, 0.8, 0.72)))
    disc.alpha_composite(cloud)
    bx, by = round(w * 0.76), round(h * 0.0)
    drop_shadow(img, (bx + 10, by + 26, bx + bs - 10, by + bs + 10), bs / 2, 20, 90)
    img.alpha_composite(disc, (bx, by))
    img.resize(size, Image.Resampling.LANCZOS).save(out, optimize=True)


def make_light_background(out: Path) -> None:
    """The offers' backdrop: near-white with two large, very soft brand tints."""
    img = vertical_gradient((W // 2, H // 2), (247, 249, 252), (232, 239, 248))
    add_glow(img, (W * 0.42, H * 0.05), W // 2, (210, 242, 238), 0.9)
    add_glow(img, (W * 0.02, H * 0.48), W // 3, (222, 226, 250), 0.8)
    img = img.resize((W, H), Image.Resampling.BICUBIC)
    img.save(out, quality=90, optimize=True, progressive=False)


def make_calendar_icon(out: Path, size: int = 192) -> None:
    def draw(img: Image.Image, f: int) -> None:
        s = size * f
        d = ImageDraw.Draw(img)
        lw = round(s * 0.06)
        d.rounded_rectangle(
            (s * 0.1, s * 0.18, s * 0.9, s * 0.9), radius=s * 0.12, outline=CLOUD, width=lw
        )
        d.rounded_rectangle((s * 0.1, s * 0.18, s * 0.9, s * 0.38), radius=s * 0.12, fill=CLOUD)
        d.rectangle((s * 0.1, s * 0.3, s * 0.9, s * 0.38), fill=CLOUD)
        for x in (0.32, 0.68):
            d.rounded_rectangle(
                (s * x - lw / 2, s * 0.06, s * x + lw / 2, s * 0.28), radius=lw / 2, fill=CLOUD
            )
        for row in range(2):
            for col in range(3):
                x, y = s * (0.28 + col * 0.22), s * (0.54 + row * 0.18)
                r = s * 0.045
                fill = (255, 214, 102) if (row, col) == (1, 2) else CLOUD
                d.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    supersampled((size, size), 4, draw).save(out, optimize=True)


# ── audio ───────────────────────────────────────────────────────────────────────────────────


def midi(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def smooth(x: str) -> str:
    """smoothstep of an expression already clipped to [0, 1]."""
    return f"({x})*({x})*(3-2*({x}))"


def pad_expression(detune: float) -> str:
    """One channel of the bed: 4 chords × 8 s of soft additive pads, a bass and a bell arpeggio.

    The chord envelopes overlap by a second so the harmony glides instead of stepping.
    """
    chords = [  # Cmaj9 – Am7 – Fmaj7 – Gsus/G: bass, then the voicing
        (36, [52, 55, 59, 62]),
        (33, [52, 55, 60, 64]),
        (29, [53, 57, 60, 64]),
        (31, [50, 55, 59, 62]),
    ]
    terms = []
    for k, (bass, notes) in enumerate(chords):
        start, end = 8 * k, 8 * k + 8
        attack = f"clip((t-{start - 0.5 if k else 0})/{1.8 if k else 2.5},0,1)"
        release = f"clip(({end + 0.7 if k < 3 else 31.8}-t)/{1.8 if k < 3 else 3.5},0,1)"
        env = f"{smooth(attack)}*{smooth(release)}"
        voices = []
        for note in notes:
            fr = midi(note + 12) * detune
            voices.append(
                f"sin(2*PI*{fr:.4f}*t)+0.22*sin(4*PI*{fr:.4f}*t)+0.06*sin(6*PI*{fr:.4f}*t)"
            )
        fb = midi(bass + 12)
        voices.append(f"1.6*sin(2*PI*{fb:.4f}*t)+0.3*sin(4*PI*{fb:.4f}*t)")
        # a slow swell inside each chord keeps the pad breathing
        swell = f"(0.85+0.15*sin(2*PI*t/8+{k}))"
        terms.append(f"{env}*{swell}*0.1*({'+'.join(voices)})")
        # bell arpeggio: one note every half second, 2 octaves up, quick attack, gentle decay
        arp = [notes[i] + 24 for i in (0, 1, 2, 3, 2, 1, 3, 1)]
        step = "mod(floor(t*2),8)"
        freq = "0"
        for i in reversed(range(8)):
            freq = f"if(eq({step},{i}),{midi(arp[i]) * detune:.4f},{freq})"
        tau = "mod(t,0.5)"
        pluck = f"(1-exp(-{tau}*120))*exp(-{tau}*5)"
        window = f"between(t,{start},{end - 0.0001})"
        terms.append(f"{window}*{smooth(release)}*0.075*{pluck}*sin(2*PI*{freq}*t)")
    return "+".join(terms)


def make_bed(out: Path, seconds: int = 32) -> None:
    left, right = pad_expression(0.9985), pad_expression(1.0015)
    src = f"aevalsrc=exprs='{left}|{right}':s=48000:d={seconds}"
    post = (
        "aecho=0.8:0.55:170|290:0.22|0.14,lowpass=f=7000,"
        f"afade=t=in:d=1.5,afade=t=out:st={seconds - 2.5:g}:d=2.5,alimiter=limit=0.8"
    )
    run(["-y", "-f", "lavfi", "-i", src, "-af", post, *AUDIO_OPTS, "-t", str(seconds), str(out)])


def make_chime(out: Path) -> None:
    """Two bell notes (E6 then B6), a touch of inharmonic shimmer, a short tail."""
    notes = [(0.0, midi(88), 0.5), (0.11, midi(95), 0.38)]
    terms = []
    for at, fr, amp in notes:
        tau = f"(t-{at})"
        env = f"gte(t,{at})*(1-exp(-{tau}*300))*exp(-{tau}*4.5)"
        shimmer = f"0.25*sin(2*PI*{fr * 2.76:.3f}*{tau})*exp(-{tau}*6)"
        terms.append(f"{amp}*{env}*(sin(2*PI*{fr:.3f}*{tau})+{shimmer})")
    expr = "+".join(terms)
    src = f"aevalsrc=exprs='{expr}|{expr}':s=48000:d=1.2"
    post = "aecho=0.8:0.5:90|150:0.25|0.15,afade=t=out:st=0.9:d=0.3,alimiter=limit=0.7"
    run(["-y", "-f", "lavfi", "-i", src, "-af", post, *AUDIO_OPTS, str(out)])


# ── main ────────────────────────────────────────────────────────────────────────────────────


def make_avatars() -> None:
    for i in range(len(AVATAR_PALETTES)):
        make_avatar(i, ASSETS / "avatars" / f"avatar_{i + 1:02d}.png")


def main() -> None:
    (ASSETS / "avatars").mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("logo.png", lambda: make_logo(ASSETS / "logo.png")),
        ("product.png", lambda: make_product(ASSETS / "product.png")),
        ("bg_light.jpg", lambda: make_light_background(ASSETS / "bg_light.jpg")),
        ("icon_calendar.png", lambda: make_calendar_icon(ASSETS / "icon_calendar.png")),
        ("avatars/", make_avatars),
        ("bg_aurora.mp4", lambda: encode_frames(aurora_frames(), ASSETS / "bg_aurora.mp4")),
        ("bg_bokeh.mp4", lambda: encode_frames(bokeh_frames(), ASSETS / "bg_bokeh.mp4")),
        ("bed.m4a", lambda: make_bed(ASSETS / "bed.m4a")),
        ("chime.m4a", lambda: make_chime(ASSETS / "chime.m4a")),
    ]
    for name, step in steps:
        print(f"  {name}", flush=True)
        step()
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    print(f"assets: {total / 1024:.0f} KB in {ASSETS}")


if __name__ == "__main__":
    main()
