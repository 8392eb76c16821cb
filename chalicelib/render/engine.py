"""The render engine: a RenderPlan → segments → one MP4 (+ poster), through the ffmpeg runner.

The timeline is cut into static and variable runs (`segments.plan_runs`). Each run is its own
encode with the fixed profile (so it starts on a keyframe); with a SegmentCache, a run whose
content key is already stored is not rendered again. The runs are joined by stream copy and
the audio track is made of blocks the same way (render/audio.py). Without a cache the whole
video is one run: the single-pass reference.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import PIL
from PIL import Image, features

from chalicelib import ENGINE_VERSION
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.errors import AssetError, RenderError, TemplateError
from chalicelib.render import audio, chart, lottie, raster, svg
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.ffmpeg import ffmpeg_version
from chalicelib.render.graph import (
    Overlay,
    SceneInput,
    VideoSource,
    draw_args,
    mux_args,
    poster_args,
    segment_args,
)
from chalicelib.render.localize import localize
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import (
    Run,
    content_key,
    frame_run,
    layer_frames,
    plan_runs,
    run_key,
)
from chalicelib.render.text import fonts_fingerprint
from chalicelib.render.voice import speak
from chalicelib.template.model import (
    Background,
    ChartLayer,
    ImageLayer,
    LottieLayer,
    SvgLayer,
    TransitionKind,
    VideoLayer,
)
from chalicelib.template.motion import load_lottie
from chalicelib.template.plan import PlanLayer, PlanScene, RenderPlan

if TYPE_CHECKING:
    from chalicelib.ports import SpeechSynth


def _box(pl: PlanLayer, profile: EncodingProfile) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a layer in output pixels: `at` is its centre as a canvas fraction."""
    s = profile.scale
    w = max(2, round(pl.layer.size[0] * s))
    h = max(2, round(pl.layer.size[1] * s))
    cx, cy = pl.layer.at
    return round(cx * profile.width - w / 2), round(cy * profile.height - h / 2), w, h


def _video(spec: VideoLayer | Background, field: str, config: RenderConfig) -> VideoSource:
    path = spec.src if isinstance(spec, VideoLayer) else spec.video
    assert path is not None
    try:
        info = media_info(path, config)
    except RenderError as exc:
        raise RenderError(
            f"{Path(path).name} cannot be read as a video", exc.stderr_tail, field=field
        ) from exc
    if not info.has_video:
        raise AssetError(f"{Path(path).name} has no video stream", field=field)
    if info.width and info.height and info.width * info.height > raster.MAX_IMAGE_PIXELS:
        raise AssetError(
            f"{Path(path).name} is {info.width}×{info.height}: "
            f"over {raster.MAX_IMAGE_PIXELS:,} pixels",
            field=field,
        )
    return VideoSource(path, spec.fit, spec.loop, spec.trim, info.duration)


def media_info(path: str, config: RenderConfig = DEFAULT) -> ff.MediaInfo:
    """What ffmpeg says about a media file (memoized while the file is unchanged)."""
    st = Path(path).stat()
    return _info(path, st.st_size, st.st_mtime_ns, config)


@lru_cache(maxsize=256)
def _info(path: str, size: int, mtime_ns: int, config: RenderConfig) -> ff.MediaInfo:
    return ff.probe(Path(path), config=config)


def _half(trans_duration: float, kind: TransitionKind) -> float:
    return trans_duration / 2 if kind is TransitionKind.fade else 0.0


def prepare_scene(
    scene: PlanScene,
    profile: EncodingProfile,
    work: Path,
    layers: tuple[int, ...] | None = None,
    config: RenderConfig = DEFAULT,
    keep: tuple[int, int] | None = None,
) -> SceneInput:
    """Rasterize a scene's still layers (those whose index is in `layers`, default all) and
    the pictures its moving layers show in its frames `keep` (default all), and describe it
    for the graph builder."""
    overlays = []
    scene_frames = profile.frames(scene.duration)
    k0, k1 = keep or (0, scene_frames)
    for i, pl in enumerate(scene.layers):
        if layers is not None and i not in layers:
            continue
        x, y, w, h = _box(pl, profile)
        layer = pl.layer
        frames = layer_frames(pl.start, pl.end, profile.fps, scene_frames)
        placed = Overlay(x, y, w, h, pl.start, pl.end, frames, enter=layer.enter, exit=layer.exit)
        field = f"{scene.id}.layers[{i}]"
        if isinstance(layer, VideoLayer):
            video = _video(layer, field, config)
            overlays.append(replace(placed, video=video, opacity=layer.opacity))
            continue
        if isinstance(layer, ChartLayer | LottieLayer):
            # The pictures shown in the window: from its first frame on the layer, to its
            # last or the sequence's end (its last picture is then held).
            first, end = max(frames[0], k0), min(frames[1], k1)
            window = (first - frames[0], max(1, end - first))
            if isinstance(layer, ChartLayer):
                seq, count = _chart_sequence(layer, (w, h), window, profile, work, field)
            else:
                seq, count = _lottie_sequence(layer, (w, h), frames, window, profile, work, field)
            overlays.append(replace(placed, sequence=seq, sequence_frames=count))
            continue
        if isinstance(layer, SvgLayer):
            key = json.dumps(
                ["svg", file_digest(layer.src), pl.resolved, layer.fit, w, h, layer.opacity]
            )
            draw_svg = partial(_svg_still, layer, pl.resolved, (w, h), field)
            png = raster.MEMO.get(key, draw_svg)
            overlays.append(replace(placed, still=str(raster.save_png(png, work))))
            continue
        key = json.dumps(
            [
                layer.model_dump(mode="json"),
                pl.style.model_dump(mode="json") if pl.style else None,
                file_digest(layer.src) if isinstance(layer, ImageLayer) else None,
                w,
                h,
                profile.scale,
            ]
        )
        png = raster.MEMO.get(
            key, partial(raster.layer_image, layer, pl.style, (w, h), profile.scale, field)
        )
        overlays.append(replace(placed, still=str(raster.save_png(png, work))))
    bg = scene.background
    bg_image = None
    if bg.image:
        size = (profile.width, profile.height)
        path = Path(bg.image)
        key = json.dumps(["background", file_digest(bg.image), size, bg.fit])
        png = raster.MEMO.get(key, lambda: raster.fit_image(raster.open_image(path), size, bg.fit))
        bg_image = str(raster.save_png(png, work))
    t_in, t_out = scene.transition_in, scene.transition_out
    return SceneInput(
        frames=scene_frames,
        background_color=bg.color,
        background_image=bg_image,
        background_video=(_video(bg, f"{scene.id}.background.video", config) if bg.video else None),
        overlays=tuple(overlays),
        fade_in=_half(t_in.duration, t_in.type),
        fade_out=_half(t_out.duration, t_out.type),
        crossfade_frames=(
            profile.frames(t_out.duration) if t_out.type is TransitionKind.crossfade else 0
        ),
    )


def _svg_still(
    layer: SvgLayer, resolved: dict[str, str], size: tuple[int, int], field: str
) -> Image.Image:
    img = svg.svg_image(layer.src, resolved, size, layer.fit, field)
    return raster.with_opacity(img, layer.opacity)


# A moving layer's pictures, all frames together: a full-canvas 1080p Lottie looping for
# 5 minutes is about this; more is a template mistake, not a video.
MAX_SEQUENCE_PIXELS = 20_000_000_000


def write_sequence(
    key: str,
    count: int,
    window: tuple[int, int],
    draw: Callable[[int], Image.Image],
    work: Path,
    size: tuple[int, int],
    field: str = "",
) -> tuple[str, int]:
    """Draw the pictures of a `count`-picture sequence a window needs — from picture
    `window[0]` (the last one, past the end), `window[1]` of them at most — into one raw RGBA
    file named by `key` and the window (drawn once per work folder); return its path and how
    many pictures it holds. Raw frames cost no encoding here and no decoding in ffmpeg."""
    if count * size[0] * size[1] > MAX_SEQUENCE_PIXELS:
        raise TemplateError(
            f"{count} frames of {size[0]}×{size[1]} pixels to draw: over "
            f"{MAX_SEQUENCE_PIXELS:,} pixels (make the layer smaller or shorter)",
            field=field,
        )
    a = min(window[0], count - 1)
    b = min(count, a + window[1])
    path = work / f"seq_{content_key([key, a, b])[:24]}.rgba"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            for i in range(a, b):
                picture = draw(i)
                if picture.size != size or picture.mode != "RGBA":
                    picture = picture.convert("RGBA").resize(size)
                out.write(picture.tobytes())
        tmp.replace(path)
    return str(path), b - a


def _chart_sequence(
    layer: ChartLayer,
    size: tuple[int, int],
    window: tuple[int, int],
    profile: EncodingProfile,
    work: Path,
    field: str,
) -> tuple[str, int]:
    count = chart.frame_count(layer, profile.fps)
    key = json.dumps(["chart", layer.model_dump(mode="json"), size, profile.scale, count])

    def picture(i: int) -> Image.Image:
        return chart.draw(layer, size, profile.scale, chart.progress(i, count))

    return write_sequence(key, count, window, picture, work, size, field)


def _lottie_sequence(
    layer: LottieLayer,
    size: tuple[int, int],
    shown: tuple[int, int],
    window: tuple[int, int],
    profile: EncodingProfile,
    work: Path,
    field: str,
) -> tuple[str, int]:
    doc = load_lottie(Path(layer.src), field)
    count = lottie.frame_count(layer, doc, profile.fps, shown[1] - shown[0], field)
    spec = layer.model_dump(mode="json", exclude={"src", "images", "id", "when"})
    images = {k: file_digest(v) for k, v in layer.images.items()}
    key = json.dumps(
        ["lottie", file_digest(layer.src), spec, images, size, profile.fps, count],
        sort_keys=True,
    )
    picture = lottie.frames(layer, key, size, profile.fps, count, field)
    return write_sequence(key, count, window, picture, work, size, field)


ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RenderResult:
    """What a render produced, and how much of it came from the cache."""

    path: Path
    poster: Path | None
    frames: int
    duration: float
    segments: int
    segments_cached: int
    plan: RenderPlan | None = None  # the plan rendered: its voice lines spoken and fitted


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.part{path.suffix}")


def render_run(
    run: Run, profile: EncodingProfile, work: Path, out: Path, config: RenderConfig = DEFAULT
) -> None:
    """Render one run (its chain of scenes, trimmed to its window) to a video-only MP4."""
    inputs = [
        replace(prepare_scene(p.scene, profile, work, layers, config, keep), keep=keep)
        for p, layers, keep in zip(run.chain, run.layers, run.keeps, strict=True)
    ]
    ff.run(segment_args(inputs, profile, str(out), run.window), config=config)


def render_frame(
    plan: RenderPlan,
    at: float,
    out: Path,
    *,
    work: Path,
    preview: bool = False,
    config: RenderConfig = DEFAULT,
) -> int:
    """Draw the frame at `at` seconds of `plan`'s video as a JPEG at `out` (a path of the
    caller's own: it is written in place); return the frame's index.

    The frame is cut from the timeline as the video's runs are and goes through the same
    scene graph, so it shows what the encoder of the final video is given. The rasterized
    layers are written to `work`.
    """
    plan = localize(plan)
    profile = EncodingProfile.for_canvas(plan.canvas, preview=preview, config=config)
    run = frame_run(plan, profile, round(at * profile.fps))
    inputs = [
        replace(prepare_scene(p.scene, profile, work, layers, config, keep), keep=keep)
        for p, layers, keep in zip(run.chain, run.layers, run.keeps, strict=True)
    ]
    ff.run(draw_args(inputs, profile, str(out), run.window), config=config)
    return run.start


def cache_context(config: RenderConfig = DEFAULT) -> dict[str, str]:
    """What every cache key depends on beyond the plan: engine, ffmpeg, fonts and the text
    shaper (Pillow with its raqm/harfbuzz draws the text)."""
    shaper = f"pillow {PIL.__version__} raqm {features.version('raqm')}"
    return {
        "engine": ENGINE_VERSION,
        "ffmpeg": ffmpeg_version(config),
        "fonts": fonts_fingerprint(),
        "text": shaper,
    }


def _cached_run(
    run: Run,
    profile: EncodingProfile,
    cache: SegmentCache,
    context: dict[str, str],
    work: Path,
    name: str,
    config: RenderConfig,
) -> tuple[Path, bool]:
    """A local file of the run's segment, from the cache or rendered into it; and a hit flag."""
    blob = cache.segment_key(run_key(run, profile, file_digest, context))
    stored = cache.get(blob, work)
    if stored is not None:
        return stored, True
    render_run(run, profile, work, work / f"new_{name}", config)
    return cache.put(blob, work / f"new_{name}", work), False


def cached_run(
    run: Run,
    profile: EncodingProfile,
    cache: SegmentCache,
    work: Path,
    config: RenderConfig = DEFAULT,
) -> Path:
    """A local file of one run's video-only MP4: from the segment cache, or rendered into it
    (the same key as in `render`, so the MP4 and the HLS outputs share their runs)."""
    context = cache_context(config)
    return _cached_run(run, profile, cache, context, work, "run.mp4", config)[0]


def warm(
    plan: RenderPlan,
    cache: SegmentCache,
    *,
    preview: bool = False,
    config: RenderConfig = DEFAULT,
) -> tuple[int, int]:
    """Render the plan's static runs (and audio blocks) into the cache: what every recipient
    shares.

    Returns (static runs, of which already cached). Run before fanning a batch out, so that
    parallel workers find the shared segments instead of each rendering them. `plan` is a
    job's (localized by `steps.make_job`).
    """
    profile = EncodingProfile.for_canvas(plan.canvas, preview=preview, config=config)
    runs = plan_runs(plan, profile, split=True)
    static = [r for r in runs if not r.personal]
    context = cache_context(config)
    work = Path(tempfile.mkdtemp(prefix="reel-warm-", dir=config.scratch()))
    hits = 0
    try:
        for i, run in enumerate(static):
            name = f"seg_{i:04d}.mp4"
            hits += _cached_run(run, profile, cache, context, work, name, config)[1]
        # And the audio blocks no voice line can reach (the plan is not spoken: a line may
        # take its whole window). A line that extends its scene moves what follows it: the
        # renders that need those blocks make them.
        track = audio.plan_track(plan, sum(r.frames for r in runs) / profile.fps, profile, context)
        silent = [i for i, block in enumerate(track.blocks) if not block.voiced]
        audio.blocks(plan, track, cache, work, config, silent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(static), hits


def render(
    plan: RenderPlan,
    out: Path,
    *,
    poster: Path | None = None,
    preview: bool = False,
    cache: SegmentCache | None = None,
    progress: ProgressFn | None = None,
    config: RenderConfig = DEFAULT,
    speech: SpeechSynth | None = None,
) -> RenderResult:
    """Render `plan` to `out` (MP4) and optionally a poster JPEG.

    With `cache`, static and variable runs are looked up by content key and only the missing
    ones are rendered; without it, the whole video is rendered in a single pass.
    Outputs appear atomically: on any failure nothing is left under `out` or `poster`.
    `plan` is localized (render/localize.py): its URLs from data fetched, its media checked.
    Rendering does no network I/O: a URL left in the plan is refused here, naming its field.
    """
    plan = localize(plan)  # no fetcher: checks media (a no-op once done), refuses URLs
    out = out.resolve()
    poster = poster.resolve() if poster else None
    work = Path(tempfile.mkdtemp(prefix="reel-", dir=config.scratch()))
    try:
        # Voice lines spoken (from the cache when said before) before the timeline is cut:
        # a line that makes its scene grow moves everything after it.
        clips = cache.store if cache is not None else LocalBlobStore(work / "voice")
        plan = speak(plan, speech, clips, work / "clips")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    profile = EncodingProfile.for_canvas(plan.canvas, preview=preview, config=config)
    runs = plan_runs(plan, profile, split=cache is not None)
    steps = len(runs) + 2 + (1 if poster else 0)
    tmp_out = _atomic_target(out)
    tmp_poster = _atomic_target(poster) if poster else None
    context = cache_context(config) if cache else {}
    hits = 0
    frames = sum(r.frames for r in runs)
    total = frames / profile.fps
    track = audio.plan_track(plan, total, profile, context or cache_context(config))
    # The audio track does not depend on the video: it is made while the segments encode.
    background = ThreadPoolExecutor(max_workers=1)
    try:
        # In this context: the audio blocks are pinned in the render's lease (render/disk.py).
        audio_job = background.submit(
            contextvars.copy_context().run, audio.track_file, plan, track, cache, work, config
        )
        names = []
        for i, run in enumerate(runs):
            name = f"seg_{i:04d}.mp4"
            if cache is None:
                render_run(run, profile, work, work / name, config)
            else:
                stored, hit = _cached_run(run, profile, cache, context, work, name, config)
                hits += hit
                # The concat demuxer's safe mode only takes plain relative names.
                (work / name).symlink_to(stored)
            names.append(name)
            if progress:
                progress("segments", i + 1, steps)
        (work / "segments.txt").write_text("".join(f"file '{n}'\n" for n in names))
        sound = audio_job.result()
        if progress:
            progress("audio", len(runs) + 1, steps)
        priming = track.frame_seconds
        args = mux_args("segments.txt", str(sound), total, str(tmp_out), priming)
        ff.run(args, config=config, cwd=work)
        if progress:
            progress("mux", len(runs) + 2, steps)
        if poster and tmp_poster:
            at = min(plan.poster_time, max(0.0, total - 1 / profile.fps))
            ff.run(poster_args(str(tmp_out), at, str(tmp_poster)), config=config)
            tmp_poster.replace(poster)
            if progress:
                progress("poster", steps, steps)
        tmp_out.replace(out)
        return RenderResult(out, poster, frames, total, len(runs), hits, plan)
    finally:
        background.shutdown(wait=True)
        for tmp in (tmp_out, tmp_poster):
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
