"""The audio track in blocks of AAC frames: each distinct block encoded once, joined by copy.

A track is cut at AAC frame boundaries (FRAME samples) into blocks of about BLOCK_SECONDS, which
are also the stream's audio chunks. A block is keyed by what is heard around it: the sounds of
the bed (music and audio layers) and the voice lines that reach it (heard in it, ducking the
music in it, or inside the margins its encoding reads), each placed relative to the block; the
bed's gain comes from the music alone. A block no voice reaches has the same key for every
recipient whose bed sounds the same there, even when their videos differ in length (a line
that extends its scene), so a recipient costs only the blocks around their own lines.

Missing blocks are made a run of consecutive ones at a time. The programme is mixed from a
second before the run (graph.PRELUDE: the limiter settles as in a single pass; the ducking is
a function of time), over the run with PREROLL frames before it and POSTROLL after, and
encoded; the pre-roll's packets are dropped, so every packet kept comes from an encoder that
has settled into the signal. An
AAC frame decodes by overlap-adding its window with its predecessor's, and both encode the same
samples, so packets of neighbouring blocks follow each other as in one stream (measured on the
demo's music: the joins add noise about 46 dB under the signal, median over the joins).

Blocks are stored as ADTS frames: the MP4 muxes their concatenation, and the stream makes each
block a chunk. Without a cache every block is missing: one run, the single-pass reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from chalicelib.errors import RenderError
from chalicelib.lru import Lru
from chalicelib.render import ffmpeg as ff
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.graph import (
    DUCK_RAMP,
    TARGET_LUFS,
    AudioInput,
    VoiceInput,
    audio_args,
    bed_loudness_args,
    clip_loudness_args,
)
from chalicelib.render.profile import EncodingProfile
from chalicelib.render.segments import content_key
from chalicelib.render.voice import describe
from chalicelib.template.plan import RenderPlan, VoiceCue

FRAME = 1024  # samples per AAC frame; the encoder's priming is one frame too
BLOCK_SECONDS = 2
PREROLL = 16  # frames encoded before a run and dropped (measured: 8 → −42 dB, 16 → −46 dB)
POSTROLL = 3  # frames encoded after a run: its last frame's window and the encoder's lookahead
REACH = 0.25  # seconds a voice's effect may outlast its ducking ramps (the limiter's release)
# Bumped when the mixing changes (ducking, normalization, limiter): part of every block's key.
MIX_VERSION = "r128-duck-blocks-2"
MAX_GAIN_DB = 30.0  # a near-silent bed or clip is not blown up past this


@dataclass(frozen=True)
class AudioBlock:
    """Frames [first, end) of a track (frame f: samples [f·FRAME, (f+1)·FRAME))."""

    key: str
    first: int
    end: int
    personal: bool  # a voice line from the recipient's data reaches it
    voiced: bool  # a voice line reaches it

    @property
    def packets(self) -> tuple[int, int]:
        """The track's packets [from, to) it holds. Packet p decodes to frame p − 1; packet 0 is
        the encoder's priming, held by the first block."""
        return (0 if self.first == 0 else self.first + 1, self.end + 1)


@dataclass(frozen=True)
class Track:
    """A plan's audio track over `total` seconds, as blocks."""

    sounds: tuple[AudioInput, ...]
    total: float
    profile: EncodingProfile
    blocks: tuple[AudioBlock, ...]

    @property
    def frame_seconds(self) -> float:
        return FRAME / self.profile.audio_rate


def audio_inputs(plan: RenderPlan, total: float) -> list[AudioInput]:
    """The music bed over the whole video, then each audio layer at its place."""
    sounds = []
    m = plan.music
    if m.music:
        sounds.append(AudioInput(m.music, 0.0, total, m.volume, m.fade_in, m.fade_out, loop=True))
    for cue in plan.cues:
        sounds.append(
            AudioInput(cue.src, cue.start, cue.duration, cue.volume, cue.fade_in, cue.fade_out)
        )
    return sounds


def frame_cuts(total: float, rate: int) -> list[tuple[int, int]]:
    """The track's frames cut into [first, end) blocks of about BLOCK_SECONDS."""
    frames = max(1, -(-round(total * rate) // FRAME))
    step = BLOCK_SECONDS * rate / FRAME
    bounds = [round(i * step) for i in range(int(frames / step) + 1)]
    bounds = [b for b in bounds if b < frames]
    if len(bounds) > 1 and frames - bounds[-1] < step / 2:
        bounds.pop()  # a short remainder joins the block before it
    return list(pairwise([*bounds, frames]))


def _reaches(cue: VoiceCue, lo: float, hi: float) -> bool:
    """Whether a voice line changes any sample in [lo, hi] seconds (ramps and margin in).
    A line not spoken yet may take its whole window."""
    end = cue.start + (cue.duration / cue.tempo if cue.clip else cue.window)
    return cue.start - DUCK_RAMP - REACH < hi and end + DUCK_RAMP + REACH > lo


def _read_span(first: int, end: int, seconds: float) -> tuple[float, float]:
    """The seconds an encoding of frames [first, end) reads: its pre-roll and post-roll in."""
    return (first - PREROLL) * seconds, (end + POSTROLL) * seconds


def _heard(sound: AudioInput, lo: float, hi: float) -> dict[str, Any] | None:
    """What of a sound determines its samples in [lo, hi] seconds, relative to lo; None when
    it is not heard there. A music bed's length (the video's) matters only near its end, so
    two videos of different lengths (a voice line that extends its scene) share the blocks
    where they sound the same."""
    end = sound.start + sound.duration
    if sound.start >= hi or end <= lo:
        return None
    fade_out = end - sound.fade_out
    return {
        "path": file_digest(sound.path),
        "volume": sound.volume,
        "loop": sound.loop,
        "at": round(sound.start - lo, 6),
        "fade_in": sound.fade_in if sound.start + sound.fade_in > lo else 0,
        "fade_out": [round(fade_out - lo, 6), sound.fade_out] if fade_out < hi else None,
        "end": round(end - lo, 6) if end < hi else None,
    }


def _gain_reference(sounds: Sequence[AudioInput], total: float) -> dict[str, Any]:
    """What the bed's gain is measured on (see `bed_gain`): the music alone, else the bed."""
    music = next((s for s in sounds if s.loop), None)
    if music is not None:
        return {"music": file_digest(music.path), "volume": music.volume}
    return {"total": total, "sounds": [{**asdict(s), "path": file_digest(s.path)} for s in sounds]}


def plan_track(
    plan: RenderPlan, total: float, profile: EncodingProfile, context: dict[str, str]
) -> Track:
    """The blocks of `plan`'s audio track (pure: no mixing). `plan` is spoken: its voice lines
    have their clips, and `context` is the engine's cache context. A block's key holds what
    is heard around it: the sounds and voice lines (and the video's end) within its encoding's
    read span and REACH more on each side."""
    sounds = tuple(audio_inputs(plan, total))
    common = {
        "mix": MIX_VERSION,
        "context": context,
        "rate": profile.audio_rate,
        "bitrate": profile.audio_bitrate,
        "coder": profile.aac_coder,
        "gain": _gain_reference(sounds, total),
    }
    seconds = FRAME / profile.audio_rate
    blocks = []
    for first, end in frame_cuts(total, profile.audio_rate):
        lo, hi = _read_span(first, end, seconds)
        heard = [h for s in sounds if (h := _heard(s, lo - REACH, hi + REACH)) is not None]
        voices = [v for v in plan.voices if _reaches(v, lo, hi)]
        spec = {
            **common,
            "frames": [first, end],
            "sounds": heard,
            "end": round(total - lo, 6) if total < hi + REACH else None,
            "voices": [describe(v) for v in voices],
        }
        personal = any(v.personal for v in voices)
        blocks.append(AudioBlock(content_key(spec), first, end, personal, bool(voices)))
    return Track(sounds, total, profile, tuple(blocks))


def _gain_to_target(integrated: float) -> float:
    if integrated <= -69.9:  # silence: nothing to normalize
        return 1.0
    return float(10 ** (min(MAX_GAIN_DB, TARGET_LUFS - integrated) / 20))


# Gains measured (by bed and by clip): bounded, as every in-process cache of Reel.
_GAINS: Lru[str, float] = Lru(4096)


def bed_gain(
    sounds: Sequence[AudioInput], total: float, profile: EncodingProfile, config: RenderConfig
) -> float:
    """The gain bringing the bed to TARGET_LUFS, measured once per process on what it is
    referenced to: the music alone, at its volume, where there is music (the same for
    every video of the template, whatever its length), else the whole bed (music and audio
    layers, as mixed)."""
    if not sounds:
        return 1.0
    reference = _gain_reference(sounds, total)
    key = "bed:" + content_key(reference)
    found = _GAINS.get(key)
    if found is None:
        music = next((s for s in sounds if s.loop), None)
        if music is not None:
            measured = ff.loudness(clip_loudness_args(music.path), config=config).integrated
            level = measured + 20 * math.log10(music.volume) if music.volume else -70.0
        else:
            level = ff.loudness(bed_loudness_args(sounds, total, profile), config=config).integrated
        found = _GAINS.put(key, _gain_to_target(level))
    return found


def voice_inputs(
    cues: Sequence[VoiceCue], cache: SegmentCache | None, work: Path, config: RenderConfig = DEFAULT
) -> list[VoiceInput]:
    """Spoken voice lines as mix inputs, each normalized to TARGET_LUFS (measured once per
    clip and process) times its layer's volume."""
    found = []
    for v in cues:
        if v.clip is None:
            raise RenderError("the voice line was not spoken before rendering", field=v.field)
        path = Path(v.src) if v.src and Path(v.src).is_file() else None
        if path is None and cache is not None:
            path = cache.get(v.clip, work)
        if path is None:
            raise RenderError("the voice line's clip is missing from the cache", field=v.field)
        clip_gain = _GAINS.get(v.clip)
        if clip_gain is None:
            measured = ff.loudness(clip_loudness_args(str(path)), config=config)
            clip_gain = _GAINS.put(v.clip, _gain_to_target(measured.integrated))
        gain = clip_gain * v.volume
        found.append(VoiceInput(str(path), v.start, v.duration / v.tempo, v.tempo, gain))
    return found


def adts_packets(data: bytes) -> list[bytes]:
    """The ADTS frames of an AAC stream, one packet each (ffmpeg writes one raw data block
    per frame)."""
    packets, at = [], 0
    while at < len(data):
        head = data[at : at + 7]
        if len(head) < 7 or head[0] != 0xFF or head[1] & 0xF6 != 0xF0:
            raise RenderError(f"the AAC encoder's output is not ADTS at byte {at}")
        size = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
        if size < 7 or at + size > len(data):
            raise RenderError(f"an ADTS frame at byte {at} is truncated")
        packets.append(data[at : at + size])
        at += size
    return packets


def _runs(indices: Sequence[int]) -> list[list[int]]:
    """Consecutive indices grouped: [1, 2, 5] → [[1, 2], [5]]."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _encode(
    plan: RenderPlan,
    track: Track,
    run: list[int],
    cache: SegmentCache | None,
    work: Path,
    config: RenderConfig,
) -> dict[int, Path]:
    """Encode the blocks at `run` (consecutive) in one pass; their files (stored, if cached)."""
    blocks = [track.blocks[i] for i in run]
    lo, hi = blocks[0].first, blocks[-1].end
    start = max(0, lo - PREROLL)
    lo_s, hi_s = _read_span(lo, hi, track.frame_seconds)
    cues = [v for v in plan.voices if _reaches(v, lo_s, hi_s)]
    voices = voice_inputs(cues, cache, work, config)
    gain = bed_gain(track.sounds, track.total, track.profile, config)
    out = work / f"audio_{lo}.aac"
    window = (start * FRAME, (hi + POSTROLL) * FRAME)
    args = audio_args(track.sounds, track.total, track.profile, str(out), voices, gain, window)
    ff.run(args, config=config)
    packets = adts_packets(out.read_bytes())
    # Packet j of this encoding decodes to frame start + j − 1: it is the track's packet
    # start + j.
    need = blocks[-1].packets[1] - start
    if len(packets) < need:
        raise RenderError(f"the AAC encoder gave {len(packets)} packets where {need} were due")
    made = {}
    for i, block in zip(run, blocks, strict=True):
        a, b = block.packets
        path = work / f"block_{block.first}.aac"
        path.write_bytes(b"".join(packets[a - start : b - start]))
        made[i] = cache.put(SegmentCache.audio_key(block.key), path, work) if cache else path
    out.unlink()
    return made


def blocks(
    plan: RenderPlan,
    track: Track,
    cache: SegmentCache | None,
    work: Path,
    config: RenderConfig = DEFAULT,
    indices: Sequence[int] | None = None,
) -> list[Path]:
    """Local ADTS files of the track's blocks (all, or those at `indices`, ascending): from
    the cache, or encoded into it, one pass per run of consecutive missing blocks."""
    wanted = list(range(len(track.blocks)) if indices is None else indices)
    found: dict[int, Path] = {}
    missing = []
    for i in wanted:
        blob = SegmentCache.audio_key(track.blocks[i].key)
        stored = cache.get(blob, work) if cache is not None else None
        if stored is None:
            missing.append(i)
        else:
            found[i] = stored
    for run in _runs(missing):
        found.update(_encode(plan, track, run, cache, work, config))
    return [found[i] for i in wanted]


def track_file(
    plan: RenderPlan,
    track: Track,
    cache: SegmentCache | None,
    work: Path,
    config: RenderConfig = DEFAULT,
) -> Path:
    """The whole track as one ADTS file in `work`: its blocks joined."""
    target = work / "audio.aac"
    with target.open("wb") as out:
        for path in blocks(plan, track, cache, work, config):
            out.write(path.read_bytes())
    return target
