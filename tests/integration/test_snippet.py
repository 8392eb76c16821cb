"""The email snippet: a looping GIF thumbnail made by real ffmpeg, and its escaped HTML."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from chalicelib.errors import DataError, RenderError
from chalicelib.landing.snippet import gif_thumbnail, snippet_html
from chalicelib.render import ffmpeg as ff


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 160x96 H.264 video with moving content (lavfi testsrc2)."""
    path = tmp_path_factory.mktemp("snippet") / "clip.mp4"
    ff.run(["-y", "-f", "lavfi", "-i", "testsrc2=s=160x96:r=25:d=4", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", str(path)])  # fmt: skip
    return path


def _gif(path: Path) -> tuple[int, int, int, bool, object]:
    with Image.open(path) as im:
        return im.width, im.height, im.n_frames, im.is_animated, im.info.get("loop")


def test_gif_is_animated_looping_and_within_budget(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "thumb.gif"
    info = gif_thumbnail(video, out)
    width, height, frames, animated, loop = _gif(out)
    assert info.path == out.resolve()
    assert info.bytes == out.stat().st_size <= 1_000_000
    # never upscaled: the 160 px source stays 160 px, aspect ratio kept
    assert (info.width, info.height) == (width, height) == (160, 96)
    assert animated and frames > 1 and info.frames == frames
    assert 25 <= frames <= 31  # 3 s at 10 fps
    assert loop == 0
    assert list(tmp_path.iterdir()) == [out]  # no temp file left over


def test_width_and_fps_are_honoured(video: Path, tmp_path: Path) -> None:
    info = gif_thumbnail(video, tmp_path / "small.gif", seconds=2, width=80, fps=5)
    assert (info.width, info.height) == (80, 48)
    assert 8 <= info.frames <= 11


def test_tight_budget_walks_down_the_ladder(video: Path, tmp_path: Path) -> None:
    full = gif_thumbnail(video, tmp_path / "full.gif")
    # GIVEN a budget just below the size of the full-quality GIF
    budget = full.bytes - 1
    # WHEN a GIF is made within it
    info = gif_thumbnail(video, tmp_path / "tight.gif", max_bytes=budget)
    # THEN a smaller one fits
    assert info.bytes <= budget
    assert info.width < full.width
    assert _gif(tmp_path / "tight.gif")[4] == 0


def test_impossible_budget_raises_and_leaves_nothing(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.gif"
    with pytest.raises(RenderError, match="budget of 500 bytes") as caught:
        gif_thumbnail(video, out, max_bytes=500)
    assert caught.value.field == "max_bytes"
    assert list(tmp_path.iterdir()) == []


def test_start_beyond_the_end_is_clamped(video: Path, tmp_path: Path) -> None:
    info = gif_thumbnail(video, tmp_path / "late.gif", start=60.0, seconds=2)
    # the last 2 s of the 4 s video
    assert info.frames >= 15
    with Image.open(info.path) as im:
        assert im.is_animated


def test_seconds_longer_than_the_video_is_clamped(video: Path, tmp_path: Path) -> None:
    info = gif_thumbnail(video, tmp_path / "long.gif", seconds=30, fps=5)
    assert 18 <= info.frames <= 21  # 4 s at 5 fps, not 30 s


def test_unreadable_video_raises_render_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"not a video")
    with pytest.raises(RenderError):
        gif_thumbnail(bogus, tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


PAGE = "https://videos.example.com/v/AbC123?utm_source=email&utm_medium=gif"
GIF = "https://cdn.example.com/c/welcome/r1/thumb.gif"


def test_html_links_the_gif_to_the_page() -> None:
    html = snippet_html(page_url=PAGE, gif_url=GIF, title="Your video", alt="Ada's video",
                        width=480, height=270)  # fmt: skip
    page = PAGE.replace("&", "&amp;")
    assert html.count(f'<a href="{page}"') == 2  # the image and the text fallback
    assert f'<img src="{GIF}"' in html
    assert 'width="480" height="270"' in html
    assert 'alt="Ada&#x27;s video"' in html
    assert ">Watch your video</a>" in html
    assert "<table" in html and "<script" not in html and "<style" not in html
    assert "<link" not in html and "class=" not in html


def test_html_escapes_hostile_text() -> None:
    html = snippet_html(
        page_url=PAGE, gif_url=GIF, title='<script>alert(1)</script>" onload="x',
        alt='"><img src=x onerror=alert(1)>', width=160, height=96,
    )  # fmt: skip
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onload=&quot;x" in html
    assert "<img src=x" not in html
    assert html.count("<img") == 1


@pytest.mark.parametrize(
    ("field", "url"),
    [("page_url", "javascript:alert(1)"), ("gif_url", "data:image/gif;base64,R0lG"),
     ("page_url", "/relative/path")],
)  # fmt: skip
def test_html_rejects_non_http_urls(field: str, url: str) -> None:
    urls = {"page_url": PAGE, "gif_url": GIF, field: url}
    with pytest.raises(DataError) as caught:
        snippet_html(**urls, title="t", alt="a", width=10, height=10)
    assert caught.value.field == field
