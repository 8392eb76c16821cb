"""The render engine: a RenderPlan → segments → one MP4 (+ poster), through the ffmpeg runner.

A video is cut into segments at every boundary that is not a crossfade. Each segment is its own
encode with the fixed profile (so it starts on a keyframe), the segments are joined by stream
copy, and the audio is rendered once over the whole timeline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from chalicelib.render import ffmpeg as ff
from chalicelib.render import raster
from chalicelib.render.graph import (
    AudioInput,
    Overlay,
    SceneInput,
    VideoSource,
    mux_args,
    poster_args,
    segment_args,
    segment_frames,
)
from chalicelib.render.profile import EncodingProfile
from chalicelib.settings import get_settings
from chalicelib.template.model import Fit, TransitionKind, VideoLayer
from chalicelib.template.plan import PlanLayer, PlanScene, RenderPlan


@dataclass(frozen=True)
class Segment:
    """Consecutive scenes joined by crossfades: the unit rendered in one encode."""

    index: int
    scenes: tuple[PlanScene, ...]

    @property
    def personal(self) -> bool:
        return any(s.personal for s in self.scenes)


def plan_segments(plan: RenderPlan) -> list[Segment]:
    """Cut the timeline at every scene boundary that is not a crossfade."""
    groups: list[list[PlanScene]] = []
    for scene in plan.scenes:
        if groups and scene.transition_in.type is TransitionKind.crossfade:
            groups[-1].append(scene)
        else:
            groups.append([scene])
    return [Segment(i, tuple(g)) for i, g in enumerate(groups)]


def _box(pl: PlanLayer, profile: EncodingProfile) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a layer in output pixels: `at` is its centre as a canvas fraction."""
    s = profile.scale
    w = max(2, round(pl.layer.size[0] * s))
    h = max(2, round(pl.layer.size[1] * s))
    cx, cy = pl.layer.at
    return round(cx * profile.width - w / 2), round(cy * profile.height - h / 2), w, h


def _half(trans_duration: float, kind: TransitionKind) -> float:
    return trans_duration / 2 if kind is TransitionKind.fade else 0.0


def prepare_scene(scene: PlanScene, profile: EncodingProfile, work: Path) -> SceneInput:
    """Rasterize a scene's still layers and describe it for the graph builder."""
    overlays = []
    for i, pl in enumerate(scene.layers):
        x, y, w, h = _box(pl, profile)
        layer = pl.layer
        placed = Overlay(x, y, w, h, pl.start, pl.end, enter=layer.enter, exit=layer.exit)
        if isinstance(layer, VideoLayer):
            src = VideoSource(layer.src, layer.fit, layer.loop, layer.trim)
            overlays.append(replace(placed, video=src, opacity=layer.opacity))
            continue
        img = raster.layer_image(layer, pl.style, (w, h), profile.scale, f"{scene.id}.layers[{i}]")
        overlays.append(replace(placed, still=str(raster.save_png(img, work))))
    bg = scene.background
    bg_image = None
    if bg.image:
        img = raster.fit_image(
            raster.open_image(Path(bg.image)), (profile.width, profile.height), bg.fit
        )
        bg_image = str(raster.save_png(img, work))
    t_in, t_out = scene.transition_in, scene.transition_out
    return SceneInput(
        frames=profile.frames(scene.duration),
        background_color=bg.color,
        background_image=bg_image,
        background_video=VideoSource(bg.video, bg.fit, bg.loop, bg.trim) if bg.video else None,
        overlays=tuple(overlays),
        fade_in=_half(t_in.duration, t_in.type),
        fade_out=_half(t_out.duration, t_out.type),
        crossfade_frames=(
            profile.frames(t_out.duration) if t_out.type is TransitionKind.crossfade else 0
        ),
        debug_name=scene.id,
    )


def audio_inputs(plan: RenderPlan, total: float) -> list[AudioInput]:
    """The music bed over the whole video, then each audio layer at its place."""
    sounds = []
    m = plan.music
    if m.music:
        sounds.append(AudioInput(m.music, 0.0, total, m.volume, m.fade_in, m.fade_out, loop=True))
    for cue in plan.cues:
        sounds.append(
            AudioInput(cue.src, cue.start, cue.duration, cue.volume, cue.fade_in, cue.fade_out)
        )
    return sounds


ProgressFn = Callable[[str, int, int], None]


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.part{path.suffix}")


def render_segment(segment: Segment, profile: EncodingProfile, work: Path, out: Path) -> int:
    """Render one segment to a video-only MP4; return its frame count."""
    inputs = [prepare_scene(s, profile, work) for s in segment.scenes]
    ff.run(segment_args(inputs, profile, str(out)))
    return segment_frames(inputs)


def render(
    plan: RenderPlan,
    out: Path,
    *,
    poster: Path | None = None,
    preview: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Render `plan` to `out` (MP4) and optionally a poster JPEG.

    Outputs appear atomically: on any failure nothing is left under `out` or `poster`.
    """
    out = out.resolve()
    poster = poster.resolve() if poster else None
    profile = EncodingProfile.for_canvas(plan.canvas, preview=preview)
    segments = plan_segments(plan)
    steps = len(segments) + 1 + (1 if poster else 0)
    base = get_settings().work_dir
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="reel-", dir=base))
    tmp_out = _atomic_target(out)
    tmp_poster = _atomic_target(poster) if poster else None
    try:
        frames = 0
        names = []
        for seg in segments:
            name = f"seg_{seg.index:04d}.mp4"
            frames += render_segment(seg, profile, work, work / name)
            names.append(name)
            if progress:
                progress("segments", seg.index + 1, steps)
        (work / "segments.txt").write_text("".join(f"file '{n}'\n" for n in names))
        total = frames / profile.fps
        ff.run(
            mux_args("segments.txt", audio_inputs(plan, total), total, profile, str(tmp_out)),
            cwd=work,
        )
        if progress:
            progress("mux", len(segments) + 1, steps)
        if poster and tmp_poster:
            at = min(plan.poster_time, max(0.0, total - 1 / profile.fps))
            ff.run(poster_args(str(tmp_out), at, str(tmp_poster)))
            tmp_poster.replace(poster)
            if progress:
                progress("poster", steps, steps)
        tmp_out.replace(out)
        return out
    finally:
        for tmp in (tmp_out, tmp_poster):
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


__all__ = ["Fit", "Segment", "plan_segments", "render", "render_segment"]
