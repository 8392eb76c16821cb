"""The one fixed encoding profile, so segments rendered apart can be joined by stream copy."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.render.config import DEFAULT, RenderConfig
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
    def for_canvas(
        cls, canvas: Canvas, *, preview: bool = False, config: RenderConfig = DEFAULT
    ) -> EncodingProfile:
        """The full-quality profile of a canvas, or the low-resolution, low-rate preview one."""
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
                threads=config.threads,
                canvas_width=canvas.width,
            )
        return cls(
            width=canvas.width,
            height=canvas.height,
            fps=canvas.fps,
            preset=config.x264_preset,
            crf=config.x264_crf,
            threads=config.threads,
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


@dataclass(frozen=True)
class StreamProfile(EncodingProfile):
    """An HLS rendition's profile: the full-quality one at a given size, without B-frames.

    HLS players (hls.js) time a stream from its first decode timestamp; with B-frames the
    first frame is presented a frame or two later, a hole they must jump at the start. Its
    own field keeps its runs apart from the MP4's in the segment cache (their bytes differ).
    """

    bframes: int = 0

    @classmethod
    def rendition(
        cls, canvas: Canvas, height: int, config: RenderConfig = DEFAULT
    ) -> StreamProfile:
        """The rendition `height` lines tall (the canvas's own size when not smaller)."""
        base = EncodingProfile.for_canvas(canvas, config=config)
        fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
        if height < canvas.height:
            fields["height"] = max(2, height // 2 * 2)
            fields["width"] = max(2, round(canvas.width * fields["height"] / canvas.height / 2) * 2)
        return cls(**fields)

    def video_args(self) -> dict[str, object]:
        return {**super().video_args(), "bf": self.bframes}
