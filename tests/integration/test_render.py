"""Real renders with the project's ffmpeg on tiny media, probed with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chalicelib.errors import AssetError, DataError, RenderError
from chalicelib.render.engine import render
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from tests.conftest import Campaign
from tests.media import frame_at, garble_frames, probe

FPS = 10


def render_record(campaign: Campaign, record: dict[str, object], out: Path, **kw: object) -> Path:
    plan = bind(load_template(campaign.template), record)
    return render(plan, out, **kw).path  # type: ignore[arg-type]


def test_a_video_and_its_poster(campaign: Campaign, out: Path) -> None:
    # GIVEN a 4-scene template with a music bed and a chime
    # WHEN one recipient is rendered
    video = render_record(campaign, {"first_name": "Ann"}, out / "a.mp4", poster=out / "a.jpg")
    # THEN the MP4 has the plan's duration to the frame, H.264 yuv420p + AAC, at canvas size
    p = probe(video)
    assert p.frames == round(2.6 * FPS)
    assert abs(p.duration - 2.6) <= 1 / FPS
    assert (p.width, p.height, p.pix_fmt) == (160, 96, "yuv420p")
    assert (p.video_codec, p.audio_codec) == ("h264", "aac")
    with Image.open(out / "a.jpg") as poster:
        assert (poster.format, poster.size) == ("JPEG", (160, 96))
    assert sorted(f.name for f in out.iterdir()) == ["a.jpg", "a.mp4"]


def test_a_conditional_scene_changes_the_duration(campaign: Campaign, out: Path) -> None:
    basic = probe(render_record(campaign, {"first_name": "A"}, out / "basic.mp4"))
    pro = probe(render_record(campaign, {"first_name": "A", "plan": "pro"}, out / "pro.mp4"))
    assert pro.frames - basic.frames == round(0.8 * FPS)
    # the pro scene's red background is really there: frame in the middle of it
    red = frame_at(out / "pro.mp4", round(2.4 * FPS))
    assert red[..., 0].mean() > 150 and red[..., 1].mean() < 90


def _greeting_frame(campaign: Campaign, out: Path, text: str) -> np.ndarray:
    tpl = campaign.template.read_text().replace("Hi {{ first_name }}!", text)
    campaign.write_template(tpl)
    video = render_record(campaign, {"first_name": "Ann"}, out / f"{len(text)}.mp4")
    return frame_at(video, round(1.5 * FPS)).astype(int)


def test_text_is_really_drawn_in_its_box(campaign: Campaign, out: Path) -> None:
    with_text = _greeting_frame(campaign, out, "Hi {{ first_name }}!")
    without = _greeting_frame(campaign, out, "")
    diff = np.abs(with_text - without).sum(axis=2)
    box = diff[28:68, 10:150]  # the 140×40 box centred on the 160×96 canvas
    assert box.max() > 200
    # and nowhere else, but for the encoder's noise
    assert diff.sum() - box.sum() < 0.02 * diff.sum()


@pytest.mark.parametrize(
    "name",
    [
        'O\'Brien: "quoted" \\ back',
        "%{pts} %{localtime} {{ x }}",
        "line one\nline two",
        "Zoë 🎉👋🏽",
        "مريم",
        "שרה",
        "山田太郎",
        "x" * 60,
    ],
)
def test_hard_text_renders_verbatim(campaign: Campaign, out: Path, name: str) -> None:
    video = render_record(campaign, {"first_name": name}, out / "hard.mp4", preview=True)
    frame = frame_at(video, 15)  # the greeting scene at the preview rate
    background = np.array([0x10, 0x20, 0x40])
    assert (np.abs(frame.astype(int) - background).sum(axis=2) > 100).sum() > 20


def test_preview_is_small_and_slow(campaign: Campaign, out: Path) -> None:
    campaign.write_template(campaign.template.read_text().replace("fps: 10}", "fps: 30}"))
    p = probe(render_record(campaign, {"first_name": "A"}, out / "p.mp4", preview=True))
    # the 160×96 canvas at 30 fps previews at the 10 fps preview rate
    assert p.fps == 10
    assert p.frames == round(2.6 * 10)


def test_a_personal_image_in_a_circle(campaign: Campaign, out: Path) -> None:
    record = {"first_name": "A", "avatar": "assets/avatar.png"}
    frame = frame_at(render_record(campaign, record, out / "av.mp4"), 15).astype(int)
    # the avatar (green) is centred at (0.85·160, 0.2·96) = (136, 19) with a 30 px diameter
    assert frame[19, 136, 1] > 150 and frame[19, 136, 0] < 100
    corner = frame[19 - 14, 136 - 14]  # inside the square box, outside the circle
    assert corner[1] < 100


def test_bad_record_leaves_no_file(campaign: Campaign, out: Path) -> None:
    with pytest.raises(DataError) as info:
        render_record(campaign, {"first_name": ""}, out / "x.mp4", poster=out / "x.jpg")
    assert info.value.field == "first_name"
    assert list(out.iterdir()) == []


def test_an_image_that_is_not_an_image(campaign: Campaign, out: Path) -> None:
    (campaign.root / "assets" / "fake.png").write_text("#EXTM3U\nhttp://169.254.169.254/\n")
    with pytest.raises(AssetError, match="not an image"):
        render_record(campaign, {"first_name": "A", "avatar": "assets/fake.png"}, out / "x.mp4")
    assert list(out.iterdir()) == []


def test_a_broken_video_is_a_render_error_and_leaves_no_file(campaign: Campaign, out: Path) -> None:
    # Its frames garbled, its boxes intact (a truncated file is refused before ffmpeg runs:
    # tests/reliability/test_hostile_media.py).
    garble_frames(campaign.root / "assets" / "loop.mp4")
    with pytest.raises(RenderError) as info:
        render_record(campaign, {"first_name": "A"}, out / "x.mp4", poster=out / "x.jpg")
    assert info.value.stderr_tail  # ffmpeg's own words come along
    assert list(out.iterdir()) == []


def test_same_inputs_same_bytes(campaign: Campaign, out: Path) -> None:
    a = render_record(campaign, {"first_name": "Ann", "plan": "pro"}, out / "a.mp4")
    b = render_record(campaign, {"first_name": "Ann", "plan": "pro"}, out / "b.mp4")
    assert a.read_bytes() == b.read_bytes()


def test_a_trimmed_looping_video_layer(campaign: Campaign, out: Path) -> None:
    # GIVEN a 1 s source looped over a 1.5 s layer that starts at 0.5 s, from its 0.2 s mark
    tpl = campaign.template.read_text().replace(
        "      - {type: image,",
        "      - {type: video, src: assets/loop.mp4, size: [60, 40], at: [0.2, 0.8],"
        " start: 0.2, trim: [0.2, 0.7]}\n      - {type: image,",
    )
    campaign.write_template(tpl)
    video = render_record(campaign, {"first_name": "A"}, out / "v.mp4")
    p = probe(video)
    assert p.frames == 26
    # the layer is absent before its start and present after it
    before = frame_at(video, 11).astype(int)[77, 32]
    after = frame_at(video, 15).astype(int)[77, 32]
    assert np.abs(after - before).sum() > 30


def test_mp4_is_faststart(campaign: Campaign, out: Path) -> None:
    data = render_record(campaign, {"first_name": "A"}, out / "f.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
