"""HLS from the segment plan: runs cut into ~2 s CMAF chunks, playlists, and the slicing.

Each run of `segments.plan_runs` is encoded on its own with a keyframe at its start and every
`gop_seconds` after (the fixed profile), so cutting it every `gop_seconds` from its start gives
chunks that each begin on a keyframe and never straddle a static/personal boundary. A chunk is
keyed by its run's content key, its place on the timeline and its frames: a static chunk has
the same key for every recipient whose timeline puts it at the same place, a personal one
changes only when what shows in it changes. The audio rendition (EXT-X-MEDIA) has one chunk per
block of the audio track (render/audio.py): ~2 s of AAC frames, shared by every recipient it
sounds the same for, personal only where a personal voice line reaches it.

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
from chalicelib.render import audio, engine
from chalicelib.render import ffmpeg as ff
from chalicelib.render.audio import AudioBlock
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.profile import EncodingProfile, StreamProfile
from chalicelib.render.segments import Run, content_key, plan_runs, run_key, timeline, total_frames
from chalicelib.template.model import Canvas
from chalicelib.template.plan import RenderPlan

FORMAT = "hls-cmaf-2"  # part of every chunk key: bump when the slicing changes
LOW_HEIGHT = 360
# Every chunk's timestamps are shifted by this much: the AAC priming packet starts a frame
# before zero, and a fragment's decode time cannot be negative. Players start at the first
# timestamp.
TS_OFFSET = 10.0


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
    """A block of the audio track as its one chunk (shared when the block's key is)."""

    key: str
    index: int  # the block's place in the track
    block: AudioBlock
    total: float  # the track's
    profile: EncodingProfile
    chunks: tuple[Chunk, ...]
    init: str  # the key of the audio's initialization segment

    @property
    def personal(self) -> bool:
        return self.block.personal


@dataclass(frozen=True)
class StreamPlan:
    """What one recipient's stream is made of, per rendition, in playback order."""

    frames: int
    fps: int
    renditions: tuple[Rendition, ...]
    groups: dict[str, tuple[ChunkGroup, ...]]  # by rendition name
    audio: tuple[AudioGroup, ...]
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


def plan_audio(
    plan: RenderPlan,
    total: float,
    profile: EncodingProfile,
    config: RenderConfig = DEFAULT,
    context: dict[str, str] | None = None,
) -> tuple[AudioGroup, ...]:
    """The audio rendition: a group (and chunk) per block of the track. Packet p of the track
    plays at TS_OFFSET + p frames: the priming packet first, so the audio starts with the
    video and is late by one AAC frame (~21 ms, unheard); a fragment's decode time cannot be
    negative, so the priming cannot go before zero as in the MP4."""
    context = context if context is not None else engine.cache_context(config)
    track = audio.plan_track(plan, total, profile, context)
    return _audio_groups(track, init_key("audio", profile, context))


def _audio_groups(track: audio.Track, init: str) -> tuple[AudioGroup, ...]:
    seconds = track.frame_seconds
    groups = []
    for i, block in enumerate(track.blocks):
        spec = {"format": FORMAT, "audio": block.key, "offset": TS_OFFSET}
        key = content_key(spec)
        a, b = block.packets
        chunk = Chunk(
            content_key({**spec, "chunk": 0}), a * seconds, (b - a) * seconds, block.personal, key
        )
        groups.append(AudioGroup(key, i, block, track.total, track.profile, (chunk,), init))
    return tuple(groups)


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
    inits[None] = InitSegment(audio[0].init, audio[0].key)
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


def remux_audio_args(source: str, out: str) -> list[str]:
    """An AAC track (ADTS) into an MP4 by stream copy, its timestamps from zero."""
    guards = [x for item in ff.INPUT_GUARDS.items() for x in item]
    args = ["-y", "-f", "aac", *guards, "-i", source, "-map", "0:a:0", "-c", "copy"]
    return [*args, "-fflags", "+bitexact", "-map_metadata", "-1", "-f", "mp4", out]


def split_audio_args(source: str, pattern: str, cuts: Sequence[int], offset: float) -> list[str]:
    """Slice an AAC track (MP4) by stream copy before each packet number in `cuts`."""
    cut = ["-segment_frames", ",".join(str(c) for c in cuts)] if cuts else []
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
    return _esds_unsized(init), media


def _esds_unsized(init: bytes) -> bytes:
    """`init` with the audio's buffer size and bitrates (the esds box's decoder configuration:
    this run's own figures, like btrt's) zeroed: unknown."""
    at = init.find(b"esds")
    if at < 4:
        return init

    def after_size(i: int) -> int:  # a descriptor's size: 1 to 4 bytes, high bit = more
        while init[i] & 0x80:
            i += 1
        return i + 1

    i = at + 8  # 'esds', version and flags
    if init[i] != 0x03:  # ES_Descriptor
        return init
    i = after_size(i + 1)
    flags = init[i + 2]
    i += 3  # ES_ID(2) and its flags
    i += (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
    if flags & 0x40:
        i += 1 + init[i]  # a URL
    if init[i] != 0x04:  # DecoderConfigDescriptor
        return init
    i = after_size(i + 1) + 2  # objectTypeIndication, streamType
    return init[:i] + bytes(11) + init[i + 11 :]  # bufferSizeDB(3) maxBitrate(4) avgBitrate(4)


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
    group: AudioGroup,
    cache: SegmentCache,
    work: Path,
    config: RenderConfig = DEFAULT,
) -> None:
    """Make the chunk of an audio group, and of the groups after it whose chunks are missing
    too (a cold track is made in one pass, not a pass per chunk): their blocks from the cache
    (or encoded into it), joined and sliced."""
    track = audio.plan_track(plan, group.total, group.profile, engine.cache_context(config))
    groups = _audio_groups(track, group.init)
    if groups[group.index].key != group.key:
        raise RenderError(f"audio group {group.key[:16]} is not in this track any more")
    run = [group.index]
    while run[-1] + 1 < len(groups) and not cache.store.exists(groups[run[-1] + 1].chunks[0].blob):
        run.append(run[-1] + 1)
    joined = work / "run.aac"
    with joined.open("wb") as out:
        for path in audio.blocks(plan, track, cache, work, config, run):
            out.write(path.read_bytes())
    # Into an MP4 first: sliced straight from ADTS (its demuxer's odd time base), the first
    # fragment's initialization segment differs from the others'.
    source = work / "run.m4a"
    ff.run(remux_audio_args(str(joined), str(source)), config=config)
    packets = [groups[i].block.packets for i in run]
    cuts = [b - packets[0][0] for _, b in packets[:-1]]
    offset = TS_OFFSET + packets[0][0] * track.frame_seconds
    ff.run(split_audio_args(str(source), str(work / "a_%04d.mp4"), cuts, offset), config=config)
    _store([groups[i].chunks[0] for i in run], group.init, work, "a", cache)
