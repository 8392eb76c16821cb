"""Rendering: segment planning, ffmpeg graphs, text, audio and assembly."""
