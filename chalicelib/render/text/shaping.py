"""Shaping and measuring: a line's font/direction runs in visual order, and their widths."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from PIL import ImageFont

from chalicelib.render.text.clusters import clusters, sticks
from chalicelib.render.text.direction import CONTROLS, base_rtl, levels, visual_order
from chalicelib.render.text.fallback import (
    RTL_FONTS,
    SLOW_FONTS,
    cmap,
    font,
    font_chain,
    font_runs,
    raqm,
)

# Above this length a "word" is never measured whole: it is broken by clusters, lazily.
LONG_WORD = 512
_LRO, _RLO, _PDF = "\u202d", "\u202e", "\u202c"
_LTR_ONLY = frozenset({"L", "EN", "AN"})
_RTL_ONLY = frozenset({"R", "AL"})


@functools.cache
def simple_re() -> re.Pattern[str]:
    """Matches text the primary font draws alone, left to right, one advance per character.

    Such text (most Latin, Greek and Cyrillic) skips per-character fallback and bidi work,
    which keeps wrapping a 100,000-character text cheap.
    """
    points = sorted(
        cp
        for cp in cmap(0)
        if not sticks(chr(cp))
        and unicodedata.category(chr(cp)) not in ("Cc", "Cf")
        and unicodedata.bidirectional(chr(cp)) not in ("R", "AL", "AN")
    )
    return re.compile(f"[{char_class(points)}]*")


def char_class(points: list[int]) -> str:
    """The inside of a regex [...] matching exactly `points` (sorted), as ranges: fast to run."""
    ranges: list[str] = []
    start = prev = points[0]
    for cp in [*points[1:], -1]:
        if cp != prev + 1:
            ranges.append(
                re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else "")
            )
            start = cp
        prev = cp
    return "".join(ranges)


def resolve(line: str, rtl: bool) -> list[tuple[int, str, int]]:
    """(chain index, text, level) runs of one line, in visual (left-to-right) order.

    The explicit bidi controls have done their work once the levels are known: they are left
    out of the runs, so the shaper never applies them a second time.
    """
    line_levels = levels(line, rtl)
    runs: list[tuple[int, str, int]] = []
    pos = 0
    for index, chunk in font_runs(line):
        start = pos
        for i in range(pos + 1, pos + len(chunk) + 1):
            if i == pos + len(chunk) or line_levels[i] != line_levels[start]:
                text = line[start:i]
                if not CONTROLS.isdisjoint(text):
                    text = "".join(ch for ch in text if ch not in CONTROLS)
                if text:
                    runs.append((index, text, line_levels[start]))
                start = i
        pos += len(chunk)
    return [runs[i] for i in visual_order([run[2] for run in runs])]


class Run(NamedTuple):
    font: Path
    text: str
    rtl: bool


def runs(line: str, rtl: bool | None = None) -> list[Run]:
    """A line's font/direction runs in visual order; the paragraph direction is guessed if None."""
    base = base_rtl(line) if rtl is None else rtl
    chain = font_chain()
    return [Run(chain[index], text, level % 2 == 1) for index, text, level in resolve(line, base)]


def direction(rtl: bool) -> str | None:
    return ("rtl" if rtl else "ltr") if raqm() else None


def for_basic(text: str, rtl: bool) -> str:
    # Without raqm nothing reorders characters, so a right-to-left run is reversed by hand.
    return text[::-1] if rtl and not raqm() else text


def for_shaper(text: str, rtl: bool) -> str:
    """A run as handed to Pillow, so that it keeps the direction its bidi level gave it.

    raqm runs the bidi algorithm again on what it is given; a run whose level an override
    forced (Latin letters at an odd level, say) is wrapped in that override again.
    """
    if not raqm():
        return for_basic(text, rtl)
    against = _LTR_ONLY if rtl else _RTL_ONLY
    if any(unicodedata.bidirectional(ch) in against for ch in text):
        return (_RLO if rtl else _LRO) + text + _PDF
    return text


@dataclass(frozen=True)
class Placed:
    index: int
    text: str
    rtl: bool
    x: float  # pen position from the line's ink start


@dataclass(frozen=True)
class Line:
    runs: tuple[Placed, ...]
    width: float  # from the leftmost to the rightmost ink or advance, whichever reaches further


class Widths:
    """Advance widths at a reference size, shared by every size a render tries.

    Advances are unhinted, so they scale linearly with the size: one measurement per token
    serves the whole shrink loop. They are estimates (kerning across pieces is ignored); the
    lines actually drawn are measured exactly by Measure.line.
    """

    REF = 100

    def __init__(self, weight: int) -> None:
        self.weight = weight
        self._texts: dict[str, float] = {}
        self._chars: dict[str, float] = {}
        self._clusters: dict[str, float] = {}

    def _char(self, ch: str) -> float:
        width = self._chars.get(ch)
        if width is None:
            width = float(font(0, self.REF, self.weight).getlength(ch))
            self._chars[ch] = width
        return width

    def _shaped(self, index: int, text: str) -> float:
        rtl = index in RTL_FONTS
        face = font(index, self.REF, self.weight)
        return float(face.getlength(for_basic(text, rtl), direction=direction(rtl)))

    def _run(self, index: int, text: str) -> float:
        if index not in SLOW_FONTS:
            return self._shaped(index, text)
        width = 0.0
        for cluster in clusters(text):
            found = self._clusters.get(cluster)
            if found is None:
                found = self._clusters[cluster] = self._shaped(index, cluster)
            width += found
        return width

    def of(self, text: str) -> float:
        width = self._texts.get(text)
        if width is None:
            if simple_re().fullmatch(text):
                width = sum(map(self._char, text))
            else:
                width = sum(self._run(index, chunk) for index, chunk in font_runs(text))
            if len(text) <= LONG_WORD:
                self._texts[text] = width
        return width


class Measure:
    """Widths at one font size: scaled estimates for breaking, exact layouts for drawing."""

    def __init__(self, size: int, widths: Widths) -> None:
        self.size = size
        self.widths = widths
        self._scale = size / widths.REF
        self._lines: dict[tuple[str, bool], Line] = {}
        self._runs: dict[tuple[int, str, bool], float] = {}
        self._overhangs: dict[tuple[int, str, bool, bool], float] = {}

    def font(self, index: int) -> ImageFont.FreeTypeFont:
        return font(index, self.size, self.widths.weight)

    def run_width(self, index: int, text: str, rtl: bool) -> float:
        key = (index, text, rtl)
        width = self._runs.get(key)
        if width is None:
            face = self.font(index)
            width = float(face.getlength(for_shaper(text, rtl), direction=direction(rtl)))
            self._runs[key] = width
        return width

    def estimate(self, text: str) -> float:
        return self.widths.of(text) * self._scale

    def _overhang(self, index: int, text: str, rtl: bool, right: bool) -> float:
        """How far ink reaches past the advance box at the run's left or right end.

        Only the edge clusters are measured: a bounding box costs as much as drawing.
        """
        logical_start = right == rtl  # the visual right end of an RTL run is its logical start
        edge = text[:8] if logical_start else text[-8:]
        edge_clusters = list(clusters(edge))
        piece = "".join(edge_clusters[:2] if logical_start else edge_clusters[-2:])
        key = (index, piece, rtl, right)
        found = self._overhangs.get(key)
        if found is None:
            face = self.font(index)
            anchor = "rs" if right else "ls"
            box = face.getbbox(for_shaper(piece, rtl), anchor=anchor, direction=direction(rtl))
            found = self._overhangs[key] = float(max(0, box[2]) if right else max(0, -box[0]))
        return found

    def line(self, text: str, rtl: bool) -> Line:
        """The exact layout that will be drawn: bidi-ordered runs and their positions.

        Glyphs may overhang their advance (an 'f' or 'j', Devanagari matras), so the ends of
        a line are measured by ink too: alignment and fitting then keep all ink in the box.
        """
        key = (text, rtl)
        found = self._lines.get(key)
        if found is None:
            if not rtl and simple_re().fullmatch(text):
                # One font, no right-to-left character: bidi cannot reorder anything.
                line_runs = [(0, text, False)]
            else:
                line_runs = [
                    (index, chunk, level % 2 == 1) for index, chunk, level in resolve(text, rtl)
                ]
            placed: list[Placed] = []
            pen = 0.0
            if text and line_runs:
                pen = self._overhang(*line_runs[0], right=False)
                for index, chunk, run_rtl in line_runs:
                    placed.append(Placed(index, chunk, run_rtl, pen))
                    pen += self.run_width(index, chunk, run_rtl)
                pen += self._overhang(*line_runs[-1], right=True)
            found = self._lines[key] = Line(tuple(placed), pen)
        return found
