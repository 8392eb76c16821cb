"""The graph builder: exact ffmpeg arguments, and cutting a plan into segments."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from chalicelib.render.graph import (
    AudioInput,
    Overlay,
    SceneInput,
    VideoSource,
    audio_args,
    chain_frames,
    mux_args,
    poster_args,
    segment_args,
)
from chalicelib.render.profile import EncodingProfile
from chalicelib.template.model import Animation, AnimationKind

PROFILE = EncodingProfile(width=160, height=96, fps=10, canvas_width=320)
ENCODE = [
    "-an", "-c:v", "libx264", "-crf", "20", "-fflags", "+bitexact", "-flags:v", "+bitexact",
    "-fps_mode", "cfr",
]  # fmt: skip
# What every input is opened with: local files only, bounded probing.
GUARDS = ["-analyzeduration", "5000000", "-probesize", "5000000", "-protocol_whitelist", "file"]
ENCODE_TAIL = [
    "-g", "20", "-keyint_min", "20", "-map_metadata", "-1", "-pix_fmt", "yuv420p",
    "-preset", "veryfast", "-profile:v", "high", "-r", "10", "-sc_threshold", "0",
    "-threads", "0", "-video_track_timescale", "10000",
]  # fmt: skip


def test_scene_with_a_sliding_still() -> None:
    scene = SceneInput(
        frames=10,
        background_color="#102040",
        overlays=(
            Overlay(x=10, y=20, w=40, h=30, start=0.2, end=0.8, frames=(2, 8), still="t.png",
                    enter=Animation(type=AnimationKind.slide_up, duration=0.3)),
        ),
    )  # fmt: skip
    assert segment_args([scene], PROFILE, "seg.mp4") == [
        "-f", "lavfi", *GUARDS, "-i", "color=c=0x102040:s=160x96:r=10:d=1",
        "-analyzeduration", "5000000", "-framerate", "10", "-probesize", "5000000",
        "-protocol_whitelist", "file", "-i", "t.png",
        "-filter_complex",
        "[0:v]settb=1/10[s0];[s0]setpts=N+0[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3];"
        # the still is decoded and converted once, then repeated on its frames 2…7
        "[1:v]format=yuva420p[s4];[s4]tpad=stop=5:stop_mode=clone[s5];"
        "[s5]settb=1/10[s6];[s6]setpts=N+2[s7];"
        "[s7]fade=alpha=1:d=0.3:st=0.2:t=in[s8];"
        "[s3][s8]overlay=enable=between(t\\,0.150000\\,0.750000):eof_action=pass:x=10"
        ":y=20+96*pow(1-clip((t-0.2)/0.3\\,0\\,1)\\,3)[s9];"
        "[s9]setpts=PTS-STARTPTS[s10];[s10]format=yuv420p[s11]",
        "-map", "[s11]", *ENCODE, "-frames:v", "10", *ENCODE_TAIL, "seg.mp4", "-y", "-xerror",
    ]  # fmt: skip


def test_only_the_kept_frames_are_made() -> None:
    # GIVEN a scene whose frames 4…9 are wanted, with a layer on its frames 2…7
    ov = Overlay(x=0, y=0, w=8, h=8, start=0.2, end=0.8, frames=(2, 8), still="t.png")
    scene = SceneInput(frames=10, background_color="#000000", overlays=(ov,), keep=(4, 10))
    args = segment_args([scene], PROFILE, "seg.mp4")
    graph = args[args.index("-filter_complex") + 1]
    # THEN the background starts at frame 4, the layer is made for frames 4…7 only
    assert "color=c=0x000000:s=160x96:r=10:d=0.6" in args
    assert "[0:v]settb=1/10[s0];[s0]setpts=N+4[s1]" in graph
    assert "tpad=stop=3:stop_mode=clone[s5];[s5]settb=1/10[s6];[s6]setpts=N+4[s7]" in graph
    assert args[args.index("-frames:v") + 1] == "6"


def test_a_crossfade_fades_the_next_scene_in_over_the_last_frames() -> None:
    a = SceneInput(frames=10, background_color="#000000", crossfade_frames=3)
    b = SceneInput(frames=8, background_color="#ffffff", fade_out=0.25)
    args = segment_args([a, b], PROFILE, "seg.mp4")
    graph = args[args.index("-filter_complex") + 1]
    # B's first 3 frames fade in (alpha) over A's frames 7…9, then the rest of B follows
    assert (
        "[s12]split=2[s13][s14];[s13]trim=end_frame=3[s15];[s15]format=yuva420p[s16];"
        "[s16]fade=alpha=1:d=0.3:st=0:t=in[s17];[s17]setpts=PTS+0.7/TB[s18];"
        "[s5][s18]overlay=eof_action=pass:format=yuv420[s19];"
        "[s14]trim=start_frame=3[s20];[s20]setpts=PTS-STARTPTS[s21];"
        "[s19][s21]concat=a=0:n=2:v=1[s22]"
    ) in graph
    assert "fade=d=0.25:st=0.55:t=out" in graph
    assert args[args.index("-frames:v") + 1] == "15" == str(chain_frames([a, b]))


def test_silence_when_there_is_no_sound() -> None:
    assert audio_args([], 1.0, PROFILE, "a.aac") == [
        "-f", "lavfi", *GUARDS, "-i", "anullsrc=r=48000:cl=stereo",
        "-filter_complex", "[0:a]apad[s0];[s0]atrim=end_sample=48000[s1]",
        "-map", "[s1]", "-f", "adts", "-aac_coder", "twoloop", "-ac", "2", "-ar", "48000",
        "-b:a", "128k", "-c:a", "aac", "-fflags", "+bitexact", "a.aac", "-y", "-xerror",
    ]  # fmt: skip


def test_a_window_of_the_programme_is_mixed_from_a_second_before_it() -> None:
    # GIVEN a 10 s bed with a chime at 1 s and another at 8 s, and a voice at 6 s
    from chalicelib.render.graph import VoiceInput

    sounds = [
        AudioInput("bed.m4a", 0, 10.0, fade_in=1, fade_out=2, loop=True),
        AudioInput("c.m4a", 1.0, 0.5),
        AudioInput("c.m4a", 8.0, 0.5),
    ]
    voice = VoiceInput("v.wav", start=6.0, length=1.0)
    # WHEN the window [7 s, 9 s) is encoded
    args = audio_args(sounds, 10.0, PROFILE, "a.aac", [voice], window=(336000, 432000))
    graph = args[args.index("-filter_complex") + 1]
    # THEN the mix starts at 5.6 s (before the voice's ramp, within a second of the window):
    # the first chime, over by then, is left out; the bed is cut there, its fades in place
    assert [args[i + 1] for i, a in enumerate(args) if a == "-i"] == ["bed.m4a", "c.m4a", "v.wav"]
    assert "atrim=start_sample=268800" in graph  # 5.6 s
    assert "afade=d=2:st=8:t=out" in graph
    # … the second chime and the voice are placed from there, the ducking too …
    assert "adelay=115200S:all=1" in graph and "adelay=19200S:all=1" in graph  # in samples
    assert r"min(t-0.0000\,1.8000-t)" in graph
    # … and the window is cut from it by sample, the programme ending with the video
    assert "atrim=end_sample=211200" in graph  # 10 s − 5.6 s
    assert graph.endswith(
        "atrim=end_sample=163200:start_sample=67200[s25];[s25]asetpts=PTS-STARTPTS[s26]"
    )


def test_mux_is_a_stream_copy_of_segments_and_audio() -> None:
    assert mux_args("segments.txt", "a.aac", 1.0, "out.mp4", 1024 / 48000) == [
        "-f", "concat", *GUARDS, "-safe", "1", "-i", "segments.txt",
        "-f", "aac", *GUARDS[:2], "-itsoffset", "-0.021333333", *GUARDS[2:], "-i", "a.aac",
        "-map", "0:v", "-map", "1:a",
        "-f", "mp4", "-c", "copy", "-fflags", "+bitexact", "-map_metadata", "-1",
        "-movflags", "+faststart", "-t", "1", "out.mp4", "-y",
    ]  # fmt: skip


def test_mux_mixes_a_looped_bed_and_a_delayed_cue() -> None:
    sounds = [AudioInput("bed.m4a", 0, 2.0, 0.5, 0, 1, loop=True), AudioInput("c.m4a", 1.5, 0.5)]
    args = audio_args(sounds, 2.0, PROFILE, "a.m4a")
    assert args[args.index("bed.m4a") - 3 : args.index("bed.m4a")] == ["-stream_loop", "-1", "-i"]
    graph = args[args.index("-filter_complex") + 1]
    assert "[s4]afade=d=1:st=1:t=out[s5]" in graph
    assert "adelay=72000S:all=1" in graph  # 1.5 s, in samples
    assert "amix=duration=longest:inputs=2:normalize=0" in graph


def test_poster_args() -> None:
    assert poster_args("v.mp4", 1.5, "p.jpg") == [
        *GUARDS, "-ss", "1.5", "-i", "v.mp4",
        "-map", "0:v", "-f", "image2", "-q:v", "3", "-update", "1", "-vframes", "1", "p.jpg", "-y",
    ]  # fmt: skip


def test_cut_scenes_are_concatenated_and_a_window_is_trimmed() -> None:
    a = SceneInput(frames=10, background_color="#000000")
    b = SceneInput(frames=8, background_color="#ffffff")
    args = segment_args([a, b], PROFILE, "seg.mp4", window=(4, 12))
    graph = args[args.index("-filter_complex") + 1]
    assert "concat=a=0:n=2:v=1" in graph
    assert "trim=end_frame=12:start_frame=4" in graph
    assert args[args.index("-frames:v") + 1] == "8"


def test_an_input_used_twice_is_opened_twice() -> None:
    # ffmpeg-python would merge identical inputs into one node, and splitting one input between
    # the first and the last scene can stall ffmpeg: each use gets its own input
    bg = VideoSource("/media/bg.mp4")
    scenes = [
        SceneInput(frames=10, background_video=bg),
        SceneInput(frames=10, background_color="#000000"),
        SceneInput(frames=10, background_video=bg),
        SceneInput(frames=10, background_color="#000000"),
    ]
    args = segment_args(scenes, PROFILE, "seg.mp4")
    assert [args[i + 1] for i, a in enumerate(args) if a == "-i"] == [
        "/media/bg.mp4",
        "color=c=0x000000:s=160x96:r=10:d=1",
        "/media/./bg.mp4",
        "color=c=0x000000:s=160x96:r=10:d=1,null",
    ]
    assert "split" not in args[args.index("-filter_complex") + 1]
    chime = AudioInput("c.m4a", 0.5, 0.3)
    audio = audio_args([chime, replace(chime, start=1.5)], 2.0, PROFILE, "a.m4a")
    assert [audio[i + 1] for i, a in enumerate(audio) if a == "-i"] == ["c.m4a", "./c.m4a"]


def test_frame_args_select_a_frame_by_number() -> None:
    from chalicelib.render.graph import frame_args

    args = frame_args("chunk.ts", 7, "poster.jpg")
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]select=eq(n\\,7)[s0];")
    assert "out_range=pc" in graph and "format=yuvj420p" in graph
    assert args[args.index("-protocol_whitelist") + 1] == "file"


def _is_value(token: str) -> bool:
    return not token.startswith("-") or token.lstrip("-").replace(".", "").isdigit()


def _input_options(args: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Each `-i` of an argument list with the options given since the previous one."""
    found, opts, i = [], {}, 0
    while i < len(args):
        if args[i] == "-i":
            found.append((args[i + 1], opts))
            opts, i = {}, i + 2
        elif args[i].startswith("-") and i + 1 < len(args) and _is_value(args[i + 1]):
            opts[args[i]] = args[i + 1]
            i += 2
        else:  # a flag (-y) or an output file
            opts[args[i]] = ""
            i += 1
    return found


def test_every_input_is_opened_file_only_with_bounded_probing() -> None:
    # GIVEN every argument list the builders make, with every kind of input they open
    from chalicelib.landing.snippet import gif_args
    from chalicelib.render.ffmpeg import INPUT_GUARDS, guard_inputs
    from chalicelib.render.graph import frame_args
    from chalicelib.render.hls import split_audio_args, split_video_args

    clip = VideoSource("/m/clip.mp4", trim=(0.2, 0.6), duration=1.0)
    scenes = [
        SceneInput(frames=10, background_video=VideoSource("/m/bg.mp4"), crossfade_frames=3,
                   overlays=(Overlay(0, 0, 8, 8, 0, 1, (0, 10), video=clip),)),
        SceneInput(frames=10, background_image="/w/bg.png", keep=(2, 10),
                   overlays=(Overlay(0, 0, 8, 8, 0, 1, (0, 10), still="/w/t.png"),)),
        SceneInput(frames=10, background_color="#000000"),
    ]  # fmt: skip
    sounds = [AudioInput("/m/bed.m4a", 0, 2.0, loop=True), AudioInput("/m/c.m4a", 1.0, 0.5)]
    lists = [
        segment_args(scenes, PROFILE, "seg.mp4"),
        audio_args(sounds, 2.0, PROFILE, "a.aac"),
        audio_args([], 2.0, PROFILE, "a.aac", window=(0, 4096)),
        mux_args("segments.txt", "a.aac", 2.0, "out.mp4", 0.02),
        poster_args("v.mp4", 1.0, "p.jpg"),
        frame_args("c.mp4", 3, "f.jpg"),
        split_video_args("run.mp4", "v_%04d.mp4", [20], 10.0),
        split_audio_args("a.aac", "a_%04d.mp4", [94], 10.0),
    ]
    for args in lists:
        inputs = _input_options(args)
        assert inputs
        for name, opts in inputs:
            # THEN each one is preceded by the file-only whitelist and the probe limits
            for option, value in INPUT_GUARDS.items():
                assert opts.get(option) == value, (name, option, args)
    # AND the runs decoding source media stop at the first decoding error (no endless loop)
    assert all("-xerror" in args for args in lists[:3])
    # AND the concat list is read in safe mode
    mux = _input_options(lists[3])[0][1]
    assert (mux["-f"], mux["-safe"]) == ("concat", "1")
    # AND the one runner adds the guards to any list that lacks them (a builder elsewhere)
    gif = gif_args(Path("v.mp4"), Path("t.gif"), start=0, seconds=1, width=80, fps=5, colors=64)
    for _, opts in _input_options(guard_inputs(gif)):
        assert {k: opts.get(k) for k in INPUT_GUARDS} == INPUT_GUARDS
    # …and leaves an explicit choice alone (a test reading HLS over HTTP)
    explicit = guard_inputs(["-protocol_whitelist", "http,tcp,file", "-i", "http://x/i.m3u8"])
    assert _input_options(explicit)[0][1]["-protocol_whitelist"] == "http,tcp,file"


def test_voices_duck_the_bed_and_are_sped_up_delayed_and_limited() -> None:
    from chalicelib.render.graph import VoiceInput, duck_expression

    bed = AudioInput("bed.m4a", 0, 4.0, loop=True)
    voice = VoiceInput("v.wav", start=1.0, length=1.5, tempo=1.1, gain=2.0)
    args = audio_args([bed], 4.0, PROFILE, "a.m4a", [voice], bed_gain=0.5)
    graph = args[args.index("-filter_complex") + 1]
    assert "volume=0.500000" in graph
    # The bed goes down 0.4 s before the voice and is back up 0.4 s after it ends.
    assert duck_expression([voice]) == "pow(0.25,clip(min(t-0.6000,2.9000-t)/0.4,0,1))"
    # (commas escaped in the filtergraph: the expression stays one option value)
    assert r"volume=pow(0.25\,clip(min(t-0.6000\,2.9000-t)/0.4\,0\,1)):eval=frame" in graph
    assert "atempo=1.100000" in graph and "volume=2.000000" in graph
    assert "adelay=48000S:all=1" in graph
    assert "amix=duration=first:inputs=2:normalize=0" in graph
    assert "alimiter=attack=5:latency=1:level=0:limit=0.794:release=50" in graph
    two = duck_expression([voice, VoiceInput("w.wav", start=3.0, length=0.5)])
    assert two.startswith("pow(0.25,max(clip(")
