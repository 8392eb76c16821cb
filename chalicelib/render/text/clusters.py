"""Grapheme clusters (UAX #29, by the `regex` module's \\X) and the characters that join one."""

from __future__ import annotations

from collections.abc import Iterator

import regex

_CLUSTER = regex.compile(r"\X")
# A character that never starts a cluster: marks, joiners, selectors, emoji modifiers, tags.
_STICKS = regex.compile(r"[\p{M}\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}]")
# More than 30 combining marks in a row ("zalgo" text). UAX #15's stream-safe format stops
# there too; without a cap a pile of marks grows one glyph stack taller than any image Pillow
# will allocate.
_MARK_PILE = regex.compile(r"\p{M}{31,}")


def clusters(text: str) -> Iterator[str]:
    """The extended grapheme clusters of text: what a reader sees as one character."""
    for match in _CLUSTER.finditer(text):
        yield match.group()


def sticks(ch: str) -> bool:
    """True when ch belongs to the preceding character's cluster (mark, joiner, selector...)."""
    return _STICKS.match(ch) is not None


def cap_marks(line: str) -> str:
    """The line with each pile of combining marks cut to its first 30."""
    capped: str = _MARK_PILE.sub(lambda pile: pile.group()[:30], line)
    return capped
