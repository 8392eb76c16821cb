"""Hostile media, local and served: a decompression bomb, truncated MP4s, a playlist dressed as
an image, a garbled clip and 100,000-character texts. Each goes through a real render of the
tiny campaign and comes back as a clear error naming its field, well within the render
timeout, while the recipients beside it render."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.errors import AssetError
from chalicelib.pipeline.folder import RESULTS, read_results
from chalicelib.render.engine import render
from chalicelib.settings import get_settings
from chalicelib.template.bind import bind
from chalicelib.template.library import load_template
from tests.conftest import BASE_TEMPLATE, Campaign, run_batch
from tests.fakes.assets import AssetHost

RENDER_TIMEOUT = 60  # seconds per ffmpeg run in these tests

# The tiny campaign, with a personal video clip and a text variable without a max_length.
TEMPLATE = BASE_TEMPLATE.replace(
    "  avatar: {type: image}\n",
    "  avatar: {type: image}\n  clip: {type: video}\n  nickname: {type: text}\n",
).replace(
    "      - {type: image, src: \"{{ avatar }}\"",
    "      - {type: video, src: \"{{ clip }}\", size: [40, 24], at: [0.2, 0.8], when: clip}\n"
    "      - {type: image, src: \"{{ avatar }}\"",
)  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG header claiming width×height RGB pixels, with a tiny IDAT (a few hundred bytes on
    disk; 2.7 GB if anything ever decoded it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1 + 3 * width), 9)  # the first row only
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"


def garbled(mp4: bytes) -> bytes:
    """The clip with its boxes intact and every byte of its frames garbage."""
    data = bytearray(mp4)
    at = data.index(b"mdat")
    end = at - 4 + int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : end] = b"\xab" * (end - at - 4)
    return bytes(data)


@pytest.fixture
def hostile(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> Iterator[AssetHost]:
    """The campaign with hostile files under assets/, and an HTTPS host serving the same,
    trusted and reachable on 127.0.0.1 (the fetcher's test escape hatch)."""
    campaign.write_template(TEMPLATE)
    assets = campaign.root / "assets"
    loop = (assets / "loop.mp4").read_bytes()
    files = {
        "bomb.png": png_bomb(),
        "playlist.png": PLAYLIST,
        "cut.mp4": loop[:700],  # its moov box never came
        "cut_moov.mp4": loop[:-200],  # its moov box cut short
        "garbled.mp4": garbled(loop),
    }
    for name, data in files.items():
        (assets / name).write_bytes(data)
    with AssetHost(tls=True) as host:
        assert host.tls_files is not None
        for name, data in files.items():
            host.serve(f"/{name}", data, "video/mp4" if name.endswith(".mp4") else "image/png")
        monkeypatch.setenv("REEL_FETCH_CA_BUNDLE", str(host.tls_files.ca))
        monkeypatch.setenv("REEL_FETCH_ALLOW_NETWORKS", "127.0.0.1/32")
        monkeypatch.setenv("REEL_RENDER_TIMEOUT", str(RENDER_TIMEOUT))
        bootstrap.reset()
        yield host


# recipient → (record beyond first_name, field, code, words of the reason)
ASSET, DATA = "invalid_asset", "invalid_data"
CASES: dict[str, tuple[dict[str, str], str, str, str]] = {
    "bomb_local": ({"avatar": "assets/bomb.png"}, "avatar", ASSET, "30000×30000"),
    "bomb_served": ({"avatar": "{url}/bomb.png"}, "avatar", ASSET, "30000×30000"),
    "playlist_local": ({"avatar": "assets/playlist.png"}, "avatar", ASSET, "an HLS playlist"),
    "playlist_served": ({"avatar": "{url}/playlist.png"}, "avatar", ASSET, "an HLS playlist"),
    "cut_local": ({"clip": "assets/cut.mp4"}, "clip", ASSET, "'mdat' box needs"),
    "cut_served": ({"clip": "{url}/cut.mp4"}, "clip", ASSET, "'mdat' box needs"),
    "cut_moov": ({"clip": "assets/cut_moov.mp4"}, "clip", ASSET, "'moov' box needs"),
    "long_text": ({"first_name": "x" * 100_000}, "first_name", DATA, "the limit is 60"),
    "long_nickname": ({"nickname": "y" * 100_000}, "nickname", DATA, "the limit is 500"),
}


def test_hostile_media_fail_alone_with_their_field(
    campaign: Campaign, hostile: AssetHost, tmp_path: Path
) -> None:
    # GIVEN one batch: a good recipient, the hostile ones, and a clip whose frames are garbage
    rows = {"good": {"first_name": "Ann", "avatar": "assets/avatar.png", "clip": "assets/loop.mp4"}}
    for rid, (extra, *_) in CASES.items():
        rows[rid] = {"first_name": "A"} | {k: v.format(url=hostile.url) for k, v in extra.items()}
    rows["garbled"] = {"first_name": "A", "clip": "assets/garbled.mp4"}
    data = tmp_path / "people.jsonl"
    data.write_text("".join(json.dumps({"recipient_id": r, **v}) + "\n" for r, v in rows.items()))
    # WHEN it renders
    summary = run_batch(campaign.template, data, tmp_path / "out")
    results = {r.recipient_id: r for r in read_results(tmp_path / "out" / RESULTS)}
    # THEN the good one is a video, and each hostile one failed alone, saying where and why
    assert results["good"].status.value == "rendered"
    assert summary.counts == {"rendered": 1, "cached": 0, "failed": len(CASES) + 1}
    for rid, (_, field, code, words) in CASES.items():
        r = results[rid]
        assert (r.status.value, r.field, r.code) == ("failed", field, code), r
        assert words in (r.reason or ""), r.reason
    # AND the garbled clip (boxes intact, so only decoding finds it) fails at its first
    # decoding error: ffmpeg's words, not a timeout after looping over it for a minute
    r = results["garbled"]
    assert (r.status.value, r.code) == ("failed", "render_failed")
    assert "timed out" not in (r.reason or "") and "Invalid" in (r.reason or "")
    # AND nothing was fetched twice or left half-written
    fetched = get_settings().cache_dir.resolve() / "fetched"
    assert not list(fetched.glob(".*"))
    served = hostile.paths()
    assert sorted(served) == ["/bomb.png", "/cut.mp4", "/playlist.png"]  # each once


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"avatar": "assets/bomb.png"}, "avatar", "30000×30000"),
        ({"avatar": "assets/playlist.png"}, "avatar", "is not an image Reel accepts"),
        ({"clip": "assets/cut.mp4"}, "clip", "is truncated"),
        ({"clip": "assets/playlist.png"}, "clip", "is not a video Reel accepts"),
    ],
)
def test_a_plan_bound_without_the_pipeline_is_checked_by_the_engine(
    campaign: Campaign,
    hostile: AssetHost,
    out: Path,
    record: dict[str, str],
    field: str,
    words: str,
) -> None:
    # GIVEN a plan bound and rendered directly (as `reel render` does), not through a job
    plan = bind(load_template(campaign.template), {"first_name": "A", **record})
    # THEN the engine refuses it before ffmpeg runs, naming the variable, leaving no file
    with pytest.raises(AssetError) as info:
        render(plan, out / "x.mp4", poster=out / "x.jpg")
    assert info.value.field == field
    assert words in info.value.message
    assert list(out.iterdir()) == []
