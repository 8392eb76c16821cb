"""Probing rendered media in tests with PyAV (the static ffmpeg has no ffprobe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass
class Probe:
    frames: int
    duration: float
    width: int
    height: int
    pix_fmt: str
    video_codec: str
    audio_codec: str | None
    fps: float


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = sum(1 for _ in c.decode(video=0))
        return Probe(
            frames=frames,
            duration=float(c.duration or 0) / 1_000_000,
            width=v.codec_context.width,
            height=v.codec_context.height,
            pix_fmt=str(v.codec_context.pix_fmt),
            video_codec=v.codec_context.name,
            audio_codec=a.codec_context.name if a else None,
            fps=float(v.average_rate or 0),
        )


def frame_at(path: Path, index: int) -> np.ndarray:
    """The RGB pixels of frame `index`."""
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {index}")


def ssim_per_frame(a: Path, b: Path, scratch: Path) -> list[float]:
    """Per-frame SSIM ('All') of two videos, by ffmpeg's own ssim filter."""
    from chalicelib.render import ffmpeg as ff

    stats = scratch / "ssim.log"
    ff.run(["-i", str(a), "-i", str(b), "-lavfi", "ssim=stats_file=ssim.log", "-f", "null", "-"],
           cwd=scratch)  # fmt: skip
    values = []
    for line in stats.read_text().splitlines():
        fields = dict(part.split(":", 1) for part in line.split() if ":" in part)
        values.append(float(fields["All"]))
    return values


def garble_frames(video: Path) -> None:
    """Overwrite the coded frames (the `mdat` box) with garbage, keeping every box intact: a
    file that passes the structural checks and that only decoding finds broken."""
    data = bytearray(video.read_bytes())
    at = data.index(b"mdat")
    end = at - 4 + int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : end] = b"\xab" * (end - at - 4)
    video.write_bytes(bytes(data))
