"""Hypothesis strategies for hostile input: the values, documents and files a careless or
malicious client sends. Shared by the bad-input properties (tests/reliability/test_input_*.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

MB = 1024 * 1024

# Characters that break naive code: NUL and other controls, a lone surrogate, right-to-left
# and zero-width marks, a BOM, line and paragraph separators, line endings of every kind.
NASTY_CHARS = "\x00\x07\x1b\x7f\ud800\udfff\u202e\u200b\u200d\ufeff\u2028\u2029\r\n\r\t\u0301"
NASTY_STRINGS = [
    "",
    " ",
    "\r\n",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e400",
    "-0",
    "0x10",
    "1_",
    "٣",  # an Arabic-Indic digit
    "１２",  # full-width digits
    "2026-02-30",
    "9999999-01-01",
    "2026-01-01T25:00",
    "#fff",
    "#GGGGGG",
    "yes",
    "Pro",
    "{{ 7 * 7 }}",
    "{% for x in y %}",
    "../../etc/passwd",
    "/etc/passwd",
    "assets/red.png",
    "a\x00b",
    "\u202eevil",
    "zero\u200bwidth",
    "'; DROP TABLE renders; --",
    "%s%s%n",
    "\ud83d",  # half of a surrogate pair
]


class _DeepList(list[Any]):
    def __repr__(self) -> str:  # the nested value's own repr would exhaust the stack
        return f"deep(list, {self.levels})"

    levels = 0


class _DeepDict(dict[str, Any]):
    def __repr__(self) -> str:
        return f"deep(dict, {self.levels})"

    levels = 0


def deep(kind: type, levels: int) -> Any:
    """A list or dict nested `levels` deep, built without recursion (it prints short)."""
    value: Any = [] if kind is list else {}
    for _ in range(levels - 1):
        value = [value] if kind is list else {"a": value}
    top = _DeepList([value]) if kind is list else _DeepDict(a=value)
    top.levels = levels
    return top


texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),  # surrogates included
    st.text(st.sampled_from(NASTY_CHARS), max_size=12),
    st.sampled_from(NASTY_STRINGS),
)
huge_texts = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "€", "\x00", "\u200b"]), st.just(MB)
)
numbers = st.one_of(
    st.floats(),  # NaN, ±inf, -0.0, subnormals
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**53 + 1]),
    st.builds(pow, st.just(10), st.just(5000)),  # too long for str() (4,300 digits)
)
deeps = st.builds(deep, st.sampled_from([list, dict]), st.sampled_from([65, 1000, 10_000]))
json_scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
# Values no JSON document carries, for Python callers: wrong types through and through.
odd_objects = st.sampled_from(
    [b"\xff\xfe", bytearray(b"x"), {1, 2}, (1, 2), dt.date(2026, 1, 1), object(), 1j, Ellipsis]
)
hostile_values = st.one_of(json_values, json_values, huge_texts, deeps, odd_objects)


# ── documents: mutations of a valid one ────────────────────────────────────────────────────


def paths(doc: Any, prefix: tuple[Any, ...] = (), limit: int = 8) -> list[tuple[Any, ...]]:
    """Every path into a JSON-shaped document (the root included), `limit` levels down."""
    out = [prefix]
    if len(prefix) < limit and isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key), limit)
    elif len(prefix) < limit and isinstance(doc, list):
        for index, value in enumerate(doc):
            out += paths(value, (*prefix, index), limit)
    return out


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


def mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    """A copy of `doc` (copied along `path` only: values may be nested past the recursion
    limit) with the value at `path` replaced, deleted, wrapped or given an extra key."""
    if not path:
        return value if how == "replace" else doc
    root = parent = _shallow(doc)
    for part in path[:-1]:
        parent[part] = _shallow(parent[part])
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "extra" and isinstance(parent[last], dict):
        parent[last] = {**parent[last], "unexpected_key": value}
    elif how == "wrap":
        parent[last] = deep(list, 70) if value is None else [parent[last]]
    else:
        parent[last] = value
    return root


@st.composite
def mutations(draw: st.DrawFn, base: Any, values: st.SearchStrategy[Any], least: int = 1) -> Any:
    """`base` with `least` to three random mutations at random paths."""
    doc = base
    for _ in range(draw(st.integers(least, 3))):
        path = draw(st.sampled_from(paths(doc)))
        how = draw(st.sampled_from(["replace", "replace", "delete", "extra", "wrap"]))
        doc = mutate(doc, path, how, draw(values))
    return doc


# YAML that PyYAML's safe loader parses into something nasty (or chokes on).
LAUGHS = zip("abcdefgh", "bcdefghi", strict=True)
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in LAUGHS]
)
YAML_SPECIALS = [
    BILLION_LAUGHS,
    "x: &x [*x]",
    "x: !!python/object/apply:os.system ['echo pwned']",
    "x: !!python/name:os.system",
    "x: !!binary aGVsbG8=",
    "x: !!set {a, b}",
    "x: !!timestamp 2026-99-99",
    "x: !!int nope",
    "x: !!bool maybe",
    "x: 2026-02-30",
    "x: 2026-01-01",
    "x: 2026-01-01 10:00:00+02:00",
    "x: .nan",
    "x: -.inf",
    "on: yes",
    "? [a, b]\n: c",
    "x: " + "[" * 200 + "]" * 200,
    "x: {a: 1, a: 2}",
    "%YAML 9.9\n---\nx: 1",
    "--- a\n--- b",
    "x: '\\ud800'",
    'x: "\\ud800"',
    "x: \x00",
    "x: *undefined",
    "<<: 5",
]
