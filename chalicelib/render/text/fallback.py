"""The bundled font chain: coverage, loading, and which font draws each grapheme cluster."""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import unicodedata
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont, features

from chalicelib.render.text.clusters import clusters

log = logging.getLogger(__name__)

FONT_DIR: Path = Path(__file__).resolve().parent.parent / "fonts"

_CHAIN = (
    "NotoSans-VF.ttf",
    "NotoSansArabic-VF.ttf",
    "NotoSansHebrew-VF.ttf",
    "NotoSansDevanagari-VF.ttf",
    "NotoSansThai-VF.ttf",
    "NotoSansSymbols-VF.ttf",
    "DroidSansFallbackFull.ttf",
    "NotoEmoji-VF.ttf",
)
EMOJI = _CHAIN.index("NotoEmoji-VF.ttf")
# Only these fonts hold right-to-left letters, so width estimates need no per-character bidi.
RTL_FONTS = frozenset(
    {_CHAIN.index("NotoSansArabic-VF.ttf"), _CHAIN.index("NotoSansHebrew-VF.ttf")}
)
# HarfBuzz rebuilds its Indic shaping plan on every Pillow call (~2 ms): estimate such runs
# from cached clusters instead, and leave exact shaping to the lines actually drawn.
SLOW_FONTS = frozenset({_CHAIN.index("NotoSansDevanagari-VF.ttf")})

# The cached FreeType faces are shared, and a face is not safe to use from two threads at once.
FREETYPE = threading.Lock()


@functools.cache
def font_chain() -> tuple[Path, ...]:
    """The ordered fallback chain: the first font whose cmap covers a character draws it."""
    return tuple(FONT_DIR / name for name in _CHAIN)


@functools.cache
def fonts_fingerprint() -> str:
    """SHA-256 of the chain's font files, in chain order, for render cache keys."""
    digest = hashlib.sha256()
    for path in font_chain():
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def layout_engine() -> ImageFont.Layout:
    if features.check("raqm"):
        return ImageFont.Layout.RAQM
    log.warning("Pillow lacks libraqm: text is not shaped and right-to-left runs are reversed")
    return ImageFont.Layout.BASIC


def raqm() -> bool:
    return layout_engine() == ImageFont.Layout.RAQM


@functools.cache
def cmap(index: int) -> frozenset[int]:
    """The code points the chain's font number `index` has a glyph for."""
    font = TTFont(str(font_chain()[index]), lazy=True)
    try:
        best: dict[int, str] = font.getBestCmap() or {}
        return frozenset(best)
    finally:
        font.close()


@functools.cache
def _axes(path: Path) -> tuple[tuple[str, float, float, float], ...]:
    """(tag, min, default, max) of each variation axis, in the font's fvar order."""
    font = TTFont(str(path), lazy=True)
    try:
        if "fvar" not in font:
            return ()
        return tuple(
            (str(a.axisTag), float(a.minValue), float(a.defaultValue), float(a.maxValue))
            for a in font["fvar"].axes
        )
    finally:
        font.close()


@functools.lru_cache(maxsize=256)
def _font(path: Path, size: int, weight: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(str(path), size, layout_engine=layout_engine())
    axes = _axes(path)
    if axes:
        # Weight is the only style knob; any other axis stays at the designer's default.
        font.set_variation_by_axes(
            [
                min(max(float(weight), lo), hi) if tag == "wght" else dflt
                for tag, lo, dflt, hi in axes
            ]
        )
    return font


def font(index: int, size: int, weight: int) -> ImageFont.FreeTypeFont:
    """The chain's font number `index` at `size` pixels and `weight` (cached; hold FREETYPE)."""
    return _font(font_chain()[index], size, weight)


@functools.lru_cache(maxsize=65536)
def _first_font(cp: int) -> int:
    for index in range(len(_CHAIN)):
        if cp in cmap(index):
            return index
    return 0  # nothing covers it: the primary font draws its .notdef box rather than failing


def font_runs(text: str) -> list[tuple[int, str]]:
    """Split text into (chain index, text) runs of consecutive grapheme clusters sharing a font.

    A cluster (a base with its marks, a ZWJ sequence, a flag) is never split between fonts.
    """
    picks: list[int] = []
    pieces: list[list[str]] = []
    prev_cluster = ""
    for cluster in clusters(text):
        base = ord(cluster[0])
        pick = -1
        if picks:
            prev = picks[-1]
            # Spaces and punctuation keep the run's font so shaping and spacing stay uniform,
            # except after emoji: that font's space is 1.27 em wide and its '#' is a keycap base.
            keeps = prev != EMOJI and unicodedata.category(cluster[0])[0] in "ZP"
            if base in cmap(prev) and (keeps or prev_cluster.endswith("\u200d")):
                pick = prev
        if pick < 0:
            # VS16 asks for emoji presentation.
            emoji = cluster[1:2] == "\ufe0f" and base in cmap(EMOJI)
            pick = EMOJI if emoji else _first_font(base)
        if picks and picks[-1] == pick:
            pieces[-1].append(cluster)
        else:
            picks.append(pick)
            pieces.append([cluster])
        prev_cluster = cluster
    return [(pick, "".join(run)) for pick, run in zip(picks, pieces, strict=True)]
