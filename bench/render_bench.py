"""Render benchmark on the demo campaign. Prints one JSON object; never run by the tests.

    python bench/render_bench.py [--recipients N] [--preview-sample K]

For the first N recipients (default 20), one at a time:
- full:  the single-pass reference (no cache);
- cold:  through an empty segment cache (a new one for each recipient);
- warm:  through a cache that already holds the static segments and audio blocks (filled
         by made-up recipients, one per shape of video: locale and scenes, as a batch's first
         render of each shape does), each recipient's personal segments new;
- limit: only encoding the recipient's personal seconds with the same profile (decoded from
         the warm output and re-encoded): the frames of its variable runs, and the audio its
         personal voice lines change (each line and its ducking ramps): what no renderer can
         go below. warm_over_video_limit counts the frames only, as before voices;
- preview: K recipients with --preview, against their full single-pass time;
- audio: apart, the voice line spoken (espeak-ng, in process) and the audio pass (bed and voice
         mixed, ducked, limited, AAC-encoded) of each recipient: cold (every block of the
         track, a fresh cache) and warm (the static blocks cached by the seeds: only the blocks
         the recipient's voice line reaches are encoded).
CPU time counts the ffmpeg child processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.adapters.espeak import EspeakSpeech
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.cli import DEMO_DIR
from chalicelib.data.readers import read_rows
from chalicelib.render import audio
from chalicelib.render import engine as render_engine
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache
from chalicelib.render.engine import cache_context, render
from chalicelib.render.graph import DUCK_RAMP
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import plan_runs
from chalicelib.render.voice import speak
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from chalicelib.template.plan import RenderPlan


def cpu_seconds() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one call."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    fn()
    return cpu_seconds() - cpu, time.perf_counter() - wall


def encode_limit(plan: RenderPlan, video: Path, scratch: Path) -> float:
    """CPU seconds to encode only the variable runs' frames of `video` with the profile."""
    profile = EncodingProfile.for_canvas(plan.canvas)
    cpu = 0.0
    for i, run in enumerate(r for r in plan_runs(plan, profile) if r.personal):
        args = ["-y", "-ss", f"{run.start / profile.fps:.6f}", "-i", str(video),
                "-frames:v", str(run.frames), "-an"]  # fmt: skip
        for key, value in profile.video_args().items():
            if key != "an":
                args += [f"-{key}", str(value)]
        out = str(scratch / f"limit_{i}.mp4")
        cpu += measure(lambda a=[*args, out]: ff.run(a))[0]
    return cpu


def audio_limit(said: RenderPlan, video: Path, scratch: Path) -> float:
    """CPU seconds to encode only the seconds of `video`'s audio a personal voice line changes
    (the line and its ducking ramps), with the profile's AAC settings."""
    profile = EncodingProfile.for_canvas(said.canvas)
    cpu = 0.0
    for i, cue in enumerate(v for v in said.voices if v.personal):
        start = max(0.0, cue.start - DUCK_RAMP)
        seconds = cue.duration / cue.tempo + 2 * DUCK_RAMP
        args = ["-y", "-ss", f"{start:.6f}", "-i", str(video), "-t", f"{seconds:.6f}", "-vn",
                "-c:a", "aac", "-aac_coder", profile.aac_coder, "-b:a", profile.audio_bitrate,
                "-ar", str(profile.audio_rate), "-ac", "2", "-f", "adts"]  # fmt: skip
        out = str(scratch / f"limit_{i}.aac")
        cpu += measure(lambda a=[*args, out]: ff.run(a))[0]
    return cpu


def draw_costs(scratch: Path, frames: int = 30) -> dict[str, float]:
    """CPU milliseconds per frame to draw each motion layer type and write it, as the engine
    does for a frame sequence (a chart while it builds, a Lottie while it plays; an SVG is a
    still: one drawing per layer)."""
    from chalicelib.render import chart, lottie, svg
    from chalicelib.template.model import ChartLayer, LottieLayer

    def per_frame(draw: Callable[[int], Any], count: int) -> float:
        start = time.process_time()  # CPU time: the drawing runs in this process
        with (scratch / "f.rgba").open("wb") as out:  # as the engine writes them: raw RGBA
            for i in range(count):
                out.write(draw(i).tobytes())
        return round((time.process_time() - start) / count * 1000, 2)

    costs = {}
    values = [120, 340, 560, 410]
    for kind in ("bar", "line", "donut", "progress", "counter"):
        layer = ChartLayer(kind=kind, values=values, labels=["W1", "W2", "W3", "W4"], max=600)
        costs[f"chart_{kind}"] = per_frame(
            lambda i, ly=layer: chart.draw(ly, (700, 440), 1.0, chart.progress(i, frames)), frames
        )
    intro = LottieLayer(src=str(DEMO_DIR / "assets" / "intro.json"), size=(560, 280))
    player = lottie.frames(intro, "bench", (560, 280), 30, 61)
    costs["lottie"] = per_frame(player, frames)
    badge = scratch / "badge.svg"
    badge.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100"><rect width="200" '
        'height="100" rx="20" fill="#19b3a6"/><text x="100" y="62" font-size="32" '
        'text-anchor="middle" fill="#fff">{{ first_name }}</text></svg>'
    )
    costs["svg_still"] = per_frame(
        lambda i: svg.svg_image(
            str(badge), {"{{ first_name }}": f"Ann {i}"}, (400, 200), "contain"
        ),
        frames,
    )
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--preview-sample", type=int, default=3)
    args = parser.parse_args()
    lt = load_template(DEMO_DIR / "template.yaml")
    rows = [r.fields for r in read_rows(DEMO_DIR / "recipients.csv") if r.fields]
    plans = [bind(lt, row) for row in rows[: args.recipients]]
    # Seeds: one made-up recipient per shape of video (its locale and its scenes: the offer
    # variant, the chart scene or not), as a batch's first render of each shape makes the
    # statics; their personal values are ones nobody else has.
    shapes: dict[tuple[str, ...], RenderPlan] = {}
    for row, plan in zip(rows, plans, strict=False):
        shape = (plan.locale, *(scene.id for scene in plan.scenes))
        if shape not in shapes:
            made_up = {"first_name": "Seed", "renewal_date": "2031-01-01", "monthly_fee": "1"}
            if row.get("usage_gb"):
                made_up |= {"usage_gb": "1;2;3;4", "api_requests": "1"}
            shapes[shape] = bind(lt, {**row, "avatar": "", **made_up})
    seeds = list(shapes.values())
    n = len(plans)
    keys = ("full_cpu", "full_wall", "cold_cpu", "warm_cpu", "warm_wall", "limit_cpu")
    keys += ("limit_video_cpu", "limit_audio_cpu")
    keys += ("speak_cpu", "audio_cpu", "audio_warm_cpu", "audio_personal_s")
    speech = EspeakSpeech()
    stats: dict[str, list[float]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm = SegmentCache(LocalBlobStore(tmp / "warm"))
        for i, seed in enumerate(seeds):  # the statics, as a batch's first renders make them
            render(seed, tmp / f"seed_{i}.mp4", cache=warm, speech=speech)
        # The audio apart, warm: the seeds' blocks (their static ones) and nothing else.
        shutil.copytree(tmp / "warm" / "audio", tmp / "warm_audio" / "audio")
        warm_audio = SegmentCache(LocalBlobStore(tmp / "warm_audio"))
        # Count the Lottie pictures drawn by the renders that follow: a static Lottie (the
        # intro) lives in a cached run, so the warm renders must draw none.
        drawn = {"lottie": 0, "phase": "full"}
        frames_of = render_engine.lottie.frames

        def counting(*a: Any, **kw: Any) -> Callable[[int], Any]:
            picture = frames_of(*a, **kw)

            def draw(i: int) -> Any:
                if drawn["phase"] == "warm":
                    drawn["lottie"] += 1
                return picture(i)

            return draw

        render_engine.lottie.frames = counting
        for i, plan in enumerate(plans):
            cpu, wall = measure(lambda p=plan, i=i: render(p, tmp / f"full_{i}.mp4", speech=speech))
            stats["full_cpu"].append(cpu)
            stats["full_wall"].append(wall)
            cold = SegmentCache(LocalBlobStore(tmp / f"cold_{i}"))  # empty for each recipient
            cpu, _ = measure(
                lambda p=plan, i=i, c=cold: render(p, tmp / f"cold_{i}.mp4", cache=c, speech=speech)
            )
            stats["cold_cpu"].append(cpu)
            drawn["phase"] = "warm"
            cpu, wall = measure(
                lambda p=plan, i=i: render(p, tmp / f"warm_{i}.mp4", cache=warm, speech=speech)
            )
            drawn["phase"] = "full"
            stats["warm_cpu"].append(cpu)
            stats["warm_wall"].append(wall)
            stats["limit_video_cpu"].append(encode_limit(plan, tmp / f"warm_{i}.mp4", tmp))
            # The audio apart: a fresh store, so the line is spoken and the track mixed anew.
            fresh = SegmentCache(LocalBlobStore(tmp / f"audio_{i}"))
            before = cpu_seconds()
            said = speak(plan, speech, fresh.store, tmp / f"clips_{i}")
            stats["speak_cpu"].append(cpu_seconds() - before)
            aprof = EncodingProfile.for_canvas(said.canvas)
            total = sum(r.frames for r in plan_runs(said, aprof)) / aprof.fps
            track = audio.plan_track(said, total, aprof, cache_context())
            before = cpu_seconds()
            audio.track_file(said, track, fresh, tmp)
            stats["audio_cpu"].append(cpu_seconds() - before)
            stats["limit_audio_cpu"].append(audio_limit(said, tmp / f"warm_{i}.mp4", tmp))
            stats["limit_cpu"].append(stats["limit_video_cpu"][-1] + stats["limit_audio_cpu"][-1])
            said = speak(plan, speech, warm_audio.store, tmp / f"clips_{i}")
            before = cpu_seconds()
            audio.track_file(said, track, warm_audio, tmp)
            stats["audio_warm_cpu"].append(cpu_seconds() - before)
            personal = sum(b.end - b.first for b in track.blocks if b.personal)
            stats["audio_personal_s"].append(personal * audio.FRAME / aprof.audio_rate)
            print(f"recipient {i + 1}/{n} done", file=sys.stderr)
        previews = []
        for i, plan in enumerate(plans[: args.preview_sample]):
            _, wall = measure(
                lambda p=plan, i=i: render(p, tmp / f"prev_{i}.mp4", preview=True, speech=speech)
            )
            previews.append(stats["full_wall"][i] / wall)
        costs = draw_costs(tmp)
    mean = {k: statistics.mean(v) for k, v in stats.items()}
    profile = EncodingProfile.for_canvas(plans[0].canvas)
    variable_s = statistics.mean(
        sum(r.frames for r in plan_runs(p, profile) if r.personal) / profile.fps for p in plans
    )
    print(
        json.dumps(
            {
                "bench": "render",
                "recipients": n,
                "video_s": round(statistics.mean(p.duration for p in plans), 2),
                "variable_s_per_recipient": round(variable_s, 2),
                "full_cpu_s_per_recipient": round(mean["full_cpu"], 3),
                "full_wall_s_per_recipient": round(mean["full_wall"], 3),
                "cold_cpu_s_per_recipient": round(mean["cold_cpu"], 3),
                "warm_cpu_s_per_recipient": round(mean["warm_cpu"], 3),
                "warm_wall_s_per_recipient": round(mean["warm_wall"], 3),
                "limit_cpu_s_per_recipient": round(mean["limit_cpu"], 3),
                "limit_video_cpu_s_per_recipient": round(mean["limit_video_cpu"], 3),
                "limit_audio_cpu_s_per_recipient": round(mean["limit_audio_cpu"], 3),
                "warm_over_full": round(mean["warm_cpu"] / mean["full_cpu"], 3),
                "warm_over_limit": round(mean["warm_cpu"] / mean["limit_cpu"], 3),
                "warm_over_video_limit": round(mean["warm_cpu"] / mean["limit_video_cpu"], 3),
                "preview_speedup": round(statistics.mean(previews), 1) if previews else None,
                "speak_cpu_s_per_recipient": round(mean["speak_cpu"], 3),
                "audio_cpu_s_per_recipient": round(mean["audio_cpu"], 3),
                "audio_warm_cpu_s_per_recipient": round(mean["audio_warm_cpu"], 3),
                "audio_personal_s_per_recipient": round(mean["audio_personal_s"], 2),
                "charted_recipients": sum(
                    any(s.id == "your_month" for s in p.scenes) for p in plans
                ),
                "draw_ms_per_frame": costs,
                "lottie_frames_drawn_in_warm_renders": drawn["lottie"],
                "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                f"Python {platform.python_version()}",
                "ffmpeg": ff.ffmpeg_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
