"""The render configuration: which ffmpeg, how long a run may take, and the encoder's settings.

Built once from the settings at the edge (bootstrap, the CLI, the handlers) and passed down;
its defaults are the settings' defaults, so a caller that passes nothing renders as a fresh
install does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RenderConfig:
    ffmpeg: str = ""  # the binary; "" → the imageio-ffmpeg static build
    ffmpeg_version: str = ""  # stated where no ffmpeg runs (the API's Lambda); "" → ask it
    timeout: float = 600.0  # seconds per ffmpeg run
    threads: int = 0  # 0 lets ffmpeg choose
    x264_preset: str = "veryfast"
    x264_crf: int = 20
    work_dir: Path | None = None  # scratch of renders; None → the system's temporary folder
    speech: str = ""  # the engine voice lines are spoken by: a voiced video's key names it

    def scratch(self) -> Path | None:
        """The folder renders make their temporary folders in (created), or None."""
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir


DEFAULT = RenderConfig()
