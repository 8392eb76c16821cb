"""Reel: personalized video from a template and a data record."""

from __future__ import annotations

__version__ = "0.1.0"
# Bumped when a change to the engine changes output pixels; part of every cache key.
ENGINE_VERSION = "1"
