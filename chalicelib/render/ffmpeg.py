"""The one place Reel runs ffmpeg: finds the pinned binary, runs argument lists with a timeout."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from chalicelib.errors import RenderError
from chalicelib.render.config import DEFAULT, RenderConfig

STDERR_TAIL_LINES = 20
# Every input ffmpeg opens: local files only (a crafted playlist or concat list cannot reach
# the network or another protocol), and bounded probing of what a file contains.
PROBE_SIZE = 5_000_000  # bytes read to find an input's streams
ANALYZE_DURATION = 5_000_000  # microseconds of media analysed for them
FILE_ONLY: dict[str, object] = {
    "protocol_whitelist": "file",
    "probesize": PROBE_SIZE,
    "analyzeduration": ANALYZE_DURATION,
}
INPUT_GUARDS = {f"-{option}": str(value) for option, value in FILE_ONLY.items()}


def ffmpeg_path(config: RenderConfig = DEFAULT) -> str:
    """THE ffmpeg of the project: the configured one (`REEL_FFMPEG`), else the imageio-ffmpeg
    static build."""
    if config.ffmpeg:
        return config.ffmpeg
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@lru_cache(maxsize=4)
def _version_of(path: str) -> str:
    out = subprocess.run(
        [path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    first = out.splitlines()[0] if out else ""
    match = re.match(r"ffmpeg version (\S+)", first)
    return match.group(1) if match else first.strip() or "unknown"


def ffmpeg_version(config: RenderConfig = DEFAULT) -> str:
    """The version string of the ffmpeg in use (part of every segment cache key).

    `REEL_FFMPEG_VERSION` states it where there is no ffmpeg to ask: the API's Lambda plans
    (and so computes cache keys) without one; the render image has the binary itself."""
    return config.ffmpeg_version or _version_of(ffmpeg_path(config))


def _tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(stderr.strip().splitlines()[-lines:])


def guard_inputs(args: Sequence[str]) -> list[str]:
    """`args` with INPUT_GUARDS before every `-i` whose own options do not set them already
    (the graph builders set them; this is the boundary's guarantee for any other caller)."""
    out: list[str] = []
    given: set[str] = set()  # options seen since the previous input
    i = 0
    while i < len(args):
        if args[i] == "-i" and i + 1 < len(args):
            for option, value in INPUT_GUARDS.items():
                if option not in given:
                    out += [option, value]
            out += ["-i", args[i + 1]]
            given = set()
            i += 2
            continue
        out.append(args[i])
        given.add(args[i])
        i += 1
    return out


def run(
    args: Sequence[str],
    *,
    config: RenderConfig = DEFAULT,
    timeout: float | None = None,
    cwd: Path | None = None,
    loglevel: str = "error",
) -> str:
    """Run ffmpeg with `args` (without the binary); return stderr, or raise RenderError.

    Inputs are read with the `file` protocol only and bounded probing (`guard_inputs`), so a
    crafted playlist or concat list cannot make ffmpeg reach the network or other protocols.
    """
    limit = timeout if timeout is not None else config.timeout
    cmd = [
        ffmpeg_path(config),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        loglevel,
        *guard_inputs(args),
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limit,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise RenderError(f"ffmpeg timed out after {limit:g}s", _tail(stderr)) from exc
    except OSError as exc:
        raise RenderError(f"cannot run ffmpeg at {cmd[0]}: {exc.strerror}") from exc
    if proc.returncode != 0:
        raise RenderError(f"ffmpeg failed with exit code {proc.returncode}", _tail(proc.stderr))
    return proc.stderr


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says about a media file (ffmpeg has no ffprobe here, so we parse `-i`)."""

    duration: float | None
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: .*?, (\d{2,5})x(\d{2,5})")


def probe(path: Path, *, config: RenderConfig = DEFAULT, timeout: float = 30.0) -> MediaInfo:
    """Read duration and streams of `path` by asking ffmpeg to open it (no decode)."""
    cmd = [ffmpeg_path(config), "-hide_banner", "-nostdin", *guard_inputs(["-i", str(path)])]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"probing {path.name} timed out") from exc
    err = proc.stderr
    if "Invalid data found" in err or "No such file" in err or "Stream #" not in err:
        raise RenderError(f"cannot read media {path.name}", _tail(err, 3))
    duration = None
    if match := _DURATION.search(err):
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video = _VIDEO.search(err)
    return MediaInfo(
        duration=duration,
        has_video=video is not None,
        has_audio=re.search(r"Stream #\S+.*?: Audio:", err) is not None,
        width=int(video.group(1)) if video else None,
        height=int(video.group(2)) if video else None,
    )


@dataclass(frozen=True)
class Loudness:
    """EBU R128 figures of a programme, as ffmpeg's `ebur128` filter measures them."""

    integrated: float  # LUFS; -70 for silence
    true_peak: float  # dBTP


_LOUDNESS_I = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf) LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf) dBFS")


def loudness(args: Sequence[str], *, config: RenderConfig = DEFAULT) -> Loudness:
    """Run `args` (a graph ending in `ebur128=peak=true` written to the null muxer) and read
    the summary ffmpeg prints at the `info` level."""
    err = run(args, config=config, loglevel="info")
    i, tp = _LOUDNESS_I.search(err), _TRUE_PEAK.search(err)
    if i is None or tp is None:
        raise RenderError("ffmpeg printed no loudness summary", _tail(err))

    def number(text: str) -> float:
        return -70.0 if text == "-inf" else max(-70.0, float(text))

    return Loudness(number(i.group(1)), number(tp.group(1)))
