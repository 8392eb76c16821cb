"""HLS from the segment plan: runs cut into ~2 s MPEG-TS chunks, playlists, and the slicing.

Each run of `segments.plan_runs` is encoded on its own with a keyframe at its start and every
`gop_seconds` after (the fixed profile), so cutting it every `gop_seconds` from its start gives
chunks that each begin on a keyframe and never straddle a static/personal boundary. A chunk is
keyed by its run's content key, its place on the timeline and its frames: a static chunk has
the same key for every recipient whose timeline puts it at the same place, a personal one
changes only when what shows in it changes. The audio is one track over the whole timeline
(one per audio key, shared when identical), sliced into its own ~2 s chunks by stream copy:
an audio rendition (EXT-X-MEDIA), never AAC cut and re-encoded per chunk.

Planning here is pure (milliseconds: no rendering); `render_group` and `render_audio` are the
two passes that make chunks, through the one ffmpeg runner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.errors import RenderError
from chalicelib.render import engine
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.profile import EncodingProfile, StreamProfile
from chalicelib.render.segments import Run, content_key, plan_runs, run_key, timeline, total_frames
from chalicelib.template.model import Canvas
from chalicelib.template.plan import RenderPlan

FORMAT = "hls-ts-1"  # part of every chunk key: bump when the slicing changes
LOW_HEIGHT = 360
# Every chunk's timestamps are shifted by this much: the AAC priming packet starts a frame
# before zero, and MPEG-TS cannot carry negative times. Players start at the first timestamp.
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


def renditions(canvas: Canvas) -> tuple[Rendition, ...]:
    """The canvas size, and a smaller one: 360 lines, or half the canvas when it is small."""
    low = LOW_HEIGHT if canvas.height > LOW_HEIGHT else canvas.height // 2
    heights = (canvas.height, max(2, low // 2 * 2))
    return tuple(
        Rendition(f"{h}p", StreamProfile.rendition(canvas, h)) for h in dict.fromkeys(heights)
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
class ChunkGroup:
    """A run in one rendition: rendered (or taken from the run cache) and sliced in one go."""

    key: str
    run: Run
    profile: EncodingProfile
    chunks: tuple[Chunk, ...]
    cuts: tuple[int, ...]  # run-local frames where chunks after the first begin

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


@dataclass(frozen=True)
class StreamPlan:
    """What one recipient's stream is made of, per rendition, in playback order."""

    frames: int
    fps: int
    renditions: tuple[Rendition, ...]
    groups: dict[str, tuple[ChunkGroup, ...]]  # by rendition name
    audio: AudioGroup

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
    return f"hls/{'p' if personal else 's'}/{key[:2]}/{key}.ts"


def chunk_cuts(frames: int, gop: int) -> list[tuple[int, int]]:
    """A run of `frames` cut into [a, b) pieces of at most `gop` frames, from its start."""
    return [(a, min(a + gop, frames)) for a in range(0, frames, gop)]


def _group(run: Run, profile: EncodingProfile, context: dict[str, str]) -> ChunkGroup:
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
    return ChunkGroup(key, run, profile, chunks, tuple(a for a, _ in pieces[1:]))


def audio_cuts(total: float) -> list[tuple[float, float]]:
    """The audio track's chunks: [start, end) every AUDIO_CHUNK_SECONDS (the last shorter)."""
    n = max(1, math.ceil(total / AUDIO_CHUNK_SECONDS - 1e-6))
    step = AUDIO_CHUNK_SECONDS
    return [(i * step, min((i + 1) * step, total)) for i in range(n)]


def plan_audio(plan: RenderPlan, total: float, profile: EncodingProfile) -> AudioGroup:
    akey = engine.audio_key(plan, total, profile)
    spec = {"format": FORMAT, "audio": akey, "offset": TS_OFFSET, "priming": AAC_PRIMING}
    key = content_key(spec)
    chunks = tuple(
        Chunk(content_key({**spec, "chunk": i}), a, b - a, False, key)
        for i, (a, b) in enumerate(audio_cuts(total))
    )
    return AudioGroup(key, total, profile, chunks)


def plan_stream(plan: RenderPlan, context: dict[str, str] | None = None) -> StreamPlan:
    """A recipient's stream: per rendition, the runs as chunk groups; and the audio. `plan` is
    localized (render/localize.py): its URLs from data fetched, its media checked."""
    context = context if context is not None else engine.cache_context()
    variants = renditions(plan.canvas)
    groups = {}
    frames = 0
    for r in variants:
        runs = plan_runs(plan, r.profile, split=True)
        groups[r.name] = tuple(_group(run, r.profile, context) for run in runs)
        frames = total_frames(timeline(plan, r.profile))
    fps = variants[0].profile.fps
    audio = plan_audio(plan, frames / fps, variants[0].profile)
    return StreamPlan(frames, fps, variants, groups, audio)


# ── playlists ─────────────────────────────────────────────────────────────────────────────


def media_playlist(entries: Sequence[tuple[float, str]]) -> str:
    """A VOD media playlist of (duration, URI) entries."""
    target = max(1, math.ceil(max((d for d, _ in entries), default=1) - 1e-3))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
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


def split_video_args(source: str, pattern: str, cuts: Sequence[int], offset: float) -> list[str]:
    """Slice a video-only MP4 by stream copy at the keyframes of frames `cuts` into MPEG-TS
    files, shifting its timestamps by `offset` seconds (its place on the timeline)."""
    guards = [x for item in ff.INPUT_GUARDS.items() for x in item]
    args = ["-y", *guards, "-i", source, "-map", "0:v:0", "-c", "copy"]
    args += ["-f", "segment", "-segment_format", "mpegts", "-reset_timestamps", "0"]
    if cuts:
        args += ["-segment_frames", ",".join(str(c) for c in cuts)]
    else:
        args += ["-segment_time", "100000"]
    return [*args, "-output_ts_offset", f"{offset:.6f}", "-map_metadata", "-1", pattern]


def split_audio_args(source: str, pattern: str, cuts: Sequence[float], offset: float) -> list[str]:
    """Slice an AAC track by stream copy at the first packet of each time in `cuts`."""
    guards = [x for item in ff.INPUT_GUARDS.items() for x in item]
    args = ["-y", *guards, "-i", source, "-map", "0:a:0", "-c", "copy"]
    args += ["-f", "segment", "-segment_format", "mpegts", "-reset_timestamps", "0"]
    if cuts:
        args += ["-segment_times", ",".join(f"{c:g}" for c in cuts)]
    else:
        args += ["-segment_time", "100000"]
    return [*args, "-output_ts_offset", f"{offset:.6f}", "-map_metadata", "-1", pattern]


def _store(chunks: Sequence[Chunk], work: Path, prefix: str, cache: SegmentCache) -> None:
    files = sorted(work.glob(f"{prefix}_*.ts"))
    if len(files) != len(chunks):
        raise RenderError(f"slicing made {len(files)} chunks where {len(chunks)} were planned")
    # In order: the last chunk's presence means the whole group is there.
    for chunk, path in zip(chunks, files, strict=True):
        cache.store.put_file(chunk.blob, path)


def render_group(group: ChunkGroup, cache: SegmentCache, work: Path) -> None:
    """Make a group's chunks: its run from the segment cache (or rendered into it), sliced."""
    mp4 = engine.cached_run(group.run, group.profile, cache, work)
    offset = TS_OFFSET + group.run.start / group.profile.fps
    ff.run(split_video_args(str(mp4), str(work / "v_%04d.ts"), group.cuts, offset))
    _store(group.chunks, work, "v", cache)


def render_audio(plan: RenderPlan, audio: AudioGroup, cache: SegmentCache, work: Path) -> None:
    """Make the audio chunks: the track from the cache (or rendered into it), sliced."""
    track = engine.audio_track(plan, audio.total, audio.profile, cache, work)
    cuts = [c.start for c in audio.chunks[1:]]
    # The AAC encoder's priming frame has a negative time, which MPEG-TS cannot mark as
    # "discard": shifted by one frame, the audio starts with the video (players would see a
    # hole before the video otherwise) and is late by one AAC frame, ~21 ms, unheard.
    offset = TS_OFFSET + AAC_PRIMING / audio.profile.audio_rate
    ff.run(split_audio_args(str(track), str(work / "a_%04d.ts"), cuts, offset))
    _store(audio.chunks, work, "a", cache)
