"""The segment planner (pure): a plan's frame timeline cut into static and variable runs, and
the content keys that let a run be rendered once and reused.

A scene is variable when some pixel of it depends on the record (`PlanScene.personal`). The
variable runs are the union of the variable scenes' frame intervals, so a crossfade touching a
variable scene lies inside a variable run; the static runs are what is left. Each run is
rendered from the chain of scenes it intersects, trimmed to its window of frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.render.profile import EncodingProfile
from chalicelib.template.model import TransitionKind
from chalicelib.template.plan import PlanScene, RenderPlan


@dataclass(frozen=True)
class Placed:
    """A scene on the frame timeline."""

    scene: PlanScene
    start: int
    frames: int
    overlap_next: int  # frames shared with the next scene (a crossfade), else 0

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass(frozen=True)
class Run:
    """A window [start, end) of the timeline and the chain of scenes it intersects."""

    start: int
    end: int
    personal: bool
    chain: tuple[Placed, ...]

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def window(self) -> tuple[int, int]:
        """The run's frames relative to the start of its chain's first scene."""
        origin = self.chain[0].start
        return self.start - origin, self.end - origin


def timeline(plan: RenderPlan, profile: EncodingProfile) -> list[Placed]:
    """Scenes placed on whole frames at the profile's rate."""
    placed: list[Placed] = []
    cursor = 0
    for scene in plan.scenes:
        frames = profile.frames(scene.duration)
        out = scene.transition_out
        overlap = profile.frames(out.duration) if out.type is TransitionKind.crossfade else 0
        placed.append(Placed(scene, cursor, frames, overlap))
        cursor += frames - overlap
    return placed


def total_frames(placed: list[Placed]) -> int:
    return placed[-1].end if placed else 0


def plan_runs(plan: RenderPlan, profile: EncodingProfile, *, split: bool = True) -> list[Run]:
    """Maximal static and variable runs (or, with split=False, one run: the single pass)."""
    placed = timeline(plan, profile)
    total = total_frames(placed)
    if not split:
        return [Run(0, total, any(p.scene.personal for p in placed), tuple(placed))]
    # Merge the variable scenes' intervals; the gaps between them are static.
    variable: list[list[int]] = []
    for p in placed:
        if not p.scene.personal:
            continue
        if variable and p.start <= variable[-1][1]:
            variable[-1][1] = max(variable[-1][1], p.end)
        else:
            variable.append([p.start, p.end])
    bounds: list[tuple[int, int, bool]] = []
    cursor = 0
    for a, b in variable:
        if a > cursor:
            bounds.append((cursor, a, False))
        bounds.append((a, b, True))
        cursor = b
    if cursor < total:
        bounds.append((cursor, total, False))
    return [
        Run(a, b, personal, tuple(p for p in placed if p.start < b and p.end > a))
        for a, b, personal in bounds
    ]


Digest = Callable[[str], str]


def scene_fingerprint(scene: PlanScene, digest: Digest) -> dict[str, Any]:
    """What determines a scene's pixels: its spec with asset paths replaced by content hashes,
    without its place on the timeline (the same greeting is shared wherever it falls)."""
    data = scene.model_dump(mode="json", exclude={"id", "start", "personal"})
    bg = data["background"]
    for key in ("image", "video"):
        if bg.get(key):
            bg[key] = digest(bg[key])
    for layer in data["layers"]:
        layer.pop("personal", None)
        inner = layer["layer"]
        inner.pop("id", None)
        inner.pop("when", None)
        if inner.get("src"):
            inner["src"] = digest(inner["src"])
    return data


def run_key(run: Run, profile: EncodingProfile, digest: Digest, context: dict[str, str]) -> str:
    """Content key of a run's video: same key ⇔ same pixels and same encoding.

    `context` carries the engine version, the ffmpeg version and the fonts' fingerprint.
    """
    spec = {
        "context": context,
        "profile": asdict(profile),
        "window": run.window,
        "scenes": [scene_fingerprint(p.scene, digest) for p in run.chain],
    }
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_key(plan: RenderPlan, digest: Digest, context: dict[str, str], preview: bool) -> str:
    """Content key of a whole video: the same record (and assets) gives the same key."""
    spec = {
        "context": context,
        "preview": preview,
        "canvas": plan.canvas.model_dump(),
        "scenes": [scene_fingerprint(s, digest) for s in plan.scenes],
        "music": {**plan.music.model_dump(), "music": digest(plan.music.music)}
        if plan.music.music
        else None,
        "cues": [{**c.model_dump(), "src": digest(c.src)} for c in plan.cues],
        "poster": plan.poster_time,
    }
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()
