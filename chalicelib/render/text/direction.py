"""Bidirectional text (UAX #9) by python-bidi: embedding levels of a line, runs in visual order."""

from __future__ import annotations

import functools
import re
import unicodedata

import regex
from bidi import get_base_level, get_display

# Explicit embeddings, overrides and isolates: they steer the levels and draw nothing.
CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# L1: these return to the paragraph level at the end of a line.
_TRAILING = frozenset(
    {"WS", "S", "B", "BN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
)
# Without one of these a left-to-right line has only even levels: nothing is reordered.
_MAY_REORDER = regex.compile(
    r"[\p{Bidi_Class=R}\p{Bidi_Class=AL}\p{Bidi_Class=AN}\u202b\u202e\u2067\u2068]"
)
# python-bidi computes levels with the unicode-bidi crate but only hands them back in the
# report debug=True returns (a Rust debug dump, one level per UTF-8 byte of the text).
_LEVELS_BLOCK = re.compile(r"\n    levels: \[\n(.*?)\n    \],\n", re.S)
_LEVEL = re.compile(r"Level\(\s*(\d+),?\s*\)")


def base_rtl(paragraph: str) -> bool:
    """The paragraph direction, from its first strong character (P2, P3); LTR without one."""
    return int(get_base_level(paragraph)) == 1 if paragraph else False


@functools.lru_cache(maxsize=4096)
def _levels_by_byte(line: str, rtl: bool) -> tuple[int, ...]:
    report = str(get_display(line, base_dir="R" if rtl else "L", debug=True))
    block = _LEVELS_BLOCK.search(report)
    found = tuple(int(level) for level in _LEVEL.findall(block.group(1))) if block else ()
    if len(found) != len(line.encode("utf-8")):
        raise RuntimeError(
            "python-bidi: its debug report no longer lists one level per UTF-8 byte; "
            "check the pinned version against chalicelib/render/text/direction.py"
        )
    return found


def levels(line: str, rtl: bool) -> list[int]:
    """The embedding level of each character of one line: UAX #9 through rule L1.

    The line is taken as a paragraph of its own whose direction is `rtl`: an embedding or an
    isolate that a line break cuts in two is resolved on each line separately.
    """
    base = 1 if rtl else 0
    if not rtl and not _MAY_REORDER.search(line):
        resolved = [0] * len(line)
    else:
        by_byte = _levels_by_byte(line, rtl)
        resolved = []
        pos = 0
        for ch in line:
            resolved.append(by_byte[pos])
            pos += len(ch.encode("utf-8"))
    for i in range(len(line) - 1, -1, -1):  # L1, at the end of the line
        if unicodedata.bidirectional(line[i]) not in _TRAILING:
            break
        resolved[i] = base
    return resolved


def visual_order(run_levels: list[int]) -> list[int]:
    """L2: indices in display order, reversing each run at or above every odd level."""
    order = list(range(len(run_levels)))
    lowest_odd = min((lvl for lvl in run_levels if lvl % 2), default=None)
    if lowest_odd is None:
        return order
    for level in range(max(run_levels), lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if run_levels[order[i]] < level:
                i += 1
                continue
            j = i
            while j < len(order) and run_levels[order[j]] >= level:
                j += 1
            order[i:j] = order[i:j][::-1]
            i = j
    return order
