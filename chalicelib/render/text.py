"""Rasterize user text with Pillow and the bundled fonts into RGBA (never into a filtergraph)."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bidi import get_base_level
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

log = logging.getLogger(__name__)

FONT_DIR: Path = Path(__file__).resolve().parent / "fonts"

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
_EMOJI = _CHAIN.index("NotoEmoji-VF.ttf")
# Only these fonts hold right-to-left letters, so width estimates need no per-character bidi.
_RTL_FONTS = frozenset(
    {_CHAIN.index("NotoSansArabic-VF.ttf"), _CHAIN.index("NotoSansHebrew-VF.ttf")}
)

_ELLIPSIS = "…"
_ZWJ = "\u200d"
_JOINERS = frozenset({_ZWJ, "\u094d"})  # the next character joins the cluster: ZWJ, virama
# Breakable spaces: every Zs except the no-break ones (U+00A0, U+2007, U+202F), and ZWSP.
_SPACES = " \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u200b\u205f\u3000"
_WORD_RE = re.compile(f"[^{_SPACES}]*[{_SPACES}]*")
# C0/C1 controls left after splitlines() have no glyph; drawing them would only show tofu.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NO_BREAK_BEFORE = frozenset("ー々ゝゞヽヾぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
# Above this length a "word" is never measured whole: it is broken by clusters, lazily.
_LONG_WORD = 512
_CHUNK = 4096
# HarfBuzz rebuilds its Indic shaping plan on every Pillow call (~2 ms): estimate such runs
# from cached clusters instead, and leave exact shaping to the lines actually drawn.
_SLOW_FONTS = frozenset({_CHAIN.index("NotoSansDevanagari-VF.ttf")})

_SHADOW_OFFSET = 2
_SHADOW_BLUR = 2.0
_SHADOW_ALPHA = 160
_COLOR_RE = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
# The cached FreeType faces are shared, and a face is not safe to use from two threads at once.
_FREETYPE = threading.Lock()


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
def _layout_engine() -> ImageFont.Layout:
    if features.check("raqm"):
        return ImageFont.Layout.RAQM
    log.warning("Pillow lacks libraqm: text is not shaped and right-to-left runs are reversed")
    return ImageFont.Layout.BASIC


def _raqm() -> bool:
    return _layout_engine() == ImageFont.Layout.RAQM


@functools.cache
def _cmap(index: int) -> frozenset[int]:
    font = TTFont(str(font_chain()[index]), lazy=True)
    try:
        cmap: dict[int, str] = font.getBestCmap() or {}
        return frozenset(cmap)
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
    font = ImageFont.truetype(str(path), size, layout_engine=_layout_engine())
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


@functools.lru_cache(maxsize=65536)
def _first_font(cp: int) -> int:
    for index in range(len(_CHAIN)):
        if cp in _cmap(index):
            return index
    return 0  # nothing covers it: the primary font draws its .notdef box rather than failing


@functools.cache
def _simple_re() -> re.Pattern[str]:
    """Matches text the primary font draws alone, left to right, one advance per character.

    Such text (most Latin, Greek and Cyrillic) skips per-character fallback and bidi work,
    which keeps wrapping a 100,000-character text cheap.
    """
    points = sorted(
        cp
        for cp in _cmap(0)
        if not _sticks(chr(cp))
        and unicodedata.category(chr(cp)) not in ("Cc", "Cf")
        and unicodedata.bidirectional(chr(cp)) not in ("R", "AL", "AN")
    )
    return re.compile(f"[{_char_class(points)}]*")


def _char_class(points: list[int]) -> str:
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


def _sticks(ch: str) -> bool:
    """True when ch belongs to the preceding character's cluster (mark, joiner, selector...)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or cp == 0x200D
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _clusters(text: str) -> Iterator[str]:
    """Approximate grapheme clusters: base + marks/selectors/modifiers, ZWJ sequences, flags,
    and Devanagari conjuncts (a consonant after a virama, as in UAX #29's rule GB9c)."""
    start = 0
    lone_regional = False
    for i in range(1, len(text) + 1):
        if i < len(text):
            ch = text[i]
            if _sticks(ch) or text[i - 1] in _JOINERS:
                continue
            if _is_regional(ch) and lone_regional:
                lone_regional = False
                continue
        yield text[start:i]
        start = i
        lone_regional = i < len(text) and _is_regional(text[i])


def _is_ideograph(ch: str) -> bool:
    wide = unicodedata.east_asian_width(ch) in ("W", "F")
    return wide and unicodedata.category(ch) in ("Lo", "Lm")


def _cjk_break(prev: str, cur: str) -> bool:
    if _sticks(cur) or prev == _ZWJ or cur in _SPACES:
        return False
    if not (_is_ideograph(prev) or _is_ideograph(cur)):
        return False
    # Kinsoku, lightly: no line may start with closing punctuation or end with an opening one.
    return (
        cur not in _NO_BREAK_BEFORE
        and unicodedata.category(cur) not in ("Pe", "Pf", "Po")
        and unicodedata.category(prev) not in ("Ps", "Pi")
    )


def _tokens(paragraph: str) -> Iterator[str]:
    """Unbreakable pieces, each carrying its trailing spaces; lazy so huge text costs nothing."""
    for match in _WORD_RE.finditer(paragraph):
        chunk = match.group()
        if not chunk:
            continue
        if max(chunk) < "\u1100":  # nothing East Asian: only spaces break
            yield chunk
            continue
        start = 0
        for i in range(1, len(chunk)):
            if _cjk_break(chunk[i - 1], chunk[i]):
                yield chunk[start:i]
                start = i
        yield chunk[start:]


def _font_runs(text: str) -> list[tuple[int, str]]:
    """Split text into (chain index, text) runs of consecutive characters sharing a font."""
    picks: list[int] = []
    for i, ch in enumerate(text):
        cp = ord(ch)
        if picks:
            prev = picks[-1]
            if _sticks(ch):
                picks.append(prev)
                continue
            # Spaces and punctuation keep the run's font so shaping and spacing stay uniform,
            # except after emoji: that font's space is 1.27 em wide and its '#' is a keycap base.
            covered = cp in _cmap(prev)
            keeps = prev != _EMOJI and unicodedata.category(ch)[0] in "ZP"
            if covered and (text[i - 1] == _ZWJ or keeps):
                picks.append(prev)
                continue
        if i + 1 < len(text) and text[i + 1] == "\ufe0f" and cp in _cmap(_EMOJI):
            picks.append(_EMOJI)  # VS16 asks for emoji presentation
        else:
            picks.append(_first_font(cp))
    runs: list[tuple[int, str]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or picks[i] != picks[start]:
            runs.append((picks[start], text[start:i]))
            start = i
    return runs


_STRONGISH = {"L": "L", "R": "R", "EN": "R", "AN": "R"}
_FORMATTING = frozenset({"BN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_TRAILING = _FORMATTING | {"WS", "S", "B"}


def _levels(text: str, rtl: bool) -> list[int]:
    """Embedding levels (0, 1 or 2) of a line by the Unicode bidi algorithm, simplified.

    Implemented: W1-W7, N1-N2, I1-I2 and L1 (trailing whitespace) for one paragraph level.
    Not implemented: explicit embeddings, overrides and isolates (their controls are ignored)
    and bracket pairs (N0); levels are resolved per wrapped line rather than per paragraph.
    """
    base = 1 if rtl else 0
    sos = "R" if rtl else "L"
    types: list[str] = []
    prev = sos
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind == "NSM" or kind in _FORMATTING:
            kind = prev  # W1 (and X9: formatting characters vanish into their neighbour)
        types.append(kind)
        prev = kind
    n = len(types)
    strong = sos
    for i, kind in enumerate(types):  # W2, W3
        if kind == "EN" and strong == "AL":
            types[i] = "AN"
        if kind in ("L", "R", "AL"):
            strong = kind
        if kind == "AL":
            types[i] = "R"
    for i in range(1, n - 1):  # W4
        left, right = types[i - 1], types[i + 1]
        if types[i] == "ES" and left == right == "EN":
            types[i] = "EN"
        elif types[i] == "CS" and left == right and left in ("EN", "AN"):
            types[i] = left
    i = 0
    while i < n:  # W5: currency and percent signs go with adjacent European digits
        if types[i] != "ET":
            i += 1
            continue
        j = i
        while j < n and types[j] == "ET":
            j += 1
        if (i > 0 and types[i - 1] == "EN") or (j < n and types[j] == "EN"):
            types[i:j] = ["EN"] * (j - i)
        i = j
    strong = sos
    for i, kind in enumerate(types):  # W6, W7
        if kind in ("ES", "ET", "CS"):
            types[i] = "ON"
        elif kind == "EN" and strong == "L":
            types[i] = "L"
        if kind in ("L", "R"):
            strong = kind
    i = 0
    while i < n:  # N1, N2: neutrals between same-direction neighbours take it, else the base
        if types[i] in _STRONGISH:
            i += 1
            continue
        j = i
        while j < n and types[j] not in _STRONGISH:
            j += 1
        before = sos if i == 0 else _STRONGISH[types[i - 1]]
        after = sos if j == n else _STRONGISH[types[j]]
        types[i:j] = [before if before == after else sos] * (j - i)
        i = j
    if rtl:  # I2
        levels = [2 if kind in ("L", "EN", "AN") else 1 for kind in types]
    else:  # I1
        levels = [0 if kind == "L" else 1 if kind == "R" else 2 for kind in types]
    for i in range(n - 1, -1, -1):  # L1
        if unicodedata.bidirectional(text[i]) not in _TRAILING:
            break
        levels[i] = base
    return levels


def _visual_order(levels: list[int]) -> list[int]:
    """L2: indices in display order, reversing each run at or above every odd level."""
    order = list(range(len(levels)))
    if not levels:
        return order
    lowest_odd = min((lvl for lvl in levels if lvl % 2), default=None)
    if lowest_odd is None:
        return order
    for level in range(max(levels), lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] < level:
                i += 1
                continue
            j = i
            while j < len(order) and levels[order[j]] >= level:
                j += 1
            order[i:j] = order[i:j][::-1]
            i = j
    return order


def _resolve(line: str, rtl: bool) -> list[tuple[int, str, int]]:
    """(chain index, text, level) runs of one line, in visual (left-to-right) order."""
    levels = _levels(line, rtl)
    runs: list[tuple[int, str, int]] = []
    pos = 0
    for index, chunk in _font_runs(line):
        start = pos
        for i in range(pos + 1, pos + len(chunk) + 1):
            if i == pos + len(chunk) or levels[i] != levels[start]:
                runs.append((index, line[start:i], levels[start]))
                start = i
        pos += len(chunk)
    return [runs[i] for i in _visual_order([run[2] for run in runs])]


def _base_rtl(paragraph: str) -> bool:
    """The paragraph direction, from its first strong character (P2, P3); LTR without one."""
    return int(get_base_level(paragraph)) == 1 if paragraph else False


class _Run(NamedTuple):
    font: Path
    text: str
    rtl: bool


def _runs(line: str, rtl: bool | None = None) -> list[_Run]:
    """A line's font/direction runs in visual order; the paragraph direction is guessed if None."""
    base = _base_rtl(line) if rtl is None else rtl
    chain = font_chain()
    return [_Run(chain[index], text, level % 2 == 1) for index, text, level in _resolve(line, base)]


def _direction(rtl: bool) -> str | None:
    return ("rtl" if rtl else "ltr") if _raqm() else None


def _for_basic(text: str, rtl: bool) -> str:
    # Without raqm nothing reorders characters, so a right-to-left run is reversed by hand.
    return text[::-1] if rtl and not _raqm() else text


@dataclass(frozen=True)
class _Placed:
    index: int
    text: str
    rtl: bool
    x: float  # pen position from the line's ink start


@dataclass(frozen=True)
class _Line:
    runs: tuple[_Placed, ...]
    width: float  # from the leftmost to the rightmost ink or advance, whichever reaches further


class _Widths:
    """Advance widths at a reference size, shared by every size a render tries.

    Advances are unhinted, so they scale linearly with the size: one measurement per token
    serves the whole shrink loop. They are estimates (kerning across pieces is ignored); the
    lines actually drawn are measured exactly by _Measure.line.
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
            width = float(_font(font_chain()[0], self.REF, self.weight).getlength(ch))
            self._chars[ch] = width
        return width

    def _shaped(self, index: int, text: str) -> float:
        rtl = index in _RTL_FONTS
        font = _font(font_chain()[index], self.REF, self.weight)
        return float(font.getlength(_for_basic(text, rtl), direction=_direction(rtl)))

    def _run(self, index: int, text: str) -> float:
        if index not in _SLOW_FONTS:
            return self._shaped(index, text)
        width = 0.0
        for cluster in _clusters(text):
            found = self._clusters.get(cluster)
            if found is None:
                found = self._clusters[cluster] = self._shaped(index, cluster)
            width += found
        return width

    def of(self, text: str) -> float:
        width = self._texts.get(text)
        if width is None:
            if _simple_re().fullmatch(text):
                width = sum(map(self._char, text))
            else:
                width = sum(self._run(index, chunk) for index, chunk in _font_runs(text))
            if len(text) <= _LONG_WORD:
                self._texts[text] = width
        return width


class _Measure:
    """Widths at one font size: scaled estimates for breaking, exact layouts for drawing."""

    def __init__(self, size: int, widths: _Widths) -> None:
        self.size = size
        self.widths = widths
        self._scale = size / widths.REF
        self._lines: dict[tuple[str, bool], _Line] = {}
        self._runs: dict[tuple[int, str, bool], float] = {}
        self._overhangs: dict[tuple[int, str, bool, bool], float] = {}

    def font(self, index: int) -> ImageFont.FreeTypeFont:
        return _font(font_chain()[index], self.size, self.widths.weight)

    def run_width(self, index: int, text: str, rtl: bool) -> float:
        key = (index, text, rtl)
        width = self._runs.get(key)
        if width is None:
            font = self.font(index)
            width = float(font.getlength(_for_basic(text, rtl), direction=_direction(rtl)))
            self._runs[key] = width
        return width

    def estimate(self, text: str) -> float:
        return self.widths.of(text) * self._scale

    def token(self, token: str) -> tuple[float, float]:
        """(width with, width without) the token's trailing spaces; huge tokens are infinite."""
        if len(token) > _LONG_WORD:
            return math.inf, math.inf
        full = self.estimate(token)
        trimmed = token.rstrip(_SPACES)
        return full, self.estimate(trimmed) if trimmed != token else full

    def _overhang(self, index: int, text: str, rtl: bool, right: bool) -> float:
        """How far ink reaches past the advance box at the run's left or right end.

        Only the edge clusters are measured: a bounding box costs as much as drawing.
        """
        logical_start = right == rtl  # the visual right end of an RTL run is its logical start
        edge = text[:8] if logical_start else text[-8:]
        clusters = list(_clusters(edge))
        piece = "".join(clusters[:2] if logical_start else clusters[-2:])
        key = (index, piece, rtl, right)
        found = self._overhangs.get(key)
        if found is None:
            font = self.font(index)
            anchor = "rs" if right else "ls"
            box = font.getbbox(_for_basic(piece, rtl), anchor=anchor, direction=_direction(rtl))
            found = self._overhangs[key] = float(max(0, box[2]) if right else max(0, -box[0]))
        return found

    def line(self, text: str, rtl: bool) -> _Line:
        """The exact layout that will be drawn: bidi-ordered runs and their positions.

        Glyphs may overhang their advance (an 'f' or 'j', Devanagari matras), so the ends of
        a line are measured by ink too: alignment and fitting then keep all ink in the box.
        """
        key = (text, rtl)
        found = self._lines.get(key)
        if found is None:
            if not rtl and _simple_re().fullmatch(text):
                # One font, no right-to-left character: bidi cannot reorder anything.
                runs = [(0, text, False)]
            else:
                runs = [
                    (index, chunk, level % 2 == 1) for index, chunk, level in _resolve(text, rtl)
                ]
            placed: list[_Placed] = []
            pen = 0.0
            if text:
                pen = self._overhang(*runs[0], right=False)
                for index, chunk, run_rtl in runs:
                    placed.append(_Placed(index, chunk, run_rtl, pen))
                    pen += self.run_width(index, chunk, run_rtl)
                pen += self._overhang(*runs[-1], right=True)
            found = self._lines[key] = _Line(tuple(placed), pen)
        return found

    def _breakable(self, word: str, avail: float) -> Iterator[str]:
        for cluster in _clusters(word):
            if len(cluster) > 1 and self.estimate(cluster) > avail:
                # A cluster wider than the box (a long ZWJ chain) must not become one huge run.
                yield from cluster
            else:
                yield cluster

    def break_word(self, word: str, rtl: bool, avail: float) -> Iterator[str]:
        """Pieces of a word too wide for a line, cut between clusters; the last is the rest."""
        piece: list[str] = []
        width = 0.0
        for cluster in self._breakable(word, avail):
            cw = self.estimate(cluster)
            if piece and cluster not in _SPACES and width + cw > avail:
                carry: list[str] = []
                # Shaping (e.g. Arabic joining) is not additive: trust only the whole piece.
                while (
                    len(piece) > 1 and self.line("".join(piece).rstrip(_SPACES), rtl).width > avail
                ):
                    carry.insert(0, piece.pop())
                yield "".join(piece)
                piece = carry
                width = sum(self.estimate(c) for c in piece)
            piece.append(cluster)
            width += cw
        yield "".join(piece)


def _wrap(tokens: Iterator[str], rtl: bool, avail: float, m: _Measure) -> Iterator[str]:
    """Greedy line breaking of one paragraph: estimate by token widths, verify exact widths."""
    pending: deque[str] = deque()
    line: list[str] = []
    width = 0.0
    while True:
        token = pending.popleft() if pending else next(tokens, None)
        if token is not None:
            full, trimmed = m.token(token)
            if not line and trimmed > avail:
                pieces = m.break_word(token, rtl, avail)
                token = next(pieces)
                for piece in pieces:
                    yield token.rstrip(_SPACES)
                    token = piece
                full = m.estimate(token)
                trimmed = m.estimate(token.rstrip(_SPACES))
            if not line or width + trimmed <= avail:
                line.append(token)
                width += full
                continue
            pending.appendleft(token)
        if not line:
            return
        while len(line) > 1 and m.line("".join(line).rstrip(_SPACES), rtl).width > avail:
            pending.appendleft(line.pop())
        yield "".join(line).rstrip(_SPACES)
        line, width = [], 0.0


def _line_limit(size: int, avail_h: float, line_spacing: float) -> int:
    # n lines need (n - 1) * line_height + ascent + descent, so no more than this can fit.
    return int(max(avail_h, 0.0) // max(1.0, size * line_spacing)) + 1


def _min_lines(width: float, avail_w: float) -> int:
    """Fewest lines a paragraph this wide (spaces excluded) can wrap into, with 10% slack."""
    return max(1, math.ceil(0.9 * width / avail_w)) if avail_w > 0 else 1


def _packed_widths(
    paragraphs: list[tuple[str, bool]], widths: _Widths, size: int, avail_w: float, limit: int
) -> list[float] | None:
    """Each paragraph's width at the reference size, without the spaces lines may drop.

    This bounds from below the lines a paragraph needs at any size, so sizes that cannot fit
    are skipped unwrapped; None as soon as the text cannot fit even at `size`.
    """
    scale = size / widths.REF
    packed_widths: list[float] = []
    lines = 0
    for paragraph, _ in paragraphs:
        total = 0.0
        for token in _tokens(paragraph):
            word = token.rstrip(_SPACES)
            for i in range(0, len(word), _CHUNK):
                total += widths.of(word[i : i + _CHUNK])
                if lines + _min_lines(total * scale, avail_w) > limit:
                    return None
        packed_widths.append(total)
        lines += _min_lines(total * scale, avail_w)
    return packed_widths


@dataclass(frozen=True)
class _Block:
    size: int
    lines: list[tuple[str, bool]]  # (text, paragraph is rtl), no more than could ever fit
    more: bool  # text remains beyond `lines`
    ascent: int
    descent: int
    line_height: float
    fits_lines: int  # how many lines the height holds at this size
    too_wide: bool  # some line is wider than the box even after breaking words

    @property
    def fits(self) -> bool:
        return not self.more and not self.too_wide and len(self.lines) <= self.fits_lines


def _layout_block(
    paragraphs: list[tuple[str, bool]],
    cut: bool,
    m: _Measure,
    avail_w: float,
    avail_h: float,
    line_spacing: float,
) -> _Block:
    line_height = max(1.0, m.size * line_spacing)
    limit = _line_limit(m.size, avail_h, line_spacing)
    lines: list[tuple[str, bool]] = []
    for paragraph, rtl in paragraphs:
        if not paragraph.strip(_SPACES):
            lines.append(("", rtl))
        else:
            for text in _wrap(_tokens(paragraph), rtl, avail_w, m):
                lines.append((text, rtl))
                if len(lines) > limit:
                    break
        if len(lines) > limit:
            break
    more = cut or len(lines) > limit
    lines = lines[:limit]
    used = {0} | {run.index for text, rtl in lines for run in m.line(text, rtl).runs}
    metrics = [m.font(index).getmetrics() for index in sorted(used)]
    ascent = max(a for a, _ in metrics)
    descent = max(d for _, d in metrics)
    fits_lines = 0
    if avail_h >= ascent + descent:
        fits_lines = int((avail_h - ascent - descent) // line_height) + 1
    too_wide = any(m.line(text, rtl).width > avail_w for text, rtl in lines)
    return _Block(m.size, lines, more, ascent, descent, line_height, fits_lines, too_wide)


def _ellipsize(text: str, rtl: bool, avail: float, m: _Measure) -> str:
    clusters = list(_clusters(text.rstrip(_SPACES)))
    # Drop about as much as the ellipsis needs by estimate, then by exact measurement.
    excess = m.line(text, rtl).width + m.estimate(_ELLIPSIS) - avail
    while clusters and excess > 0:
        excess -= m.estimate(clusters.pop())
    while clusters:
        candidate = "".join(clusters).rstrip(_SPACES) + _ELLIPSIS
        if m.line(candidate, rtl).width <= avail:
            return candidate
        clusters.pop()
    return _ELLIPSIS


def _parse_color(value: str, name: str) -> tuple[int, int, int, int]:
    if not isinstance(value, str) or not _COLOR_RE.fullmatch(value):
        raise ValueError(f"{name}: expected '#rrggbb' or '#rrggbbaa', got {value!r}")
    hexes = value[1:] + ("ff" if len(value) == 7 else "")
    r, g, b, a = (int(hexes[i : i + 2], 16) for i in range(0, 8, 2))
    return r, g, b, a


@functools.cache
def _mark_pile_re(astral: bool) -> re.Pattern[str]:
    """Matches more than 30 combining marks in a row ("zalgo" text), to keep the first 30.

    UAX #15's stream-safe format stops there too; without a cap a pile of marks grows one glyph
    stack taller than any image Pillow will allocate. Astral marks slow every match down, so
    they are only looked for in text that has astral characters.
    """
    points = [*range(0x10000)]
    if astral:
        points += [*range(0x10000, 0x20000), *range(0xE0100, 0xE01F0)]
    marks = [cp for cp in points if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me")]
    return re.compile(f"[{_char_class(marks)}]{{31,}}")


def _cap_marks(line: str) -> str:
    pattern = _mark_pile_re(bool(line) and max(line) >= "\U00010000")
    return pattern.sub(lambda pile: pile.group()[:30], line)


def _paragraphs(text: str, max_chars: int, max_lines: int) -> tuple[list[tuple[str, bool]], bool]:
    cut = len(text) > max_chars
    # A lone surrogate cannot be encoded for FreeType or the bidi library: show U+FFFD.
    text = _SURROGATE_RE.sub("\ufffd", text[:max_chars])
    lines = text.replace("\t", " ").splitlines()
    if len(lines) > max_lines:
        lines, cut = lines[:max_lines], True
    paragraphs = [_cap_marks(_CONTROL_RE.sub("", line)) for line in lines]
    return [(p, _base_rtl(p)) for p in paragraphs], cut


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
    with _FREETYPE:
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

    widths = _Widths(weight)
    limit = _line_limit(smallest, avail_h, line_spacing)
    packed = _packed_widths(paragraphs, widths, smallest, avail_w, limit)
    # Sizes the lower bound already rules out are skipped without wrapping anything.
    current = size if packed is not None else smallest
    while True:
        needed = sum(_min_lines(w * current / widths.REF, avail_w) for w in packed or ())
        if current <= smallest or needed <= _line_limit(current, avail_h, line_spacing):
            m = _Measure(current, widths)
            block = _layout_block(paragraphs, cut, m, avail_w, avail_h, line_spacing)
            if block.fits or current <= smallest:
                break
        current = max(smallest, min(current - 1, int(current * 0.9)))

    lines = block.lines
    if not block.fits:
        visible = max(1, min(block.fits_lines, len(lines)))
        if block.more or len(lines) > visible:
            last, rtl = lines[visible - 1]
            lines = [*lines[: visible - 1], (_ellipsize(last, rtl, avail_w, m), rtl)]
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
            shown = _for_basic(run.text, run.rtl)
            direction = _direction(run.rtl)
            draw_fill.text((x, y), shown, fill=255, font=font, anchor="ls", direction=direction)
            if draw_stroke is not None:
                draw_stroke.text(
                    (x, y),
                    shown,
                    fill=255,
                    font=font,
                    anchor="ls",
                    direction=direction,
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
