"""Where a problem is in a document: a field path (`scenes[2].layers[0].src`) or a parse error's
`line N` turned into a line and a column of the text the editor shows."""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")
_LINE = re.compile(r"\bline (\d+)")


def path_tokens(path: str) -> list[int | str]:
    """'scenes[2].layers[0].src' → ['scenes', 2, 'layers', 0, 'src']."""
    return [int(i) if i else key for i, key in _TOKEN.findall(path)]


def _compose(text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def locate(text: str, path: str, message: str = "") -> tuple[int, int]:
    """(line, column), both from 1, of the deepest node of `path` the text has (a field that
    is missing points at its parent); a message naming `line N` wins (a parse error)."""
    if found := _LINE.search(message):
        return min(int(found.group(1)), text.count("\n") + 1), 1
    node = _compose(text)
    if node is None:
        return 1, 1
    mark = node.start_mark
    for step in path_tokens(path):
        if isinstance(node, MappingNode):
            hit = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, ScalarNode) and k.value == str(step)
                ),
                None,
            )
            if hit is None:
                break
            mark, node = hit[0].start_mark, hit[1]
        elif isinstance(node, SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                break
            node = node.value[step]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1
