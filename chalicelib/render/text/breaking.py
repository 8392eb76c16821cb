"""Line breaking: unbreakable pieces, greedy wrapping, the block that fits, the ellipsis."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.render.text.clusters import clusters, sticks
from chalicelib.render.text.shaping import LONG_WORD, Measure, Widths

ELLIPSIS = "…"
# Breakable spaces: every Zs except the no-break ones (U+00A0, U+2007, U+202F), and ZWSP.
SPACES = " \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u200b\u205f\u3000"
_WORD_RE = re.compile(f"[^{SPACES}]*[{SPACES}]*")
_NO_BREAK_BEFORE = frozenset("ー々ゝゞヽヾぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
_CHUNK = 4096


def _is_ideograph(ch: str) -> bool:
    wide = unicodedata.east_asian_width(ch) in ("W", "F")
    return wide and unicodedata.category(ch) in ("Lo", "Lm")


def _cjk_break(prev: str, cur: str) -> bool:
    if sticks(cur) or prev == "\u200d" or cur in SPACES:
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


def _breakable(word: str, avail: float, m: Measure) -> Iterator[str]:
    for cluster in clusters(word):
        if len(cluster) > 1 and m.estimate(cluster) > avail:
            # A cluster wider than the box (a long ZWJ chain) must not become one huge run.
            yield from cluster
        else:
            yield cluster


def break_word(word: str, rtl: bool, avail: float, m: Measure) -> Iterator[str]:
    """Pieces of a word too wide for a line, cut between clusters; the last is the rest."""
    piece: list[str] = []
    width = 0.0
    for cluster in _breakable(word, avail, m):
        cw = m.estimate(cluster)
        if piece and cluster not in SPACES and width + cw > avail:
            carry: list[str] = []
            # Shaping (e.g. Arabic joining) is not additive: trust only the whole piece.
            while len(piece) > 1 and m.line("".join(piece).rstrip(SPACES), rtl).width > avail:
                carry.insert(0, piece.pop())
            yield "".join(piece)
            piece = carry
            width = sum(m.estimate(c) for c in piece)
        piece.append(cluster)
        width += cw
    yield "".join(piece)


def _token_widths(token: str, m: Measure) -> tuple[float, float]:
    """(width with, width without) the token's trailing spaces; huge tokens are infinite."""
    if len(token) > LONG_WORD:
        return math.inf, math.inf
    full = m.estimate(token)
    trimmed = token.rstrip(SPACES)
    return full, m.estimate(trimmed) if trimmed != token else full


def _wrap(tokens: Iterator[str], rtl: bool, avail: float, m: Measure) -> Iterator[str]:
    """Greedy line breaking of one paragraph: estimate by token widths, verify exact widths."""
    pending: deque[str] = deque()
    line: list[str] = []
    width = 0.0
    while True:
        token = pending.popleft() if pending else next(tokens, None)
        if token is not None:
            full, trimmed = _token_widths(token, m)
            if not line and trimmed > avail:
                pieces = break_word(token, rtl, avail, m)
                token = next(pieces)
                for piece in pieces:
                    yield token.rstrip(SPACES)
                    token = piece
                full = m.estimate(token)
                trimmed = m.estimate(token.rstrip(SPACES))
            if not line or width + trimmed <= avail:
                line.append(token)
                width += full
                continue
            pending.appendleft(token)
        if not line:
            return
        while len(line) > 1 and m.line("".join(line).rstrip(SPACES), rtl).width > avail:
            pending.appendleft(line.pop())
        yield "".join(line).rstrip(SPACES)
        line, width = [], 0.0


def line_limit(size: int, avail_h: float, line_spacing: float) -> int:
    # n lines need (n - 1) * line_height + ascent + descent, so no more than this can fit.
    return int(max(avail_h, 0.0) // max(1.0, size * line_spacing)) + 1


def min_lines(width: float, avail_w: float) -> int:
    """Fewest lines a paragraph this wide (spaces excluded) can wrap into, with 10% slack."""
    return max(1, math.ceil(0.9 * width / avail_w)) if avail_w > 0 else 1


def packed_widths(
    paragraphs: list[tuple[str, bool]], widths: Widths, size: int, avail_w: float, limit: int
) -> list[float] | None:
    """Each paragraph's width at the reference size, without the spaces lines may drop.

    This bounds from below the lines a paragraph needs at any size, so sizes that cannot fit
    are skipped unwrapped; None as soon as the text cannot fit even at `size`.
    """
    scale = size / widths.REF
    totals: list[float] = []
    lines = 0
    for paragraph, _ in paragraphs:
        total = 0.0
        for token in _tokens(paragraph):
            word = token.rstrip(SPACES)
            for i in range(0, len(word), _CHUNK):
                total += widths.of(word[i : i + _CHUNK])
                if lines + min_lines(total * scale, avail_w) > limit:
                    return None
        totals.append(total)
        lines += min_lines(total * scale, avail_w)
    return totals


@dataclass(frozen=True)
class Block:
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


def layout_block(
    paragraphs: list[tuple[str, bool]],
    cut: bool,
    m: Measure,
    avail_w: float,
    avail_h: float,
    line_spacing: float,
) -> Block:
    line_height = max(1.0, m.size * line_spacing)
    limit = line_limit(m.size, avail_h, line_spacing)
    lines: list[tuple[str, bool]] = []
    for paragraph, rtl in paragraphs:
        if not paragraph.strip(SPACES):
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
    return Block(m.size, lines, more, ascent, descent, line_height, fits_lines, too_wide)


def ellipsize(text: str, rtl: bool, avail: float, m: Measure) -> str:
    """The line cut between grapheme clusters so that it ends in an ellipsis inside `avail`."""
    kept = list(clusters(text.rstrip(SPACES)))
    # Drop about as much as the ellipsis needs by estimate, then by exact measurement.
    excess = m.line(text, rtl).width + m.estimate(ELLIPSIS) - avail
    while kept and excess > 0:
        excess -= m.estimate(kept.pop())
    while kept:
        candidate = "".join(kept).rstrip(SPACES) + ELLIPSIS
        if m.line(candidate, rtl).width <= avail:
            return candidate
        kept.pop()
    return ELLIPSIS
