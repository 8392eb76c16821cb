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
from itertools import pairwise
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
    # Per scene of the chain, the indices of its layers visible in the window: the only ones
    # rendered and the only ones in the key (a personal layer off-screen changes nothing).
    layers: tuple[tuple[int, ...], ...]
    # Per scene of the chain, its frames [from, to) that are rendered: frames outside the
    # window are not made at all, except what keeps a crossfade within the chain whole.
    keeps: tuple[tuple[int, int], ...]

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def window(self) -> tuple[int, int]:
        """The run's frames within the frames its chain renders."""
        origin = self.chain[0].start + self.keeps[0][0]
        return self.start - origin, self.end - origin


def layer_frames(start: float, end: float, fps: int, scene_frames: int) -> tuple[int, int]:
    """The scene-local frames [first, end) on which a layer is shown."""
    first = min(round(start * fps), scene_frames)
    return first, max(first, min(round(end * fps), scene_frames))


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


# A static piece shorter than this, inside a scene with personal layers, is not worth an encode
# of its own, and snapping to the scene's edges keeps the cuts the same for recipients whose
# personal layers appear a few frames apart (with or without an avatar, say).
SNAP_SECONDS = 1.0


def _personal_spans(p: Placed, fps: int) -> list[tuple[int, int]]:
    if p.scene.personal and not any(pl.personal for pl in p.scene.layers):
        return [(p.start, p.end)]  # a personal background
    snap = round(SNAP_SECONDS * fps)
    spans: list[tuple[int, int]] = []
    for pl in sorted((pl for pl in p.scene.layers if pl.personal), key=lambda pl: pl.start):
        a, b = layer_frames(pl.start, pl.end, fps, p.frames)
        if b <= a:
            continue
        a = 0 if a < snap else a
        b = p.frames if p.frames - b < snap else b
        if spans and a - spans[-1][1] < snap:
            a, b = spans[-1][0], max(b, spans.pop()[1])
        spans.append((a, b))
    return [(p.start + a, p.start + b) for a, b in spans]


def _visible(p: Placed, start: int, end: int, fps: int) -> tuple[int, ...]:
    keep = []
    for i, pl in enumerate(p.scene.layers):
        a, b = layer_frames(pl.start, pl.end, fps, p.frames)
        if p.start + a < end and p.start + b > start:
            keep.append(i)
    return tuple(keep)


def _keeps(chain: tuple[Placed, ...], start: int, end: int) -> tuple[tuple[int, int], ...]:
    keeps = []
    last = len(chain) - 1
    for i, p in enumerate(chain):
        k0 = 0 if i > 0 else max(0, start - p.start)
        k1 = p.frames if i < last else min(p.frames, end - p.start)
        if i < last:  # do not cut into the crossfade with the next scene
            k0 = min(k0, p.frames - p.overlap_next)
        if i > 0:  # nor into the one with the previous scene
            k1 = max(k1, chain[i - 1].overlap_next)
        keeps.append((k0, k1))
    return tuple(keeps)


def _run(placed: list[Placed], start: int, end: int, personal: bool, fps: int) -> Run:
    chain = tuple(p for p in placed if p.start < end and p.end > start)
    layers = tuple(_visible(p, start, end, fps) for p in chain)
    return Run(start, end, personal, chain, layers, _keeps(chain, start, end))


def plan_runs(plan: RenderPlan, profile: EncodingProfile, *, split: bool = True) -> list[Run]:
    """Maximal static and variable runs (or, with split=False, one run: the single pass).

    The timeline is cut at every scene boundary and wherever a personal layer appears or
    disappears; a piece is variable when a personal layer (or background) shows in it, and
    neighbouring pieces of the same kind are merged.
    """
    fps = profile.fps
    placed = timeline(plan, profile)
    total = total_frames(placed)
    if not split:
        return [_run(placed, 0, total, any(p.scene.personal for p in placed), fps)]
    spans = [span for p in placed for span in _personal_spans(p, fps)]
    cuts = {0, total}
    for p in placed:
        cuts.update((p.start, p.end))
    for a, b in spans:
        cuts.update((a, b))
    pieces: list[tuple[int, int, bool]] = []
    for a, b in pairwise(sorted(c for c in cuts if 0 <= c <= total)):
        personal = any(sa < b and sb > a for sa, sb in spans)
        if pieces and pieces[-1][2] == personal:
            a = pieces.pop()[0]
        pieces.append((a, b, personal))
    return [_run(placed, a, b, personal, fps) for a, b, personal in pieces]


def frame_run(plan: RenderPlan, profile: EncodingProfile, frame: int) -> Run:
    """The one-frame run at `frame` (clamped to the timeline): what the Studio draws, cut from
    the timeline exactly as `plan_runs` cuts the runs of the video."""
    placed = timeline(plan, profile)
    frame = max(0, min(frame, total_frames(placed) - 1))
    personal = any(a <= frame < b for p in placed for a, b in _personal_spans(p, profile.fps))
    return _run(placed, frame, frame + 1, personal, profile.fps)


Digest = Callable[[str], str]


def content_key(spec: object) -> str:
    """SHA-256 of a JSON-able spec, independent of key order: the cache's keys."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def scene_fingerprint(
    scene: PlanScene, digest: Digest, layers: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """What determines a scene's pixels: its spec with asset paths replaced by content hashes,
    without its place on the timeline (the same greeting is shared wherever it falls), and
    with only the `layers` given (default: all)."""
    data = scene.model_dump(mode="json", exclude={"id", "start", "personal"})
    bg = data["background"]
    for key in ("image", "video"):
        if bg.get(key):
            bg[key] = digest(bg[key])
    kept = range(len(data["layers"])) if layers is None else layers
    data["layers"] = [data["layers"][i] for i in kept]
    for layer in data["layers"]:
        layer.pop("personal", None)
        inner = layer["layer"]
        inner.pop("id", None)
        inner.pop("when", None)
        if inner.get("src"):
            inner["src"] = digest(inner["src"])
        if inner.get("images"):  # a Lottie's replaced images: by content too
            inner["images"] = {k: digest(v) for k, v in inner["images"].items()}
    return data


def run_key(run: Run, profile: EncodingProfile, digest: Digest, context: dict[str, str]) -> str:
    """Content key of a run's video: same key ⇔ same pixels and same encoding.

    `context` carries the engine version, the ffmpeg version and the fonts' fingerprint.
    """
    spec = {
        "context": context,
        "profile": asdict(profile),
        "window": run.window,
        "keeps": run.keeps,
        "scenes": [
            scene_fingerprint(p.scene, digest, keep)
            for p, keep in zip(run.chain, run.layers, strict=True)
        ],
    }
    return content_key(spec)


def plan_key(
    plan: RenderPlan, digest: Digest, context: dict[str, str], preview: bool, speech: str = ""
) -> str:
    """Content key of a whole video: the same record (and assets) gives the same key; a voiced
    one also names the `speech` engine (another engine says its lines in another voice)."""
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
    if plan.voices:  # what each line says and how (before it is spoken: a plan step's key)
        keep = {"text", "ssml", "voice", "rate", "pitch", "volume", "start", "window", "overflow"}
        spec["voices"] = [v.model_dump(include=keep) for v in plan.voices]
        spec["lexicon"] = [w.model_dump() for w in plan.lexicon]
        spec["speech"] = speech
    return content_key(spec)
