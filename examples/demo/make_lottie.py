"""Write the demo's Lottie intro (assets/intro.json) from code: Bodymovin JSON, no tools needed.

Run from anywhere:  python examples/demo/make_lottie.py
A 3 s, 30 fps, 800×400 animation made by the project (shipped under the project's licence):
a teal ring draws itself around a cloud mark, three bars grow beside it, a sky-blue swoosh
sweeps under them. Markers: `in` (frames 0–60, the build) and `idle` (60–90, a gentle pulse).
The ring's layer is named `Ring` with a stroke `Stroke 1`, the bars' fill `Bars.Group 1.Fill 1`
(keypaths a template may recolour), and a text layer `Greeting` a template may fill.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "assets" / "intro.json"
W, H, FPS, FRAMES = 800, 400, 30, 90

TEAL = [25 / 255, 179 / 255, 166 / 255, 1]
SKY = [79 / 255, 195 / 255, 247 / 255, 1]
CLOUD = [245 / 255, 247 / 255, 250 / 255, 1]
EASE_OUT = {"o": {"x": [0.2], "y": [0]}, "i": {"x": [0.1], "y": [1]}}


def static(value: Any) -> dict[str, Any]:
    return {"a": 0, "k": value}


def keyframes(*points: tuple[int, list[float]]) -> dict[str, Any]:
    """Animated property: (frame, value) pairs, eased out; each key spells its end value too
    (`e`), which every Lottie player reads."""
    keys: list[dict[str, Any]] = []
    for (t, s), (_, e) in itertools.pairwise(points):
        keys.append({"t": t, "s": s, "e": e, **EASE_OUT})
    keys.append({"t": points[-1][0], "s": points[-1][1]})
    return {"a": 1, "k": keys}


def transform(position: list[float], scale: Any = None, opacity: Any = None) -> dict[str, Any]:
    return {
        "o": opacity or static(100),
        "r": static(0),
        "p": static([*position, 0]),
        "a": static([0, 0, 0]),
        "s": scale or static([100, 100, 100]),
    }


def group_transform() -> dict[str, Any]:
    return {
        "ty": "tr",
        "p": static([0, 0]),
        "a": static([0, 0]),
        "s": static([100, 100]),
        "r": static(0),
        "o": static(100),
    }


def shape_layer(index: int, name: str, ks: dict[str, Any], items: list[dict[str, Any]]) -> dict:
    return {
        "ddd": 0,
        "ind": index,
        "ty": 4,
        "nm": name,
        "sr": 1,
        "ks": ks,
        "ao": 0,
        "ip": 0,
        "op": FRAMES,
        "st": 0,
        "bm": 0,
        "shapes": [{"ty": "gr", "nm": "Group 1", "it": [*items, group_transform()]}],
    }


def ring() -> dict[str, Any]:
    items = [
        {"ty": "el", "nm": "Ellipse 1", "d": 1, "p": static([0, 0]), "s": static([230, 230])},
        {
            "ty": "st",
            "nm": "Stroke 1",
            "c": static(TEAL),
            "o": static(100),
            "w": static(18),
            "lc": 2,
            "lj": 2,
        },
        {
            "ty": "tm",
            "nm": "Trim 1",
            "s": static(0),
            "e": keyframes((0, [0]), (40, [100])),
            "o": static(0),
            "m": 1,
        },
    ]
    pulse = keyframes(
        (0, [100, 100, 100]),
        (60, [100, 100, 100]),
        (75, [106, 106, 100]),
        (89, [100, 100, 100]),
    )
    return shape_layer(1, "Ring", transform([200, 200], scale=pulse), items)


def cloud() -> dict[str, Any]:
    # Three overlapping circles and a base: a cloud, growing from nothing.
    parts = []
    for i, (x, y, d) in enumerate(((-38, 8, 70), (10, -14, 92), (50, 10, 64))):
        parts.append(
            {"ty": "el", "nm": f"Puff {i + 1}", "d": 1, "p": static([x, y]), "s": static([d, d])}
        )
    parts.append(
        {
            "ty": "rc",
            "nm": "Base",
            "d": 1,
            "p": static([6, 30]),
            "s": static([150, 44]),
            "r": static(22),
        }
    )
    parts.append({"ty": "fl", "nm": "Fill 1", "c": static(CLOUD), "o": static(100), "r": 1})
    grow = keyframes((10, [0, 0, 100]), (34, [100, 100, 100]))
    return shape_layer(2, "Cloud", transform([200, 200], scale=grow), parts)


def bars() -> dict[str, Any]:
    layers = []
    for i, (x, height, start) in enumerate(((470, 120, 18), (560, 190, 24), (650, 260, 30))):
        items = [
            {
                "ty": "rc",
                "nm": "Bar",
                "d": 1,
                "p": static([0, -height / 2]),
                "s": static([60, height]),
                "r": static(10),
            },
            {
                "ty": "fl",
                "nm": "Fill 1",
                "c": static(TEAL if i == 2 else SKY),
                "o": static(100),
                "r": 1,
            },
        ]
        grow = keyframes((start, [100, 0, 100]), (start + 22, [100, 100, 100]))
        layers.append(
            shape_layer(
                3 + i, f"Bars {i + 1}" if i else "Bars", transform([x, 330], scale=grow), items
            )
        )
    return {"layers": layers}


def swoosh() -> dict[str, Any]:
    path = {
        "c": False,
        "v": [[-330, 0], [0, -30], [330, 0]],
        "i": [[0, 0], [-160, 0], [0, 0]],
        "o": [[0, 0], [160, 0], [0, 0]],
    }
    items = [
        {"ty": "sh", "nm": "Path 1", "d": 1, "ks": static(path)},
        {
            "ty": "st",
            "nm": "Stroke 1",
            "c": static(SKY),
            "o": static(100),
            "w": static(8),
            "lc": 2,
            "lj": 2,
        },
        {
            "ty": "tm",
            "nm": "Trim 1",
            "s": static(0),
            "e": keyframes((28, [0]), (58, [100])),
            "o": static(0),
            "m": 1,
        },
    ]
    return shape_layer(6, "Swoosh", transform([400, 372]), items)


def greeting() -> dict[str, Any]:
    """A text layer (rlottie does not draw text: Reel draws a replaced text in its place)."""
    fade = keyframes((30, [0]), (50, [100]))
    return {
        "ddd": 0,
        "ind": 7,
        "ty": 5,
        "nm": "Greeting",
        "sr": 1,
        "ks": transform([400, 40], opacity=fade),
        "ao": 0,
        "ip": 0,
        "op": FRAMES,
        "st": 0,
        "bm": 0,
        "t": {
            "d": {
                "k": [
                    {
                        "s": {
                            "s": 40,
                            "f": "NotoSans-Bold",
                            "t": "Welcome",
                            "j": 2,
                            "tr": 0,
                            "lh": 48,
                            "ls": 0,
                            "fc": [1, 1, 1],
                        },
                        "t": 0,
                    }
                ]
            },
            "p": {},
            "m": {"g": 1, "a": static([0, 0])},
            "a": [],
        },
    }


def intro() -> dict[str, Any]:
    return {
        "v": "5.7.4",
        "fr": FPS,
        "ip": 0,
        "op": FRAMES,
        "w": W,
        "h": H,
        "nm": "Northwind intro",
        "ddd": 0,
        "assets": [],
        "fonts": {
            "list": [
                {"fName": "NotoSans-Bold", "fFamily": "Noto Sans", "fStyle": "Bold", "ascent": 75}
            ]
        },
        # Top of the list draws on top.
        "layers": [greeting(), swoosh(), *bars()["layers"], cloud(), ring()],
        "markers": [{"cm": "in", "tm": 0, "dr": 60}, {"cm": "idle", "tm": 60, "dr": 30}],
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(intro(), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(HERE.parents[1])} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
