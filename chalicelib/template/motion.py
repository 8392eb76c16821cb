"""Checking the motion layers' files (pure, no drawing): SVG documents parsed with defusedxml
and held to a safe subset, Lottie (Bodymovin) JSON checked against caps.

An SVG or a Lottie is a file of the campaign, never data; it is an attack surface all the
same (a template may come from an agency): no DTDs or entities, no scripts or event handlers,
no reference to anything but an element of the same document (`#id`), bounded sizes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # serialising only: parsing is defusedxml's
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from chalicelib.errors import TemplateError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

MAX_SVG_BYTES = 1_000_000
MAX_SVG_ELEMENTS = 5_000
# Where `{{ }}` may appear: the text of these elements, and fill colours.
TEXT_TAGS = frozenset({"text", "tspan", "textPath", "title", "desc"})
EXPR_ATTRS = frozenset({"fill"})
FORBIDDEN_TAGS = frozenset({"script", "foreignObject", "iframe", "embed", "object", "handler"})
_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.I)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class SvgDoc:
    """A checked SVG: its text, and the `{{ }}` snippets it holds (what binding fills)."""

    text: str
    snippets: tuple[str, ...] = field(default_factory=tuple)
    fills: frozenset[str] = frozenset()  # the snippets that are fill colours


def _fail(path: Path, where: str, reason: str, layer_field: str) -> TemplateError:
    return TemplateError(f"{path.name}: {where}: {reason}", field=layer_field)


def load_svg(path: Path, layer_field: str = "") -> SvgDoc:
    """Read and check an SVG file; TemplateError names the file and the XML path."""
    try:
        st = path.stat()
    except OSError as exc:
        raise TemplateError(f"{path.name}: cannot read it: {exc.strerror}", layer_field) from None
    return _load_svg(str(path), st.st_size, st.st_mtime_ns, layer_field)


@lru_cache(maxsize=64)
def _load_svg(name: str, size: int, mtime_ns: int, layer_field: str) -> SvgDoc:
    path = Path(name)
    if size > MAX_SVG_BYTES:
        raise _fail(path, "/", f"{size:,} bytes; the limit is {MAX_SVG_BYTES:,}", layer_field)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, "/", f"not UTF-8 ({exc.reason})", layer_field) from None
    except OSError as exc:
        raise TemplateError(f"{path.name}: cannot read it: {exc.strerror}", layer_field) from None
    root = parse_svg(text, path, layer_field)
    snippets: list[str] = []
    fills: set[str] = set()
    count = 0
    stack: list[tuple[ET.Element, str]] = [(root, "/" + _local(root.tag))]
    while stack:
        el, where = stack.pop()
        count += 1
        if count > MAX_SVG_ELEMENTS:
            raise _fail(path, where, f"over {MAX_SVG_ELEMENTS:,} elements", layer_field)
        tag = _local(el.tag)
        if tag in FORBIDDEN_TAGS:
            raise _fail(path, where, f"<{tag}> is not allowed", layer_field)
        if tag == "style" and _refs_outside(el.text or ""):
            raise _fail(path, where, "a style may only refer to url(#id)", layer_field)
        for key, value in el.attrib.items():
            attr = _local(key)
            at = f"{where}/@{attr}"
            if attr.lower().startswith("on"):
                raise _fail(path, at, "event handlers are not allowed", layer_field)
            if attr == "href" and not value.strip().startswith("#"):
                raise _fail(path, at, "only references to #ids are allowed", layer_field)
            if _refs_outside(value):
                raise _fail(path, at, "only url(#id) references are allowed", layer_field)
            if "{{" in value:
                if attr not in EXPR_ATTRS:
                    raise _fail(path, at, "{{ }} is allowed in text and fill only", layer_field)
                snippets.append(value)
                fills.add(value)
        for part, content in (("text()", el.text), ("tail()", el.tail)):
            if content and "{{" in content:
                owner = tag if part == "text()" else None
                if owner not in TEXT_TAGS and not (part == "tail()" and _in_text(where)):
                    raise _fail(
                        path,
                        f"{where}/{part}",
                        "{{ }} is allowed in text and fill only",
                        layer_field,
                    )
                snippets.append(content)
        seen: dict[str, int] = {}
        children = []
        for child in el:
            ctag = _local(child.tag) if isinstance(child.tag, str) else "?"
            seen[ctag] = seen.get(ctag, 0) + 1
            children.append((child, f"{where}/{ctag}[{seen[ctag]}]"))
        stack.extend(reversed(children))
    return SvgDoc(text, tuple(dict.fromkeys(snippets)), frozenset(fills))


def _in_text(where: str) -> bool:
    # A tail belongs to the parent's content: `<text>a <tspan>b</tspan> {{ c }}</text>`.
    parent = where.rsplit("/", 2)[-2] if where.count("/") >= 2 else ""
    return parent.split("[")[0] in TEXT_TAGS


def _refs_outside(value: str) -> bool:
    if "@import" in value.lower():
        return True
    return any(not ref.startswith("#") for ref in _URL.findall(value))


def parse_svg(text: str, path: Path, layer_field: str = "") -> ET.Element:
    """The document's root, parsed by defusedxml: no DTD, entities or external references."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _fail(path, "/", f"refused: {type(exc).__name__}", layer_field) from None
    except ET.ParseError as exc:
        line, col = exc.position
        raise _fail(
            path, f"line {line}, column {col}", "not well-formed XML", layer_field
        ) from None
    if not isinstance(root, ET.Element) or _local(root.tag) != "svg":
        raise _fail(path, "/", "the root element is not <svg>", layer_field)
    return root


def fill_svg(doc: SvgDoc, resolved: dict[str, str], path: Path) -> str:
    """The SVG's text with each `{{ }}` snippet replaced by its value (escaped as XML)."""
    if not doc.snippets:
        return doc.text
    root = parse_svg(doc.text, path)
    for el in root.iter():
        if el.text and el.text in resolved:
            el.text = resolved[el.text]
        if el.tail and el.tail in resolved:
            el.tail = resolved[el.tail]
        for key, value in list(el.attrib.items()):
            if value in resolved:
                el.set(key, resolved[value])
    return ET.tostring(root, encoding="unicode")


# ── Lottie ─────────────────────────────────────────────────────────────────────────────────

MAX_LOTTIE_BYTES = 5_000_000
MAX_LOTTIE_FRAMES = 1_800  # 60 s at 30 fps
MAX_LOTTIE_SIDE = 4_096
MAX_LOTTIE_LAYERS = 500


@dataclass(frozen=True)
class LottieDoc:
    """A checked Lottie: its JSON data, markers, text layer names, image ids, and what in it
    the engine does not play (warnings, with their JSON paths)."""

    data: dict[str, Any]
    frames: tuple[float, float]  # in point, out point
    fps: float
    size: tuple[int, int]
    markers: dict[str, tuple[float, float]]  # name → (start, end) frames
    text_layers: dict[str, str]  # name → JSON path
    image_ids: frozenset[str]
    external_images: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def load_lottie(path: Path, layer_field: str = "") -> LottieDoc:
    """Read and check a Lottie JSON; TemplateError names the file and the JSON path."""
    try:
        st = path.stat()
    except OSError as exc:
        raise TemplateError(f"{path.name}: cannot read it: {exc.strerror}", layer_field) from None
    return _load_lottie(str(path), st.st_size, st.st_mtime_ns, layer_field)


@lru_cache(maxsize=32)
def _load_lottie(name: str, size: int, mtime_ns: int, layer_field: str) -> LottieDoc:
    path = Path(name)

    def fail(where: str, reason: str) -> TemplateError:
        return _fail(path, where, reason, layer_field)

    if size > MAX_LOTTIE_BYTES:
        raise fail("$", f"{size:,} bytes; the limit is {MAX_LOTTIE_BYTES:,}")
    if path.suffix.lower() == ".lottie":
        raise fail("$", "dotLottie archives are not read yet: export the animation as .json")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail("$", f"not JSON ({str(exc)[:120]})") from None
    except RecursionError:
        raise fail("$", "nested too deeply") from None
    if not isinstance(data, dict):
        raise fail("$", "a Lottie is a JSON object")
    for key in ("ip", "op", "fr", "w", "h", "layers"):
        if key not in data:
            raise fail(f"$.{key}", "missing (is this a Bodymovin export?)")
    nums = {}
    for key in ("ip", "op", "fr", "w", "h"):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"$.{key}", f"expected a number, got {type(value).__name__}")
        nums[key] = float(value)
    if not 0 < nums["fr"] <= 120:
        raise fail("$.fr", f"frame rate {nums['fr']:g} is outside 1…120")
    if nums["op"] <= nums["ip"]:
        raise fail("$.op", "the animation ends before it starts")
    if nums["op"] - nums["ip"] > MAX_LOTTIE_FRAMES:
        raise fail("$.op", f"{nums['op'] - nums['ip']:g} frames; the limit is {MAX_LOTTIE_FRAMES}")
    for key in ("w", "h"):
        if not 1 <= nums[key] <= MAX_LOTTIE_SIDE:
            raise fail(f"$.{key}", f"{nums[key]:g} px; the canvas is 1…{MAX_LOTTIE_SIDE} px")
    warnings: list[str] = []
    text_layers: dict[str, str] = {}
    count = 0

    def walk_layers(layers: Any, where: str) -> None:
        nonlocal count
        if not isinstance(layers, list):
            raise fail(where, "expected a list of layers")
        for i, layer in enumerate(layers):
            lp = f"{where}[{i}]"
            count += 1
            if count > MAX_LOTTIE_LAYERS:
                raise fail(lp, f"over {MAX_LOTTIE_LAYERS} layers")
            if not isinstance(layer, dict):
                raise fail(lp, "a layer is a JSON object")
            ty = layer.get("ty")
            if isinstance(ty, bool) or not isinstance(ty, int):
                raise fail(f"{lp}.ty", "missing or not a layer type number")
            if ty == 5:
                text_layers[str(layer.get("nm", ""))] = lp
            if "ef" in layer:
                warnings.append(f"{lp}.ef: layer effects are not drawn by rlottie")
            if layer.get("tt"):
                pass  # track mattes are supported

    walk_layers(data["layers"], "$.layers")
    image_ids: set[str] = set()
    external: dict[str, str] = {}  # image id → JSON path: a file beside the JSON, never read
    assets = data.get("assets", [])
    if not isinstance(assets, list):
        raise fail("$.assets", "expected a list")
    for i, asset in enumerate(assets):
        ap = f"$.assets[{i}]"
        if not isinstance(asset, dict):
            raise fail(ap, "an asset is a JSON object")
        if "layers" in asset:
            walk_layers(asset["layers"], f"{ap}.layers")
        elif "p" in asset:
            image_id = str(asset.get("id", ""))
            image_ids.add(image_id)
            if not str(asset.get("p", "")).startswith("data:"):
                external[image_id] = f"{ap}.p"
    _find_expressions(data, "$", warnings)
    markers: dict[str, tuple[float, float]] = {}
    for i, m in enumerate(data.get("markers", []) or []):
        if not isinstance(m, dict) or not isinstance(m.get("tm"), int | float):
            raise fail(f"$.markers[{i}]", "a marker has a name (cm) and a time (tm)")
        start = float(m["tm"])
        markers[str(m.get("cm", ""))] = (start, start + float(m.get("dr", 0) or 0))
    return LottieDoc(
        data=data,
        frames=(nums["ip"], nums["op"]),
        fps=nums["fr"],
        size=(int(nums["w"]), int(nums["h"])),
        markers=markers,
        text_layers=text_layers,
        image_ids=frozenset(image_ids),
        external_images=external,
        warnings=tuple(dict.fromkeys(warnings))[:20],
    )


def _find_expressions(node: Any, where: str, warnings: list[str], depth: int = 0) -> None:
    """Properties animated by After Effects expressions (`x`): rlottie plays their keyframes
    or static values only."""
    if depth > 60 or len(warnings) >= 20:
        return
    if isinstance(node, dict):
        if isinstance(node.get("x"), str) and ("k" in node or "a" in node):
            warnings.append(f"{where}.x: an expression (rlottie ignores it)")
        for key, value in node.items():
            if isinstance(value, dict | list):
                _find_expressions(value, f"{where}.{key}", warnings, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                _find_expressions(value, f"{where}[{i}]", warnings, depth + 1)
