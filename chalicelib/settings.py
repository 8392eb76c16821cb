"""Every environment variable Reel reads, in one pydantic-settings object."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Reel's settings; each field is `REEL_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="REEL_", extra="ignore")

    ffmpeg: str | None = Field(
        default=None, description="Path of the ffmpeg binary; default: imageio-ffmpeg's build"
    )
    render_timeout: float = Field(default=600.0, gt=0, description="Seconds per ffmpeg run")
    work_dir: Path | None = Field(default=None, description="Scratch directory for renders")
    x264_preset: str = Field(default="veryfast", description="libx264 preset of the profile")
    x264_crf: int = Field(default=20, ge=0, le=51)
    ffmpeg_threads: int = Field(default=0, ge=0, description="0 lets ffmpeg choose")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "reel",
        description="Local segment cache (the BlobStore of rendered segments)",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
