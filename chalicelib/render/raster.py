"""Still visuals drawn with Pillow (text, images, shapes) into RGBA PNGs that ffmpeg overlays."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from chalicelib.errors import AssetError
from chalicelib.render import text as textmod
from chalicelib.template.model import Fit, ImageLayer, ShapeLayer, TextLayer, TextStyle

# A 30000×30000 "image" is a decompression bomb, not a logo: refuse well before that.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def _rgba(color: str) -> tuple[int, int, int, int]:
    h = color.lstrip("#")
    alpha = int(h[6:8], 16) if len(h) == 8 else 255
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), alpha


def open_image(path: Path, field: str = "") -> Image.Image:
    """Open an image asset as RGBA, refusing what is not a sane image (with the reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise AssetError(
                        f"{path.name} is {img.width}×{img.height}: "
                        f"over {MAX_IMAGE_PIXELS:,} pixels",
                        field=field,
                    )
                img.load()
                return ImageOps.exif_transpose(img).convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AssetError(f"{path.name}: image too large ({exc})", field=field) from exc
    except UnidentifiedImageError as exc:
        raise AssetError(f"{path.name} is not an image Reel can read", field=field) from exc
    except OSError as exc:
        raise AssetError(f"{path.name} cannot be read: {exc}", field=field) from exc


def fit_image(img: Image.Image, size: tuple[int, int], fit: Fit) -> Image.Image:
    """Fit `img` into a `size` box: contain (letterbox, transparent), cover, circle, stretch."""
    w, h = size
    if fit is Fit.stretch:
        return img.resize(size, Image.Resampling.LANCZOS)
    if fit is Fit.contain:
        inner = ImageOps.contain(img, size, Image.Resampling.LANCZOS)
        box = Image.new("RGBA", size, (0, 0, 0, 0))
        box.paste(inner, ((w - inner.width) // 2, (h - inner.height) // 2))
        return box
    covered = ImageOps.fit(img, size, Image.Resampling.LANCZOS)
    if fit is Fit.circle:
        # Draw the mask 4× larger and shrink it: an antialiased edge.
        big = Image.new("L", (w * 4, h * 4), 0)
        ImageDraw.Draw(big).ellipse((0, 0, w * 4 - 1, h * 4 - 1), fill=255)
        mask = big.resize(size, Image.Resampling.LANCZOS)
        alpha = Image.composite(covered.getchannel("A"), Image.new("L", size, 0), mask)
        covered.putalpha(alpha)
    return covered


def shape_image(layer: ShapeLayer, size: tuple[int, int], scale: float) -> Image.Image:
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    box = (0, 0, size[0] - 1, size[1] - 1)
    fill = _rgba(layer.color)
    if layer.shape == "circle":
        draw.ellipse(box, fill=fill)
    else:
        draw.rounded_rectangle(box, radius=round(layer.radius * scale), fill=fill)
    return img


def text_image(
    layer: TextLayer, style: TextStyle, size: tuple[int, int], scale: float
) -> Image.Image:
    return textmod.render_text(
        layer.text,
        size[0],
        size[1],
        size=max(4, round(style.size * scale)),
        color=style.color,
        weight=style.weight,
        align=style.align,
        valign=style.valign,
        line_spacing=style.line_spacing,
        stroke_width=round(style.stroke_width * scale),
        stroke_color=style.stroke_color,
        shadow=style.shadow,
    )


def with_opacity(img: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1:
        return img
    alpha = img.getchannel("A").point(lambda a: round(a * opacity))
    out = img.copy()
    out.putalpha(alpha)
    return out


def layer_image(
    layer: TextLayer | ImageLayer | ShapeLayer,
    style: TextStyle | None,
    size: tuple[int, int],
    scale: float,
    field: str = "",
) -> Image.Image:
    """The RGBA picture of a still layer, `size` pixels, opacity applied."""
    if isinstance(layer, TextLayer):
        img = text_image(layer, style or TextStyle(), size, scale)
    elif isinstance(layer, ImageLayer):
        img = fit_image(open_image(Path(layer.src), field), size, layer.fit)
    else:
        img = shape_image(layer, size, scale)
    return with_opacity(img, layer.opacity)


class PngMemo:
    """Encoded PNGs of the stills already drawn in this process, by what determines them.

    A batch draws the same static layers (a panel, a label, a logo) for every recipient whose
    personal segment shows them; drawing text and encoding PNGs is worth doing once.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, key: str, draw: Callable[[], Image.Image]) -> bytes:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        buf = io.BytesIO()
        draw().save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
        self._items[key] = data
        self._size += len(data)
        while self._size > self.max_bytes and len(self._items) > 1:
            self._size -= len(self._items.popitem(last=False)[1])
        return data


MEMO = PngMemo()


def save_png(data: bytes, directory: Path) -> Path:
    """Write PNG bytes under a content-addressed name (identical pictures are written once)."""
    path = directory / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.exists():
        tmp = path.with_suffix(".tmp.png")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
