"""Lottie layers played by rlottie (rlottie-python: its wheel bundles librlottie, LGPL-2.1),
frame by frame into the layer's box, with the layer's replacements applied.

- colours: rlottie's fill- and stroke-colour overrides on each keypath (`Layer.Group.Fill 1`);
- images: the image asset's data replaced by the given file (re-encoded as PNG by Pillow);
- texts: rlottie draws no text layers at all, so a replaced text is drawn by Reel's own text
  renderer (the bundled fonts) at the text layer's position, in its size, colour and
  justification, following its opacity; the animation's font and any animated text
  transform (position, scale, per-character animators) are not followed.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import io
import itertools
import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image
from rlottie_python.rlottie_wrapper import LottieAnimation, LottieAnimationProperty

from chalicelib.errors import TemplateError
from chalicelib.render import raster
from chalicelib.render import text as textmod
from chalicelib.template.model import LottieLayer
from chalicelib.template.motion import LottieDoc, load_lottie


def play_window(layer: LottieLayer, doc: LottieDoc, field: str = "") -> tuple[float, float]:
    """The Lottie frames [from, to) the layer plays: frames or marker names, default all."""
    start, end = doc.frames

    def mark(value: int | str | None, default: float, at_end: bool) -> float:
        if value is None:
            return default
        if isinstance(value, str):
            if value not in doc.markers:
                known = ", ".join(sorted(doc.markers)) or "none"
                raise TemplateError(f"no marker {value!r} (markers: {known})", field=field)
            a, b = doc.markers[value]
            return b if at_end and b > a else a
        return float(value)

    play = layer.play
    a = mark(play.from_ if play else None, start, False)
    b = mark(play.to if play else None, end, True)
    a, b = max(start, a), min(end, b)
    if b <= a:
        raise TemplateError(f"play: from {a:g} to {b:g} is an empty segment", field=field)
    return a, b


def frame_count(layer: LottieLayer, doc: LottieDoc, fps: int, shown: int, field: str = "") -> int:
    """Pictures to draw for a layer shown `shown` frames: all of them when it loops, else
    until the segment has played (its last picture is then held)."""
    if layer.loop:
        return max(1, shown)
    a, b = play_window(layer, doc, field)
    seconds = (b - a) / doc.fps / layer.speed
    return max(1, min(shown, math.ceil(seconds * fps) + 1))


def lottie_frame(layer: LottieLayer, doc: LottieDoc, fps: int, index: int, field: str = "") -> int:
    """The Lottie frame shown at the layer's picture `index`."""
    a, b = play_window(layer, doc, field)
    f = (index / fps) * layer.speed * doc.fps
    if layer.loop:
        f = f % (b - a)
    return int(min(a + f, b - 1))


def _image_uri(path: str, field: str) -> str:
    img = raster.open_image(Path(path), field)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _prepared(layer: LottieLayer, doc: LottieDoc, field: str) -> dict[str, Any]:
    """The animation's JSON with the image replacements in, and replaced texts hidden."""
    data = doc.data
    for image_id, where in doc.external_images.items():
        if image_id not in layer.images:
            raise TemplateError(
                f"{Path(layer.src).name}: {where}: an image file beside the animation is not "
                "read: embed it (a data: URI) or give it with `images:`",
                field=field,
            )
    if layer.images:
        data = copy.deepcopy(data)
        for asset in data.get("assets", []):
            new = layer.images.get(str(asset.get("id", "")))
            if new is not None:
                asset.update({"p": _image_uri(new, f"{field}.images"), "u": "", "e": 1})
    return data


class _Player:
    """One loaded rlottie animation with its colour overrides (kept per process: loading
    parses the JSON; drawing many frames from one load is cheap)."""

    def __init__(self, data: dict[str, Any], colors: dict[str, str]):
        self.anim = LottieAnimation.from_data(json.dumps(data))
        kinds = (
            LottieAnimationProperty.LOTTIE_ANIMATION_PROPERTY_FILLCOLOR,
            LottieAnimationProperty.LOTTIE_ANIMATION_PROPERTY_STROKECOLOR,
        )
        for keypath, color in colors.items():
            r, g, b, _ = raster._rgba(color)
            for kind in kinds:  # a keypath names a fill or a stroke: each applies to its own
                self.anim.lottie_animation_property_override(
                    kind, keypath, *(ctypes.c_double(c / 255) for c in (r, g, b))
                )

    def draw(self, frame: int, size: tuple[int, int]) -> Image.Image:
        w, h = size
        buffer = self.anim.lottie_animation_render(frame_num=frame, width=w, height=h)
        # rlottie paints premultiplied ARGB32 (BGRA in memory): "BGRa" unpremultiplies.
        return Image.frombuffer("RGBA", size, buffer, "raw", "BGRa", 0, 1).copy()


_PLAYERS: OrderedDict[str, _Player] = OrderedDict()


def _player(key: str, data: dict[str, Any], colors: dict[str, str]) -> _Player:
    if key in _PLAYERS:
        _PLAYERS.move_to_end(key)
        return _PLAYERS[key]
    player = _Player(data, colors)
    _PLAYERS[key] = player
    while len(_PLAYERS) > 8:
        _PLAYERS.popitem(last=False)
    return player


def _value_at(prop: Any, frame: float) -> Any:
    """A Lottie property's value at `frame`: static, or keyframes interpolated linearly."""
    if not isinstance(prop, dict):
        return None
    k = prop.get("k")
    if not prop.get("a") or not isinstance(k, list) or not k or not isinstance(k[0], dict):
        return k
    keys = [key for key in k if isinstance(key, dict) and "t" in key]
    if not keys:
        return None
    if frame <= keys[0]["t"]:
        return keys[0].get("s")
    for cur, nxt in itertools.pairwise(keys):
        if cur["t"] <= frame < nxt["t"]:
            s, e = cur.get("s"), cur.get("e", nxt.get("s"))
            if not isinstance(s, list) or not isinstance(e, list):
                return s
            p = (frame - cur["t"]) / max(1e-6, nxt["t"] - cur["t"])
            return [a + (b - a) * p for a, b in zip(s, e, strict=False)]
    last = keys[-1]
    return last.get("s", keys[-2].get("e") if len(keys) > 1 else None)


def _first(value: Any, default: float) -> float:
    if isinstance(value, list) and value and isinstance(value[0], int | float):
        return float(value[0])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _draw_text(
    pic: Image.Image, doc: LottieDoc, name: str, text: str, frame: int, scale: float
) -> None:
    path = doc.text_layers[name]
    layer: Any = doc.data
    for part in path.removeprefix("$.").replace("]", "").replace("[", ".").split("."):
        layer = layer[int(part)] if part.isdigit() else layer[part]
    if not layer.get("ip", 0) <= frame < layer.get("op", math.inf):
        return
    try:
        style = layer["t"]["d"]["k"][0]["s"]
    except (KeyError, IndexError, TypeError):
        return
    ks = layer.get("ks", {})
    opacity = _first(_value_at(ks.get("o"), frame), 100) / 100
    if opacity <= 0:
        return
    pos = _value_at(ks.get("p"), frame)
    x = _first(pos, doc.size[0] / 2) * scale
    y = _first(pos[1:] if isinstance(pos, list) else None, doc.size[1] / 2) * scale
    size = max(4, round(_first(style.get("s"), 40) * scale))
    fc = style.get("fc") or [1, 1, 1]
    color = "#" + "".join(f"{max(0, min(255, round(c * 255))):02x}" for c in fc[:3])
    justify = {0: "left", 1: "right"}.get(style.get("j", 2), "center")
    box_w, box_h = pic.width, round(size * 1.6)
    left = {"left": x, "right": x - box_w}.get(justify, x - box_w / 2)
    top = y - size * 1.15  # the Lottie position is the text's baseline
    drawn = textmod.render_text(
        text, box_w, box_h, size=size, color=color, align=justify, valign="middle"
    )
    if opacity < 1:
        drawn = raster.with_opacity(drawn, opacity)
    layer_pic = Image.new("RGBA", pic.size, (0, 0, 0, 0))
    layer_pic.paste(drawn, (round(left), round(top)))
    pic.alpha_composite(layer_pic)


def frames(
    layer: LottieLayer, key: str, size: tuple[int, int], fps: int, count: int, field: str = ""
) -> Any:
    """A function drawing picture `index` (0…count-1) of the layer into a `size` RGBA box."""
    doc = load_lottie(Path(layer.src), field)
    data = _prepared(layer, doc, field)
    player = _player(key, data, layer.colors)
    w, h = size
    scale = min(w / doc.size[0], h / doc.size[1])
    rw, rh = max(1, round(doc.size[0] * scale)), max(1, round(doc.size[1] * scale))
    for name in layer.texts:
        if name not in doc.text_layers:
            raise TemplateError(f"{Path(layer.src).name}: no text layer named {name!r}", field)

    def picture(index: int) -> Image.Image:
        f = lottie_frame(layer, doc, fps, index, field)
        pic = player.draw(f, (rw, rh))
        for name, text in layer.texts.items():
            _draw_text(pic, doc, name, text, f, scale)
        box = Image.new("RGBA", size, (0, 0, 0, 0))
        box.alpha_composite(pic, ((w - rw) // 2, (h - rh) // 2))
        return raster.with_opacity(box, layer.opacity)

    return picture
