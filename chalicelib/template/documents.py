"""Reading JSON and YAML documents defensively (pure): every document is JSON data.

Templates, scenes, mappings, API bodies, JSONL rows and record files all go through here, so
each of them refuses the same things with a field path (or a line) and a reason, instead of
crashing further on: bytes that are not text, duplicate keys, NaN and infinities, nesting
deeper than MAX_DEPTH, YAML alias "bombs" and recursive aliases, YAML tags that build other
objects (`!!python/…`, `!!binary`, `!!set`), keys that are not text, lone surrogates.
YAML dates and times become ISO 8601 text, as they would be written in JSON.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

try:  # libyaml: a hundred times faster, and it caps nesting itself
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without it
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DEPTH = 64  # a template nests ~8 levels, a record a few: deeper is a mistake or an attack
MAX_NODES = 200_000  # values a YAML document may expand to through its aliases
MAX_INT = 2**63  # beyond 64 bits, numbers stop round-tripping (JavaScript, DynamoDB)
MERGE_TAG = "tag:yaml.org,2002:merge"
_SURROGATE = re.compile("[\ud800-\udfff]")

# Undecodable bytes become lone surrogates (U+DC00 + byte), whatever the encoding, so that a
# reader can keep going and fail only the row that holds them (`surrogateescape` cannot mark
# bytes below 0x80, which a bad UTF-16 sequence may hold).
BAD_BYTES = "reel.mark-bad-bytes"


def _mark_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(BAD_BYTES, _mark_bad_bytes)


class DocumentError(ValueError):
    """A document (or one value in it) that cannot be read: where, why, and the line if known."""

    def __init__(
        self, message: str, field: str = "", line: int | None = None, reason: str | None = None
    ):
        self.message = message
        self.field = field
        self.line = line
        self.reason = message if reason is None else reason  # without where
        super().__init__(f"{field}: {message}" if field else message)


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """The encoding a byte-order mark announces (UTF-8 without one) and the mark's length."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(bom):
            return name, len(bom)
    return "utf-8", 0


def decode(raw: bytes) -> str:
    """Bytes as text: UTF-8, or UTF-16/32 when a byte-order mark says so; DocumentError (with
    the line) for bytes that are not valid in that encoding."""
    encoding, skip = sniff_encoding(raw[:4])
    try:
        return raw[skip:].decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[skip : skip + exc.start].count(b"\n") + 1
        name = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        raise DocumentError(f"not valid {name} at line {line}", line=line) from None


def join(path: str, key: object) -> str:
    """`path.key`, or `path[index]` for an int; long keys are shortened."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    text = str(key)
    if len(text) > 60:
        text = text[:57] + "…"
    return f"{path}.{text}" if path else text


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:40])
    return type(value).__name__


def as_json_data(data: Any, *, max_depth: int = MAX_DEPTH, encoding: str = "Unicode") -> Any:
    """Check that `data` is JSON data (dicts with text keys, lists, text, finite numbers,
    booleans, null) at most `max_depth` levels deep; dates and times become ISO text.

    Returns the data (containers are fixed in place); DocumentError names the first bad path.
    Iterative, so a deep document cannot exhaust the stack.
    """
    if isinstance(data, dt.date):
        return data.isoformat()
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        problem = _problem(value, depth, max_depth, encoding)
        if isinstance(value, _Duplicate):
            path = join(path, value.key)
        if problem is None and isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                if isinstance(key, str) and _SURROGATE.search(key):
                    problem = f"a key is not valid {encoding} text"
                elif isinstance(value, dict) and not isinstance(key, str):
                    problem = f"a key is text, not {_describe(key)} ({key!r:.40}); quote it"
                elif isinstance(child, dt.date):
                    value[key] = child.isoformat()
                else:
                    stack.append((child, join(path, key), depth + 1))
                if problem is not None:
                    break
        if problem is not None:
            raise DocumentError(problem if path else f"{problem} (at the top level)", path)
    return data


def _problem(value: Any, depth: int, max_depth: int, encoding: str) -> str | None:
    """What is wrong with one value of a document (not looking inside it), if anything."""
    if isinstance(value, _Duplicate):
        return f"duplicate key {value.key[:60]!r}"
    if isinstance(value, _NonFinite):
        return f"{value.name} is not a JSON number"
    if isinstance(value, str):
        return f"is not valid {encoding} text" if _SURROGATE.search(value) else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return "is too large a number (over 64 bits)" if abs(value) >= MAX_INT else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, dict | list):
        return f"nested more than {max_depth} levels deep" if depth >= max_depth else None
    return f"{type(value).__name__} values are not JSON data (no YAML tags like !!binary)"


# ── JSON ───────────────────────────────────────────────────────────────────────────────────


class _Duplicate(dict[str, Any]):
    """An object that had a key twice (reported with its path by `as_json_data`)."""

    key: str = ""


class _NonFinite:
    """NaN, Infinity or -Infinity: accepted by Python's json module, not by JSON."""

    def __init__(self, name: str):
        self.name = name


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            dup = _Duplicate(pairs)
            dup.key = key
            return dup
        out[key] = value
    return out


def load_json(text: str, *, max_depth: int = MAX_DEPTH, encoding: str = "Unicode") -> Any:
    """Strict JSON text as JSON data; DocumentError with the line or the field path."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno}"
        raise DocumentError(
            f"invalid JSON {where}: {exc.msg}", line=exc.lineno, reason=exc.msg
        ) from None
    except RecursionError:
        raise DocumentError(f"invalid JSON: nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise DocumentError(f"invalid JSON: {exc}") from None
    return as_json_data(data, max_depth=max_depth, encoding=encoding)


# ── YAML ───────────────────────────────────────────────────────────────────────────────────


class _Loader(_BaseLoader):
    """The safe loader, with every failure of a value's constructor as a YAMLError at its line
    (PyYAML lets ValueError, KeyError… escape for `2026-02-30`, `!!bool maybe`, `!!int x`)."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            shown = node.value[:40] if isinstance(node, ScalarNode) else type(node).__name__
            raise ConstructorError(
                None, None, f"cannot read {shown!r} as {node.tag}: {exc}", node.start_mark
            ) from None


def _children(node: Node) -> list[tuple[object, Node]]:
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        out: list[tuple[object, Node]] = []
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else "?"
            out += [(name, key), (name, value)]
        return out
    return []


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _duplicate_key(node: MappingNode) -> ScalarNode | None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == MERGE_TAG:
            continue
        ident = (key.tag, key.value)
        if ident in seen:
            return key
        seen.add(ident)
    return None


def _check_nodes(root: Node, max_depth: int) -> None:
    """Before anything is built: duplicate keys, depth, recursive aliases, and how many values
    the aliases expand to (a "billion laughs" is a few lines of YAML)."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Node, str, int, bool]] = [(root, "", 0, False)]
    while stack:
        node, path, depth, done = stack.pop()
        nid = id(node)
        kids = _children(node)
        if done:
            in_progress.discard(nid)
            size[nid] = 1 + sum(size[id(c)] for _, c in kids)
            height[nid] = 1 + max((height[id(c)] for _, c in kids), default=0)
            if size[nid] > MAX_NODES:
                raise DocumentError(
                    f"expands to over {MAX_NODES:,} values (YAML aliases?)", path, _line(node)
                )
            if depth + height[nid] > max_depth + 1:
                raise DocumentError(f"nested more than {max_depth} levels deep", path, _line(node))
            continue
        if nid in size:
            continue
        if nid in in_progress:
            raise DocumentError("a YAML alias refers to itself", path, _line(node))
        if isinstance(node, MappingNode) and (dup := _duplicate_key(node)) is not None:
            where = join(path, dup.value)
            raise DocumentError(f"duplicate key {dup.value[:60]!r}", where, _line(dup))
        in_progress.add(nid)
        stack.append((node, path, depth, True))
        for key, child in kids:
            if id(child) in in_progress:
                raise DocumentError("a YAML alias refers to itself", path, _line(child))
            if id(child) not in size:
                stack.append((child, join(path, key), depth + 1, False))


def _yaml_error(exc: yaml.YAMLError, text: str) -> DocumentError:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        line: int | None = mark.line + 1
    elif isinstance(exc, ReaderError):  # a control character: PyYAML gives its position
        line = text.count("\n", 0, exc.position) + 1
    else:
        line = None
    where = "" if line is None else f" at line {line}"
    return DocumentError(f"invalid YAML{where}: {exc}", line=line)


def load_yaml(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """YAML text (one document) as JSON data; DocumentError with the line or the field path."""
    if bad := _SURROGATE.search(text):  # libyaml reads UTF-8, which cannot carry them
        line = text.count("\n", 0, bad.start()) + 1
        raise DocumentError(f"invalid YAML at line {line}: not valid Unicode text", line=line)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, max_depth)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    except RecursionError:
        raise DocumentError(f"invalid YAML: nested more than {max_depth} levels deep") from None
    finally:
        loader.dispose()
    return as_json_data(data, max_depth=max_depth)
