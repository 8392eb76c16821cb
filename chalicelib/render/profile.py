"""The one fixed encoding profile, so segments rendered apart can be joined by stream copy."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.settings import get_settings
from chalicelib.template.model import Canvas

PREVIEW_WIDTH = 320
PREVIEW_FPS = 10


@dataclass(frozen=True)
class EncodingProfile:
    """Codec parameters shared by every segment of a video (part of every cache key)."""

    width: int
    height: int
    fps: int
    canvas_width: int  # the template's width: pixel sizes in templates scale by width/canvas_width
    preset: str = "veryfast"
    crf: int = 20
    gop_seconds: int = 2  # an IDR every 2 s, and at every segment start (each is its own encode)
    audio_rate: int = 48000
    audio_bitrate: str = "128k"
    aac_coder: str = "twoloop"  # ffmpeg's default and best; "fast" for previews
    threads: int = 0

    @property
    def scale(self) -> float:
        """Output pixels per template pixel (templates are authored in canvas pixels)."""
        return self.width / self.canvas_width

    @classmethod
    def for_canvas(cls, canvas: Canvas, *, preview: bool = False) -> EncodingProfile:
        """The full-quality profile of a canvas, or the low-resolution, low-rate preview one."""
        settings = get_settings()
        if preview:
            width = min(PREVIEW_WIDTH, canvas.width)
            height = max(2, round(canvas.height * width / canvas.width / 2) * 2)
            return cls(
                width=width,
                height=height,
                fps=min(canvas.fps, PREVIEW_FPS),
                preset="ultrafast",
                crf=30,
                audio_bitrate="64k",
                aac_coder="fast",
                threads=settings.ffmpeg_threads,
                canvas_width=canvas.width,
            )
        return cls(
            width=canvas.width,
            height=canvas.height,
            fps=canvas.fps,
            preset=settings.x264_preset,
            crf=settings.x264_crf,
            threads=settings.ffmpeg_threads,
            canvas_width=canvas.width,
        )

    def frames(self, seconds: float) -> int:
        """Whole frames in `seconds` at this profile's rate (the timeline is frame-quantized)."""
        return max(1, round(seconds * self.fps))

    def video_args(self) -> dict[str, object]:
        """ffmpeg output options of a video-only segment."""
        gop = self.gop_seconds * self.fps
        return {
            "c:v": "libx264",
            "preset": self.preset,
            "crf": self.crf,
            "pix_fmt": "yuv420p",
            "profile:v": "high",
            "r": self.fps,
            "fps_mode": "cfr",
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": 0,
            "threads": self.threads,
            "video_track_timescale": self.fps * 1000,
            "fflags": "+bitexact",
            "flags:v": "+bitexact",
            "map_metadata": -1,
            "an": None,
        }
