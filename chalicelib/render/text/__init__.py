"""Rasterize user text with Pillow and the bundled fonts into RGBA (never into a filtergraph).

fallback picks a font per grapheme cluster, direction resolves bidi levels (python-bidi),
shaping measures runs (Pillow with raqm), breaking wraps and fits lines, drawing paints them.
"""

from __future__ import annotations

from chalicelib.render.text.drawing import render_text
from chalicelib.render.text.fallback import FONT_DIR, font_chain, fonts_fingerprint

__all__ = ["FONT_DIR", "font_chain", "fonts_fingerprint", "render_text"]
