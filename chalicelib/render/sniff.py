"""What a media file is, by its bytes and never its name; and whether a render may open it."""

from __future__ import annotations

import struct
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

from chalicelib.errors import AssetError
from chalicelib.render.raster import MAX_IMAGE_PIXELS

Kind = Literal["image", "video", "audio"]

#: How many leading bytes `sniff` and `kind_error` need to decide.
SNIFF_BYTES = 64


def sniff(head: bytes) -> tuple[str, str] | None:
    """(family, extension) of a media file from its first bytes; None when unrecognised.
    Families: image, video (MP4/MOV or WebM/Matroska), audio, mp4 (ftyp: video or audio)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "mp4", ".m4a"
        return "mp4", ".mov" if brand == b"qt  " else ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".webm" if b"webm" in head else ".mkv"
    if head.startswith(b"ID3"):
        return "audio", ".mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", ".wav"
    if head.startswith(b"OggS"):
        return "audio", ".ogg"
    if head.startswith(b"fLaC"):
        return "audio", ".flac"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 is AAC in ADTS.
        return "audio", ".aac" if head[1] & 0x06 == 0 else ".mp3"
    return None


def _fits(family: str, kind: Kind) -> bool:
    return family == kind or (family == "mp4" and kind in ("video", "audio"))


def describe_bytes(head: bytes) -> str:
    """What unrecognised content looks like, in words (for the error)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist (#EXTM3U)"
    if text.startswith(b"ffconcat") or text.startswith(b"file "):
        return "an ffmpeg concat script"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing (not accepted: it can reference other files)"
    if text.startswith(b"<"):
        return "XML or HTML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if not head:
        return "empty"
    return f"unrecognised content (starting {head[:8].hex()})"


def kind_error(head: bytes, kind: Kind) -> str | None:
    """Why content starting with `head` is not of `kind` ('is not an image…'), or None."""
    found = sniff(head)
    if found is None:
        return f"is not {_article(kind)} Reel accepts: it is {describe_bytes(head)}"
    family, ext = found
    if not _fits(family, kind):
        return f"is not {_article(kind)}: it is a {ext.lstrip('.').upper()} {family} file"
    return None


def _article(kind: Kind) -> str:
    return {"image": "an image", "video": "a video", "audio": "an audio file"}[kind]


def _mp4_problem(path: Path, size: int) -> str | None:
    """Walk the top-level boxes of an MP4/MOV: a box running past the end of the file, or no
    `moov` box, is a truncated or unfinished file ffmpeg would fail on mid-render."""
    seen: set[bytes] = set()
    offset = 0
    with path.open("rb") as fh:
        for _ in range(10_000):  # a real file has a handful of top-level boxes
            if offset >= size:
                break
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return f"is truncated: {size - offset} stray bytes at its end"
            length, box = struct.unpack(">I4s", header[:8])
            if length == 1:
                if len(header) < 16:
                    return "is truncated inside a box header"
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:
                length = size - offset  # the last box runs to the end of the file
            if length < 8:
                return f"is corrupt: a box of {length} bytes at offset {offset}"
            if offset + length > size:
                name = box.decode("latin-1")
                return (
                    f"is truncated: its {name!r} box needs {length:,} bytes, "
                    f"only {size - offset:,} are there"
                )
            seen.add(box)
            offset += length
        else:
            return "has too many boxes to be a media file"
    if b"moov" not in seen:
        return "has no 'moov' box: it is truncated or was never finished"
    return None


def _declared_size(head: bytes) -> tuple[int, int] | None:
    """The size a PNG or GIF header declares (read before Pillow, to name it in the error)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    return None


def _image_problem(path: Path, head: bytes) -> str | None:
    """Read the image's header (no pixels): something Pillow reads, and not a bomb."""
    declared = _declared_size(head)
    if declared is not None and declared[0] * declared[1] > MAX_IMAGE_PIXELS:
        w, h = declared
        return f"is {w}×{h}: over {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"is too large: over {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"
    except UnidentifiedImageError:
        return "is not an image Reel can read"
    except OSError as exc:
        return f"cannot be read: {exc}"
    if w * h > MAX_IMAGE_PIXELS:
        return f"is {w}×{h}: over {MAX_IMAGE_PIXELS:,} pixels"
    return None


@lru_cache(maxsize=1024)
def _media_problem(path: str, size: int, mtime_ns: int, kind: Kind) -> str | None:
    p = Path(path)
    if size == 0:
        return "is empty"
    with p.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if (problem := kind_error(head, kind)) is not None:
        return problem
    family, _ = sniff(head) or ("", "")
    if family == "image":
        return _image_problem(p, head)
    if family == "mp4":
        return _mp4_problem(p, size)
    return None


def check_media(path: Path, kind: Kind, *, field: str, name: str | None = None) -> None:
    """Refuse a media file that is not of `kind` (by its bytes, never its name), is a
    decompression bomb, or is visibly truncated. Memoized while the file is unchanged."""
    label = name or path.name
    try:
        st = path.stat()
    except OSError as exc:
        raise AssetError(f"{label}: cannot be read: {exc.strerror}", field=field) from exc
    problem = _media_problem(str(path), st.st_size, st.st_mtime_ns, kind)
    if problem is not None:
        raise AssetError(f"{label} {problem}", field=field)
