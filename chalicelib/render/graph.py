"""ffmpeg graphs as data (ffmpeg-python): a segment's video, and the final audio + mux pass.

Nothing here runs ffmpeg; every function returns an argument list for `render.ffmpeg.run`.
Only numbers and Reel's own file names enter filter strings; user text is drawn by Pillow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import ffmpeg

# Every input: local files only, bounded probing (tests check that each `-i` these builders
# write is preceded by them).
from chalicelib.render.ffmpeg import FILE_ONLY
from chalicelib.render.profile import EncodingProfile
from chalicelib.template.model import Animation, AnimationKind, Fit

# The runs that decode the campaign's and the data's media: the first decoding error ends the
# run (a garbled clip under -stream_loop -1 would otherwise be retried until the timeout).
DECODING = ("-y", "-xerror")


@dataclass(frozen=True)
class VideoSource:
    """A video file used as a background or a layer."""

    path: str
    fit: Fit = Fit.cover
    loop: bool = True
    trim: tuple[float, float] | None = None
    duration: float | None = None  # of the file, when known: lets a late start seek


@dataclass(frozen=True)
class Overlay:
    """A layer placed on a scene, in output pixels and scene-local seconds."""

    x: int  # top-left corner
    y: int
    w: int
    h: int
    start: float
    end: float
    frames: tuple[int, int]  # scene-local frames [first, end) on which it shows
    still: str | None = None  # an RGBA PNG (text, image, shape) …
    video: VideoSource | None = None  # … or a video
    # … or a raw RGBA file of w×h pictures, one per frame from the first frame the overlay
    # shows in the rendered window, its last one held after them: a chart building up, a
    # Lottie playing (only the pictures a window needs are drawn).
    sequence: str | None = None
    sequence_frames: int = 0
    opacity: float = 1.0  # stills carry their opacity in their alpha already
    enter: Animation | None = None
    exit: Animation | None = None


@dataclass(frozen=True)
class SceneInput:
    """One scene, ready to render: background, overlays, and its transitions."""

    frames: int
    background_color: str | None = None  # '#rrggbb'
    background_image: str | None = None  # a canvas-sized PNG
    background_video: VideoSource | None = None
    overlays: tuple[Overlay, ...] = ()
    fade_in: float = 0.0  # seconds from black (half of a fade-through-black)
    fade_out: float = 0.0
    crossfade_frames: int = 0  # overlap with the next scene of the same segment
    keep: tuple[int, int] | None = None  # the frames [from, to) to render; default: all


class Inputs:
    """Creates the graph's inputs.

    ffmpeg-python merges identical nodes, and splitting one decoded input between two distant
    uses (the same background in the first and last scenes) can stall ffmpeg's pipeline. So a
    file used again is opened again, under another spelling of the same path, and a lavfi
    source gets a no-op `null` filter per extra use.
    """

    def __init__(self) -> None:
        self.seen: Counter[tuple[object, ...]] = Counter()

    def get(self, kind: str, name: str, **opts: object) -> ffmpeg.nodes.FilterableStream:
        key = (kind, name, *sorted(opts.items()))
        again = self.seen[key]
        self.seen[key] += 1
        if again and opts.get("f") == "lavfi":
            name = name + ",null" * again
        elif again:
            head, sep, tail = name.rpartition("/")
            name = head + sep + "./" * again + tail
        source = ffmpeg.input(name, **{**FILE_ONLY, **opts})  # lavfi sources too
        return source.video if kind == "video" else source.audio


def _ffcolor(color: str) -> str:
    return "0x" + color.lstrip("#")[:6]


def _fit(
    stream: ffmpeg.nodes.FilterableStream, w: int, h: int, fit: Fit
) -> ffmpeg.nodes.FilterableStream:
    if fit is Fit.stretch:
        return stream.filter("scale", w, h)
    if fit is Fit.contain:
        return stream.filter("scale", w, h, force_original_aspect_ratio="decrease").filter(
            "pad", w, h, "(ow-iw)/2", "(oh-ih)/2", color="black@0"
        )
    return stream.filter("scale", w, h, force_original_aspect_ratio="increase").filter("crop", w, h)


def _frames(
    stream: ffmpeg.nodes.FilterableStream, first: int, fps: int
) -> ffmpeg.nodes.FilterableStream:
    """Stamp frames with exact scene-local frame numbers, the first being `first`."""
    return stream.filter("settb", f"1/{fps}").filter("setpts", f"N+{first}")


def _still(
    path: str, fmt: str, first: int, end: int, fps: int, inputs: Inputs
) -> ffmpeg.nodes.FilterableStream:
    """A picture shown on frames [first, end): decoded and converted once, then repeated."""
    stream = inputs.get("video", path, framerate=fps, **FILE_ONLY).filter("format", fmt)
    # tpad clones the one frame (ffmpeg's `loop` filter here can stall a graph).
    stream = stream.filter("tpad", stop_mode="clone", stop=end - first - 1)
    return _frames(stream, first, fps)


def _sequence(
    path: str, w: int, h: int, count: int, first: int, end: int, fps: int, inputs: Inputs
) -> ffmpeg.nodes.FilterableStream:
    """A raw RGBA file of `count` w×h pictures for scene frames [first, end): its last picture
    held when it has fewer (a chart once built, a Lottie once played)."""
    wanted = end - first
    stream = inputs.get(
        "video", path, f="rawvideo", pix_fmt="rgba", video_size=(w, h), framerate=fps
    )
    stream = stream.filter("format", "yuva420p")
    if count > wanted:
        stream = stream.filter("trim", end_frame=wanted)
    elif count < wanted:
        stream = stream.filter("tpad", stop_mode="clone", stop=wanted - count)
    return _frames(stream, first, fps)


def _video_frames(
    src: VideoSource, w: int, h: int, skip: int, count: int, fps: int, inputs: Inputs
) -> ffmpeg.nodes.FilterableStream:
    """`count` frames of a video source fitted to w×h, from its frame `skip` on."""
    opts: dict[str, object] = dict(FILE_ONLY)
    begin, end = src.trim or (0.0, src.duration)
    clip = int((end - begin) * fps + 1e-6) if end is not None else 0
    offset = skip % clip if clip and src.loop else skip
    if skip and clip and offset + count <= clip:
        # Everything needed lies in one pass through the clip: seek, don't decode up to it.
        opts["ss"] = f"{begin + offset / fps:.6f}"
        opts["t"] = f"{(count + 1) / fps:.6f}"
        stream = _fit(inputs.get("video", src.path, **opts), w, h, src.fit).filter("fps", fps)
        return stream.filter("trim", end_frame=count)
    if src.trim:
        opts["ss"] = f"{src.trim[0]:g}"
        opts["t"] = f"{src.trim[1] - src.trim[0]:g}"
    if src.trim and src.loop:
        # The trimmed part, played back to back as often as needed (ffmpeg's `loop` filter
        # can stall a graph, and -stream_loop cannot loop a part of a file).
        plays = -(-(skip + count) // max(1, clip))
        parts = [inputs.get("video", src.path, **opts) for _ in range(plays)]
        stream = ffmpeg.concat(*parts, v=1, a=0) if plays > 1 else parts[0]
    else:
        if src.loop:
            opts["stream_loop"] = -1
        stream = inputs.get("video", src.path, **opts)
    stream = _fit(stream, w, h, src.fit).filter("fps", fps)
    return stream.filter("trim", start_frame=skip, end_frame=skip + count)


def _slide_term(anim: Animation | None, axis: str, entering: bool, t0: float, extent: int) -> str:
    """An ffmpeg expression offsetting x or y while a slide runs (eased, numbers only)."""
    if anim is None or anim.type is AnimationKind.fade:
        return ""
    horizontal = anim.type in (AnimationKind.slide_left, AnimationKind.slide_right)
    if horizontal != (axis == "x"):
        return ""
    # slide_left/slide_up move towards negative coordinates.
    sign = -1 if anim.type in (AnimationKind.slide_left, AnimationKind.slide_up) else 1
    d = anim.duration
    p = f"clip((t-{t0:g})/{d:g},0,1)"
    if entering:  # arrive from the opposite side, easing out
        return f"{-sign * extent}*pow(1-{p},3)"
    return f"{sign * extent}*pow({p},3)"


def _overlay(
    base: ffmpeg.nodes.FilterableStream,
    ov: Overlay,
    keep: tuple[int, int],
    fps: int,
    canvas: tuple[int, int],
    inputs: Inputs,
) -> ffmpeg.nodes.FilterableStream:
    first, end = max(ov.frames[0], keep[0]), min(ov.frames[1], keep[1])
    if end <= first:
        return base  # not on screen in the frames rendered
    if ov.still is not None:
        layer = _still(ov.still, "yuva420p", first, end, fps, inputs)
    elif ov.sequence is not None:
        layer = _sequence(ov.sequence, ov.w, ov.h, ov.sequence_frames, first, end, fps, inputs)
    elif ov.video is not None:
        # The clip starts playing when the layer appears, not when the scene starts.
        layer = _video_frames(ov.video, ov.w, ov.h, first - ov.frames[0], end - first, fps, inputs)
        layer = layer.filter("format", "yuva420p")
        if ov.opacity < 1:
            layer = layer.filter("colorchannelmixer", aa=f"{ov.opacity:g}")
        layer = _frames(layer, first, fps)
    else:
        raise ValueError("an overlay needs a still or a video")
    if ov.enter is not None:
        layer = layer.filter(
            "fade", t="in", st=f"{ov.start:g}", d=f"{ov.enter.duration:g}", alpha=1
        )
    if ov.exit is not None:
        st = max(ov.start, ov.end - ov.exit.duration)
        layer = layer.filter("fade", t="out", st=f"{st:g}", d=f"{ov.exit.duration:g}", alpha=1)
    x, y = str(ov.x), str(ov.y)
    exit_t0 = ov.end - ov.exit.duration if ov.exit else 0.0
    for axis, extent in (("x", canvas[0]), ("y", canvas[1])):
        terms = [
            _slide_term(ov.enter, axis, True, ov.start, extent),
            _slide_term(ov.exit, axis, False, exit_t0, extent),
        ]
        expr = "+".join(t for t in terms if t)
        if expr:
            if axis == "x":
                x = f"{ov.x}+{expr}"
            else:
                y = f"{ov.y}+{expr}"
    # Which frames show a layer must be exact (a segment may start where it appears): frame
    # k is at t = k/fps, so half-frame margins make the test immune to rounding.
    lo, hi = (ov.frames[0] - 0.5) / fps, (ov.frames[1] - 0.5) / fps
    return ffmpeg.overlay(
        base, layer, x=x, y=y, enable=f"between(t,{lo:.6f},{hi:.6f})", eof_action="pass"
    )


def scene_stream(
    scene: SceneInput, profile: EncodingProfile, inputs: Inputs
) -> ffmpeg.nodes.FilterableStream:
    """One scene's video, frames `keep` of it: background, overlays in z order, fades."""
    fps, w, h = profile.fps, profile.width, profile.height
    k0, k1 = scene.keep or (0, scene.frames)
    if scene.background_video is not None:
        base = _video_frames(scene.background_video, w, h, k0, k1 - k0, fps, inputs)
        base = _frames(base.filter("format", "yuv420p"), k0, fps)
    elif scene.background_image is not None:
        base = _still(scene.background_image, "yuv420p", k0, k1, fps, inputs)
    else:
        color = _ffcolor(scene.background_color or "#000000")
        source = f"color=c={color}:s={w}x{h}:r={fps}:d={(k1 - k0) / fps:g}"
        base = _frames(inputs.get("video", source, f="lavfi"), k0, fps)
    base = base.filter("setsar", 1).filter("format", "yuv420p")
    for ov in scene.overlays:
        base = _overlay(base, ov, (k0, k1), fps, (w, h), inputs)
    seconds = scene.frames / fps
    if scene.fade_in > 0:
        base = base.filter("fade", t="in", st=0, d=f"{scene.fade_in:g}")
    if scene.fade_out > 0:
        base = base.filter(
            "fade", t="out", st=f"{seconds - scene.fade_out:g}", d=f"{scene.fade_out:g}"
        )
    return base.filter("setpts", "PTS-STARTPTS").filter("format", "yuv420p")


def _kept(scene: SceneInput) -> int:
    k0, k1 = scene.keep or (0, scene.frames)
    return k1 - k0


def chain_frames(scenes: Sequence[SceneInput]) -> int:
    """Frames of a chain of scenes: their kept frames less the crossfade overlaps."""
    return sum(_kept(s) for s in scenes) - sum(s.crossfade_frames for s in scenes[:-1])


def segment_args(
    scenes: Sequence[SceneInput],
    profile: EncodingProfile,
    out: str,
    window: tuple[int, int] | None = None,
) -> list[str]:
    """Arguments rendering a chain of scenes (joined by crossfades, else back to back) into
    one video-only segment, keeping the frames of `window` (default: all of them)."""
    stream, (start, end) = _window(scenes, profile, window)
    out_opts = {**profile.video_args(), "frames:v": end - start}
    return list(ffmpeg.output(stream, out, **out_opts).global_args(*DECODING).get_args())


def draw_args(
    scenes: Sequence[SceneInput], profile: EncodingProfile, out: str, window: tuple[int, int]
) -> list[str]:
    """Arguments drawing the first frame of `window` of a chain of scenes as a JPEG: the same
    graph as `segment_args`, stopped before the encoder (the Studio's preview); its
    limited-range video expanded to the full range a JPEG is read in, as `frame_args` does."""
    stream, _ = _window(scenes, profile, window)
    stream = stream.filter("scale", in_range="tv", out_range="pc").filter("format", "yuvj420p")
    opts = {"frames:v": 1, "q:v": 2, "f": "image2", "update": 1}
    return list(ffmpeg.output(stream, out, **opts).global_args(*DECODING).get_args())


def _window(
    scenes: Sequence[SceneInput], profile: EncodingProfile, window: tuple[int, int] | None
) -> tuple[ffmpeg.nodes.FilterableStream, tuple[int, int]]:
    stream, length = _chain(scenes, profile, Inputs())
    start, end = window or (0, length)
    if (start, end) != (0, length):
        stream = stream.filter("trim", start_frame=start, end_frame=end).filter(
            "setpts", "PTS-STARTPTS"
        )
    return stream, (start, end)


def _chain(
    scenes: Sequence[SceneInput], profile: EncodingProfile, inputs: Inputs
) -> tuple[ffmpeg.nodes.FilterableStream, int]:
    fps = profile.fps
    stream = scene_stream(scenes[0], profile, inputs)
    length = _kept(scenes[0])
    for prev, scene in pairwise(scenes):
        overlap = prev.crossfade_frames
        nxt = scene_stream(scene, profile, inputs)
        if overlap:
            stream = _crossfade(stream, length, nxt, _kept(scene), overlap, fps)
        else:
            stream = ffmpeg.concat(stream, nxt, v=1, a=0)
        length += _kept(scene) - overlap
    return stream, length


def _crossfade(
    a: ffmpeg.nodes.FilterableStream,
    a_frames: int,
    b: ffmpeg.nodes.FilterableStream,
    b_frames: int,
    overlap: int,
    fps: int,
) -> ffmpeg.nodes.FilterableStream:
    """A then B, B fading in over A's last `overlap` frames.

    B's head is faded in by its alpha and overlaid on A's tail (the overlay blend is several
    times cheaper than `xfade`), then the rest of B follows.
    """
    parts = b.filter_multi_output("split", 2) if b_frames > overlap else None
    head = parts.stream(0) if parts is not None else b
    head = (
        head.filter("trim", end_frame=overlap)
        .filter("format", "yuva420p")
        .filter("fade", t="in", st=0, d=f"{overlap / fps:g}", alpha=1)
        .filter("setpts", f"PTS+{(a_frames - overlap) / fps:g}/TB")
    )
    joined = ffmpeg.overlay(a, head, eof_action="pass", format="yuv420")
    if parts is None:
        return joined
    rest = parts.stream(1).filter("trim", start_frame=overlap).filter("setpts", "PTS-STARTPTS")
    return ffmpeg.concat(joined, rest, v=1, a=0)


@dataclass(frozen=True)
class AudioInput:
    """A sound placed on the video's timeline (the music bed or an audio layer)."""

    path: str
    start: float
    duration: float  # how long it plays on the timeline
    volume: float = 1.0
    fade_in: float = 0.0
    fade_out: float = 0.0
    loop: bool = False


@dataclass(frozen=True)
class VoiceInput:
    """A spoken clip placed on the video's timeline."""

    path: str
    start: float
    length: float  # seconds it plays on the timeline (its duration over its tempo)
    tempo: float = 1.0
    gain: float = 1.0  # linear: its loudness normalization times the layer's volume


# The programme's loudness: each part is normalized to TARGET_LUFS (the bed, each voice clip),
# the bed ducks under voices, and a limiter keeps sample peaks under LIMIT (−2 dBFS), so that
# the true peak of the AAC track stays under −1 dBTP.
TARGET_LUFS = -16.0
LIMIT = 0.794
DUCK = 0.25  # the bed's gain while a voice speaks: −12 dB
DUCK_RAMP = 0.4  # seconds the bed takes to go down (before the voice) and back up (after)
PRELUDE = 1  # seconds a window of the programme is mixed before it: the limiter settles


def duck_expression(voices: Sequence[VoiceInput]) -> str:
    """The bed's gain over time (an ffmpeg expression, numbers only): 1, and DUCK while any
    voice speaks, with ramps of DUCK_RAMP seconds on each side, even in decibels."""
    r = DUCK_RAMP
    dips = [
        f"clip(min(t-{v.start - r:.4f},{v.start + v.length + r:.4f}-t)/{r:g},0,1)" for v in voices
    ]
    deepest = dips[0]
    for dip in dips[1:]:
        deepest = f"max({deepest},{dip})"
    return f"pow({DUCK:g},{deepest})"


def programme(
    audio: Sequence[AudioInput],
    total: float,
    profile: EncodingProfile,
    voices: Sequence[VoiceInput] = (),
    bed_gain: float = 1.0,
    inputs: Inputs | None = None,
    since: int = 0,
) -> ffmpeg.nodes.FilterableStream:
    """The mixed programme: the bed (music and audio layers) at `bed_gain`, ducked under the
    voices, the voices on top, peaks limited. From `since` samples of the timeline on (its
    time 0 is there): the sounds over by then are left out and the others cut, so a window late
    in a long video costs the window, not the video up to it. No voice may start before it."""
    inputs = inputs or Inputs()
    rate = profile.audio_rate
    mixed = _mix(audio, total, profile, inputs, since)
    if bed_gain != 1:
        mixed = mixed.filter("volume", f"{bed_gain:.6f}")
    voices = [replace(v, start=v.start - since / rate) for v in voices]
    if any(v.start < 0 for v in voices):
        raise ValueError("a voice starts before the programme's window")
    if voices:
        mixed = mixed.filter("volume", duck_expression(voices), eval="frame")
        spoken = []
        for v in voices:
            a = inputs.get("audio", v.path, **FILE_ONLY).filter("aresample", rate)
            a = a.filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
            if abs(v.tempo - 1) > 1e-6:
                a = a.filter("atempo", f"{v.tempo:.6f}")
            a = a.filter("volume", f"{v.gain:.6f}")
            if v.start > 0:
                a = a.filter("adelay", f"{round(v.start * rate)}S", all=1)  # in samples
            spoken.append(a)
        mixed = ffmpeg.filter(
            [mixed, *spoken], "amix", inputs=1 + len(spoken), normalize=0, duration="first"
        )
    if not audio and not voices:
        return mixed  # silence: nothing to limit
    # The limiter's lookahead is compensated (latency): the sound stays in sync with the video.
    mixed = mixed.filter("alimiter", limit=LIMIT, level=0, latency=1, attack=5, release=50)
    return mixed.filter("apad").filter("atrim", end_sample=round(total * rate) - since)


def loudness_args(stream: ffmpeg.nodes.FilterableStream) -> list[str]:
    """Arguments measuring a stream's EBU R128 loudness (for `ffmpeg.loudness`)."""
    measured = stream.filter("ebur128", peak="true")
    return list(ffmpeg.output(measured, "-", f="null").global_args(*DECODING).get_args())


def bed_loudness_args(
    audio: Sequence[AudioInput], total: float, profile: EncodingProfile
) -> list[str]:
    """Arguments measuring the bed (music and audio layers, as mixed) before normalization."""
    return loudness_args(_mix(audio, total, profile, Inputs()))


def clip_loudness_args(path: str) -> list[str]:
    """Arguments measuring a file's loudness (a spoken clip, a music bed alone)."""
    return loudness_args(Inputs().get("audio", path, **FILE_ONLY))


def audio_args(
    audio: Sequence[AudioInput],
    total: float,
    profile: EncodingProfile,
    out: str,
    voices: Sequence[VoiceInput] = (),
    bed_gain: float = 1.0,
    window: tuple[int, int] | None = None,
) -> list[str]:
    """The programme (music bed, audio layers, fades, voices) encoded to AAC (ADTS frames)
    over `window`: [from, to) samples, the whole timeline by default. A window is mixed from
    PRELUDE seconds before it (and before its voices' ramps), so that the limiter has settled
    as in a single pass when the window starts."""
    since = max(0, window[0] - PRELUDE * profile.audio_rate) if window is not None else 0
    if voices and window is not None:  # from before the first voice's ramp
        since = min(since, int((min(v.start for v in voices) - DUCK_RAMP) * profile.audio_rate))
    since = max(0, since)
    mixed = programme(audio, total, profile, voices, bed_gain, since=since)
    if window is not None:
        mixed = mixed.filter("atrim", start_sample=window[0] - since, end_sample=window[1] - since)
        mixed = mixed.filter("asetpts", "PTS-STARTPTS")
    output = ffmpeg.output(
        mixed,
        out,
        **{
            "c:a": "aac",
            "aac_coder": profile.aac_coder,
            "b:a": profile.audio_bitrate,
            "ar": profile.audio_rate,
            "ac": 2,
            "fflags": "+bitexact",
            "f": "adts",
        },
    )
    return list(output.global_args(*DECODING).get_args())


def _mix(
    audio: Sequence[AudioInput],
    total: float,
    profile: EncodingProfile,
    inputs: Inputs,
    since: int = 0,
) -> ffmpeg.nodes.FilterableStream:
    rate = profile.audio_rate
    tracks = []
    for sound in audio:
        cut = since - round(sound.start * rate)  # samples of the sound before `since`
        if cut >= round(sound.duration * rate):
            continue  # over before the window
        opts: dict[str, object] = dict(FILE_ONLY)
        if sound.loop:
            opts["stream_loop"] = -1
        a = inputs.get("audio", sound.path, **opts)
        a = a.filter("aresample", rate).filter(
            "aformat", sample_fmts="fltp", channel_layouts="stereo"
        )
        # Timestamps by sample count: a looped file's restarts leave gaps in its timestamps
        # (its priming and padding), which would play as dropped samples.
        a = a.filter("asetpts", "N/SR/TB").filter("atrim", duration=f"{sound.duration:g}")
        if cut > 0:  # its timestamps kept: the fades below stay in place
            a = a.filter("atrim", start_sample=cut)
        if sound.volume != 1:
            a = a.filter("volume", f"{sound.volume:g}")
        if sound.fade_in > 0:
            a = a.filter("afade", t="in", st=0, d=f"{sound.fade_in:g}")
        if sound.fade_out > 0:
            st = max(0.0, sound.duration - sound.fade_out)
            a = a.filter("afade", t="out", st=f"{st:g}", d=f"{sound.fade_out:g}")
        if cut > 0:
            a = a.filter("asetpts", "PTS-STARTPTS")
        elif sound.start * rate > since:
            a = a.filter("adelay", f"{round(sound.start * rate) - since}S", all=1)
        tracks.append(a)
    if not tracks:
        mixed = inputs.get("audio", f"anullsrc=r={rate}:cl=stereo", f="lavfi")
    elif len(tracks) == 1:
        mixed = tracks[0]
    else:
        mixed = ffmpeg.filter(tracks, "amix", inputs=len(tracks), normalize=0, duration="longest")
    return mixed.filter("apad").filter("atrim", end_sample=round(total * rate) - since)


def mux_args(
    concat_list: str, audio_file: str, total: float, out: str, priming: float
) -> list[str]:
    """Join the segments and the audio track (ADTS frames) by stream copy (concat demuxer in
    safe mode). The track's first packet is the encoder's priming, `priming` seconds: starting
    it that much before zero makes the MP4's edit list skip it, as an encoder's own MP4 does."""
    video = ffmpeg.input(concat_list, f="concat", safe=1, **FILE_ONLY).video
    audio = ffmpeg.input(audio_file, f="aac", itsoffset=f"{-priming:.9f}", **FILE_ONLY).audio
    output = ffmpeg.output(
        video,
        audio,
        out,
        **{
            "c": "copy",
            "t": f"{total:g}",
            "movflags": "+faststart",
            "map_metadata": -1,
            "fflags": "+bitexact",
            "f": "mp4",
        },
    )
    return list(output.global_args("-y").get_args())


def frame_args(video: str, index: int, out: str) -> list[str]:
    """Arguments writing frame number `index` of `video` as a JPEG: decoded, not seeked, so
    a stream chunk with shifted timestamps gives the right one; its limited-range video is
    expanded to the full range a JPEG is read in (or its blacks would turn grey)."""
    stream = (
        ffmpeg.input(video, **FILE_ONLY)
        .video.filter("select", f"eq(n,{int(index)})")
        .filter("scale", in_range="tv", out_range="pc")
        .filter("format", "yuvj420p")
    )
    opts = {"q:v": 3, "f": "image2", "update": 1}
    return list(ffmpeg.output(stream, out, vframes=1, **opts).global_args("-y").get_args())


def poster_args(video: str, at: float, out: str) -> list[str]:
    """Arguments writing the frame at `at` seconds of `video` as a JPEG."""
    stream = ffmpeg.input(video, ss=f"{at:g}", **FILE_ONLY).video
    return list(
        ffmpeg.output(stream, out, vframes=1, **{"q:v": 3, "f": "image2", "update": 1})
        .global_args("-y")
        .get_args()
    )
