"""Streaming routes: a recipient's HLS playlists (answered at once) and their CMAF chunks
(rendered just in time when missing; static ones and the initialization segments shared under
immutable URLs)."""

from __future__ import annotations

import re
from typing import Any

from chalice.app import Blueprint, Chalice, Response

from chalicelib import bootstrap
from chalicelib.api import handles_errors
from chalicelib.api.operations import BINARY, TOKEN, Media, Operation, Param
from chalicelib.errors import NotFoundError

PLAYLIST = "application/vnd.apple.mpegurl"
MP4 = "video/mp4"  # a CMAF chunk (a fragment) and an initialization segment alike
CHUNK = re.compile(r"^([0-9a-f]{64})\.m4s$")  # a chunk's name: its key
INIT = re.compile(r"^([0-9a-f]{64})\.mp4$")  # an initialization segment's: its key
SHARED = re.compile(r"^([0-9a-f]{64})\.(m4s|mp4)$")  # either, under /hls/s/
RENDITION = re.compile(r"^([0-9]{1,5}p)\.m3u8$")  # a rendition's playlist: 720p.m3u8
MASTER, AUDIO = "index.m3u8", "audio.m3u8"
_PLAYLIST = f"^({re.escape(MASTER)}|{re.escape(AUDIO)}|{RENDITION.pattern.strip('^$')})$"
_CHUNK = Param("name", "the chunk's key", pattern=CHUNK.pattern)
_SHARED = Param("name", "the chunk's or initialization segment's key", pattern=SHARED.pattern)
_TS = Media((MP4,), "a CMAF chunk (fragmented MP4) or initialization segment", BINARY)


class _Blueprint(Blueprint):
    """A blueprint that declares its binary media type to the app it is registered on."""

    def register(self, app: Chalice, options: dict[str, Any]) -> None:
        super().register(app, options)
        if MP4 not in app.api.binary_types:
            app.api.binary_types.append(MP4)


hls = _Blueprint(__name__)


def _playlist(text: str) -> Response:
    # The playlist follows the recipient's data: never cached. The chunks it lists are.
    return Response(
        body=text,
        status_code=200,
        headers={"Content-Type": PLAYLIST, "Cache-Control": "no-store"},
    )


def _chunk(name: str, personal: bool, token: str | None = None) -> Response:
    match = (CHUNK if personal else SHARED).match(name)
    if match is None:
        raise NotFoundError(f"no chunk {name!r}", field="name")
    streams = bootstrap.streams()
    if name.endswith(".mp4"):
        data = streams.init(match.group(1), token=token)
    else:
        data = streams.chunk(match.group(1), personal=personal, token=token)
    scope = "private" if personal else "public"
    return Response(
        body=data,
        status_code=200,
        headers={"Content-Type": MP4, "Cache-Control": f"{scope}, max-age=31536000, immutable"},
    )


@hls.route("/hls/s/{name}")
@Operation(
    "A chunk (or initialization segment) every recipient shares",
    "streams",
    _TS,
    params=(_SHARED,),
    errors=(400, 404, 503),
)
@handles_errors
def static_chunk(name: str) -> Response:
    """A chunk or initialization segment every recipient shares (the same bytes for the same
    key, forever)."""
    return _chunk(name, personal=False)


@hls.route("/hls/{token}/s/{name}")
@Operation(
    "A shared chunk (or initialization segment) reached through a recipient's stream",
    "streams",
    _TS,
    params=(TOKEN, _SHARED),
    errors=(400, 404, 503),
)
@handles_errors
def static_chunk_of(token: str, name: str) -> Response:
    """A shared chunk not stored yet, as a playlist served by an API Lambda lists it: any
    container plans it from the token (on AWS, stored ones are listed by their CDN URL)."""
    return _chunk(name, personal=False, token=token)


@hls.route("/hls/{token}/p/{name}")
@Operation(
    "One of a recipient's personal chunks (rendered just in time)",
    "streams",
    _TS,
    params=(TOKEN, _CHUNK),
    errors=(400, 404, 503),
)
@handles_errors
def personal_chunk(token: str, name: str) -> Response:
    """One of a recipient's personal chunks (its key changes when what shows in it does)."""
    return _chunk(name, personal=True, token=token)


@hls.route("/hls/{token}/{name}")
@Operation(
    "A recipient's playlists: index.m3u8, {height}p.m3u8, audio.m3u8",
    "streams",
    Media((PLAYLIST,), "an HLS playlist"),
    params=(TOKEN, Param("name", "the playlist", pattern=_PLAYLIST)),
    errors=(400, 404),
)
@handles_errors
def playlist(token: str, name: str) -> Response:
    """`index.m3u8` (master: the renditions and the audio), `{height}p.m3u8` (a rendition)
    and `audio.m3u8`: planned from the recipient's current record, rendered or not."""
    streams = bootstrap.streams()
    if name == MASTER:
        return _playlist(streams.master(token))
    if name == AUDIO:
        return _playlist(streams.audio(token))
    if match := RENDITION.match(name):
        return _playlist(streams.media(token, match.group(1)))
    raise NotFoundError(f"no playlist {name!r}", field="name")
