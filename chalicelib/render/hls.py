"""HLS from the segment plan: runs cut into ~2 s CMAF chunks, playlists, and the slicing.

Each run of `segments.plan_runs` is encoded on its own with a keyframe at its start and every
`gop_seconds` after (the fixed profile), so cutting it every `gop_seconds` from its start gives
chunks that each begin on a keyframe and never straddle a static/personal boundary. A chunk is
keyed by its run's content key, its place on the timeline and its frames: a static chunk has
the same key for every recipient whose timeline puts it at the same place, a personal one
changes only when what shows in it changes. The audio is one track over the whole timeline
(one per audio key, shared when identical), sliced into its own ~2 s chunks by stream copy:
an audio rendition (EXT-X-MEDIA), never AAC cut and re-encoded per chunk.

Chunks are CMAF fragments (fragmented MP4: a `moof` and its `mdat`), not MPEG-TS. Each group
is sliced by its own ffmpeg run; MPEG-TS chunks muxed apart restart their continuity counters
at 0, which strict demuxers (ffmpeg's HLS demuxer among them) report as a corrupt packet at
every chunk boundary. Counters that run on across chunks would make a static chunk's bytes
depend on the personal chunks before it, so it could no longer be shared. A fragment carries no
counter: its place on the timeline is its `tfdt`, written from the run's own timestamps, so
fragments muxed apart follow each other cleanly. The codec configuration lives in one
initialization segment per rendition (`EXT-X-MAP`), keyed by the encoding profile and shared by
every stream of that profile; every group checks that its own matches the stored one.

Planning here is pure (milliseconds: no rendering); `render_group` and `render_audio` are the
two passes that make chunks, through the one ffmpeg runner.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from chalicelib.errors import RenderError
from chalicelib.render import engine
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.profile import EncodingProfile, StreamProfile
from chalicelib.render.segments import Run, content_key, plan_runs, run_key, timeline, total_frames
from chalicelib.template.model import Canvas
from chalicelib.template.plan import RenderPlan

FORMAT = "hls-cmaf-1"  # part of every chunk key: bump when the slicing changes
LOW_HEIGHT = 360
# Every chunk's timestamps are shifted by this much: the AAC priming packet starts a frame
# before zero, and a fragment's decode time cannot be negative. Players start at the first
# timestamp.
TS_OFFSET = 10.0
AUDIO_CHUNK_SECONDS = 2
AAC_PRIMING = 1024  # samples ffmpeg's AAC encoder puts before the first one


@dataclass(frozen=True)
class Rendition:
    """One variant of the stream: a size, its profile, and its nominal bandwidth."""

    name: str  # e.g. "720p": also its media playlist's name
    profile: EncodingProfile

    @property
    def bandwidth(self) -> int:
        """Peak bits per second announced in the master playlist (an estimate: the chunks do
        not exist yet when it is written), audio included."""
        p = self.profile
        return round(p.width * p.height * p.fps * 0.1) + 128_000


def renditions(canvas: Canvas, config: RenderConfig = DEFAULT) -> tuple[Rendition, ...]:
    """The canvas size, and a smaller one: 360 lines, or half the canvas when it is small."""
    low = LOW_HEIGHT if canvas.height > LOW_HEIGHT else canvas.height // 2
    heights = (canvas.height, max(2, low // 2 * 2))
    return tuple(
        Rendition(f"{h}p", StreamProfile.rendition(canvas, h, config))
        for h in dict.fromkeys(heights)
    )


@dataclass(frozen=True)
class Chunk:
    """One media segment of a playlist."""

    key: str
    start: float  # seconds on the timeline
    duration: float
    personal: bool
    group: str  # the key of the group (render job) that makes it

    @property
    def blob(self) -> str:
        return chunk_blob(self.key, self.personal)


@dataclass(frozen=True)
class InitSegment:
    """A rendition's initialization segment (`EXT-X-MAP`): the codec configuration its chunks
    share. Keyed by the encoding profile alone, so every stream of that profile shares it."""

    key: str
    group: str  # the key of a group that stores it (its rendition's first, or the audio)

    @property
    def blob(self) -> str:
        return init_blob(self.key)


@dataclass(frozen=True)
class ChunkGroup:
    """A run in one rendition: rendered (or taken from the run cache) and sliced in one go."""

    key: str
    run: Run
    profile: EncodingProfile
    chunks: tuple[Chunk, ...]
    cuts: tuple[int, ...]  # run-local frames where chunks after the first begin
    init: str  # the key of the rendition's initialization segment
    writes_init: bool  # the rendition's first group stores it; the others check against it

    @property
    def personal(self) -> bool:
        return self.run.personal


@dataclass(frozen=True)
class AudioGroup:
    """The audio track of a timeline, sliced into chunks (shared when the key is the same)."""

    key: str
    total: float
    profile: EncodingProfile
    chunks: tuple[Chunk, ...]
    init: str  # the key of the audio's initialization segment


@dataclass(frozen=True)
class StreamPlan:
    """What one recipient's stream is made of, per rendition, in playback order."""

    frames: int
    fps: int
    renditions: tuple[Rendition, ...]
    groups: dict[str, tuple[ChunkGroup, ...]]  # by rendition name
    audio: AudioGroup
    inits: dict[str | None, InitSegment]  # by rendition name (None: the audio's)

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def chunks(self, rendition: str) -> list[Chunk]:
        return [c for g in self.groups[rendition] for c in g.chunks]

    def rendition(self, name: str) -> Rendition | None:
        return next((r for r in self.renditions if r.name == name), None)


def chunk_blob(key: str, personal: bool) -> str:
    """Where a chunk is kept (beside the segment cache's runs). Personal chunks live apart,
    so the shared, public URL of static chunks can never serve one."""
    return f"hls/{'p' if personal else 's'}/{key[:2]}/{key}.m4s"


def init_blob(key: str) -> str:
    """Where an initialization segment is kept: with the static chunks (nothing personal)."""
    return f"hls/s/{key[:2]}/{key}.mp4"


def init_key(kind: str, profile: EncodingProfile, context: dict[str, str]) -> str:
    """The initialization segment of `kind` ("video" or "audio") for a profile."""
    spec = {"format": FORMAT, "init": kind, "profile": asdict(profile), "context": context}
    return content_key(spec)


def chunk_cuts(frames: int, gop: int) -> list[tuple[int, int]]:
    """A run of `frames` cut into [a, b) pieces of at most `gop` frames, from its start."""
    return [(a, min(a + gop, frames)) for a in range(0, frames, gop)]


def _group(
    run: Run, profile: EncodingProfile, context: dict[str, str], init: str, first: bool
) -> ChunkGroup:
    rkey = run_key(run, profile, file_digest, context)
    spec = {"format": FORMAT, "run": rkey, "at": run.start, "offset": TS_OFFSET}
    key = content_key(spec)
    fps = profile.fps
    pieces = chunk_cuts(run.frames, profile.gop_seconds * fps)
    chunks = tuple(
        Chunk(
            key=content_key({**spec, "chunk": [a, b]}),
            start=(run.start + a) / fps,
            duration=(b - a) / fps,
            personal=run.personal,
            group=key,
        )
        for a, b in pieces
    )
    cuts = tuple(a for a, _ in pieces[1:])
    return ChunkGroup(key, run, profile, chunks, cuts, init, first)


def audio_cuts(total: float) -> list[tuple[float, float]]:
    """The audio track's chunks: [start, end) every AUDIO_CHUNK_SECONDS (the last shorter)."""
    n = max(1, math.ceil(total / AUDIO_CHUNK_SECONDS - 1e-6))
    step = AUDIO_CHUNK_SECONDS
    return [(i * step, min((i + 1) * step, total)) for i in range(n)]


def plan_audio(
    plan: RenderPlan,
    total: float,
    profile: EncodingProfile,
    config: RenderConfig = DEFAULT,
    context: dict[str, str] | None = None,
) -> AudioGroup:
    context = context if context is not None else engine.cache_context(config)
    akey = engine.audio_key(plan, total, profile, config)
    spec = {"format": FORMAT, "audio": akey, "offset": TS_OFFSET, "priming": AAC_PRIMING}
    key = content_key(spec)
    chunks = tuple(
        Chunk(content_key({**spec, "chunk": i}), a, b - a, False, key)
        for i, (a, b) in enumerate(audio_cuts(total))
    )
    return AudioGroup(key, total, profile, chunks, init_key("audio", profile, context))


def plan_stream(
    plan: RenderPlan, context: dict[str, str] | None = None, config: RenderConfig = DEFAULT
) -> StreamPlan:
    """A recipient's stream: per rendition, the runs as chunk groups; and the audio. `plan` is
    localized (render/localize.py): its URLs from data fetched, its media checked."""
    context = context if context is not None else engine.cache_context(config)
    variants = renditions(plan.canvas, config)
    groups = {}
    inits: dict[str | None, InitSegment] = {}
    frames = 0
    for r in variants:
        runs = plan_runs(plan, r.profile, split=True)
        init = init_key("video", r.profile, context)
        groups[r.name] = tuple(
            _group(run, r.profile, context, init, i == 0) for i, run in enumerate(runs)
        )
        inits[r.name] = InitSegment(init, groups[r.name][0].key)
        frames = total_frames(timeline(plan, r.profile))
    fps = variants[0].profile.fps
    audio = plan_audio(plan, frames / fps, variants[0].profile, config, context)
    inits[None] = InitSegment(audio.init, audio.key)
    return StreamPlan(frames, fps, variants, groups, audio, inits)


# ── playlists ─────────────────────────────────────────────────────────────────────────────


def media_playlist(entries: Sequence[tuple[float, str]], init_uri: str) -> str:
    """A VOD media playlist of (duration, URI) entries after their initialization segment
    (EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY needs version 6, RFC 8216 7)."""
    target = max(1, math.ceil(max((d for d, _ in entries), default=1) - 1e-3))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri}"',
    ]
    for duration, uri in entries:
        lines += [f"#EXTINF:{duration:.6f},", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(variants: Sequence[Rendition], audio_uri: str) -> str:
    """The master playlist: every rendition (media playlist `{name}.m3u8`) and the audio."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:4",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="main",DEFAULT=YES,AUTOSELECT=YES,'
        f'URI="{audio_uri}"',
    ]
    for r in variants:
        p = r.profile
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={r.bandwidth},RESOLUTION={p.width}x{p.height},"
            f'FRAME-RATE={p.fps:.3f},CODECS="avc1.640028,mp4a.40.2",AUDIO="audio"',
            f"{r.name}.m3u8",
        ]
    return "\n".join(lines) + "\n"


# ── making chunks (the ffmpeg passes) ─────────────────────────────────────────────────────

# One fragmented MP4 per chunk, whose fragment's decode time (`tfdt`) is the chunk's own time:
# `frag_discont` with neither edit list nor a shift to zero keeps the input's timestamps.
_FRAGMENTED = "movflags=+frag_keyframe+empty_moov+default_base_moof+frag_discont" + (
    ":use_editlist=0:avoid_negative_ts=disabled"
)


def _split_args(source: str, stream: str, cut: list[str], pattern: str, offset: float) -> list[str]:
    guards = [x for item in ff.INPUT_GUARDS.items() for x in item]
    args = ["-y", *guards, "-i", source, "-map", stream, "-c", "copy"]
    args += ["-f", "segment", "-segment_format", "mp4", "-segment_format_options", _FRAGMENTED]
    args += ["-avoid_negative_ts", "disabled", "-reset_timestamps", "0", "-fflags", "+bitexact"]
    args += cut or ["-segment_time", "100000"]
    return [*args, "-output_ts_offset", f"{offset:.6f}", "-map_metadata", "-1", pattern]


def split_video_args(source: str, pattern: str, cuts: Sequence[int], offset: float) -> list[str]:
    """Slice a video-only MP4 by stream copy at the keyframes of frames `cuts` into one
    fragmented MP4 each, shifting its timestamps by `offset` seconds (its place on the
    timeline)."""
    cut = ["-segment_frames", ",".join(str(c) for c in cuts)] if cuts else []
    return _split_args(source, "0:v:0", cut, pattern, offset)


def split_audio_args(source: str, pattern: str, cuts: Sequence[float], offset: float) -> list[str]:
    """Slice an AAC track by stream copy at the first packet of each time in `cuts`."""
    cut = ["-segment_times", ",".join(f"{c:g}" for c in cuts)] if cuts else []
    return _split_args(source, "0:a:0", cut, pattern, offset)


def boxes(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The top-level ISO BMFF boxes of `data`: (type, the whole box)."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1 and at + 16 <= len(data):
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        elif size == 0:
            size = len(data) - at
        if size < 8 or at + size > len(data):
            raise RenderError(f"a fragmented MP4 box {kind!r} at byte {at} is truncated")
        yield kind.decode("latin-1"), data[at : at + size]
        at += size


def fragment(data: bytes) -> tuple[bytes, bytes]:
    """A fragmented MP4 file as (initialization segment, media segment): `ftyp`+`moov`, and
    its `moof`+`mdat` pairs. The bitrate box (`btrt`: this run's own figures) is zeroed, so
    every run of a profile has the same initialization segment, byte for byte."""
    init, media = b"", b""
    for kind, box in boxes(data):
        if kind in ("ftyp", "moov"):
            init += box
        elif kind in ("moof", "mdat"):
            media += box
    if not init or not media:
        raise RenderError("the slicing made a chunk without its moov or its fragment")
    at = init.find(b"btrt")
    if at >= 4:  # size(4) 'btrt' bufferSizeDB(4) maxBitrate(4) avgBitrate(4): 0 = unknown
        init = init[: at + 4] + bytes(12) + init[at + 16 :]
    return init, media


def _store(
    chunks: Sequence[Chunk],
    init: str,
    work: Path,
    prefix: str,
    cache: SegmentCache,
    writes_init: bool = True,
) -> None:
    files = sorted(work.glob(f"{prefix}_*.mp4"))
    if len(files) != len(chunks):
        raise RenderError(f"slicing made {len(files)} chunks where {len(chunks)} were planned")
    parts = [fragment(path.read_bytes()) for path in files]
    if len({head for head, _ in parts}) != 1:
        raise RenderError("the chunks of one group differ in their codec configuration")
    head = parts[0][0]
    try:
        stored = cache.store.get_bytes(init_blob(init))
    except KeyError:
        # One writer per stream (its rendition's first group), not every group at once.
        if writes_init:
            cache.store.put_bytes(init_blob(init), head)
    else:
        if stored != head:  # the profile's key should have changed (a new encoder?)
            raise RenderError(
                f"the chunks of group {chunks[0].group[:16]} do not match their "
                f"initialization segment {init[:16]}"
            )
    # In order: the last chunk's presence means the whole group is there.
    for chunk, (_, media) in zip(chunks, parts, strict=True):
        cache.store.put_bytes(chunk.blob, media)


def render_group(
    group: ChunkGroup, cache: SegmentCache, work: Path, config: RenderConfig = DEFAULT
) -> None:
    """Make a group's chunks: its run from the segment cache (or rendered into it), sliced."""
    mp4 = engine.cached_run(group.run, group.profile, cache, work, config)
    offset = TS_OFFSET + group.run.start / group.profile.fps
    args = split_video_args(str(mp4), str(work / "v_%04d.mp4"), group.cuts, offset)
    ff.run(args, config=config)
    _store(group.chunks, group.init, work, "v", cache, group.writes_init)


def render_audio(
    plan: RenderPlan,
    audio: AudioGroup,
    cache: SegmentCache,
    work: Path,
    config: RenderConfig = DEFAULT,
) -> None:
    """Make the audio chunks: the track from the cache (or rendered into it), sliced."""
    track = engine.audio_track(plan, audio.total, audio.profile, cache, work, config)
    cuts = [c.start for c in audio.chunks[1:]]
    # The AAC encoder's priming frame has a negative time, which a fragment's decode time
    # cannot be: shifted by one frame, the audio starts with the video (players would see a
    # hole before the video otherwise) and is late by one AAC frame, ~21 ms, unheard.
    offset = TS_OFFSET + AAC_PRIMING / audio.profile.audio_rate
    ff.run(split_audio_args(str(track), str(work / "a_%04d.mp4"), cuts, offset), config=config)
    _store(audio.chunks, audio.init, work, "a", cache)
