"""A choice on the personal stream (`reel serve`, real HTTP, real ffmpeg): the viewer picks
"pro" on their page; the record changes as `PUT /recipients/{id}/data` would change it, and the
stream asked for next shows the pro offer where the outro was (its pixels differ there)."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from PIL import Image, ImageStat

from chalicelib.render import ffmpeg as ff
from tests.conftest import Campaign
from tests.integration.test_hls import get, put_data, uris
from tests.interactive import interactive_template
from tests.server import reel_serve


def frame_at(url: str, seconds: float, out: Path) -> tuple[float, ...]:
    """The mean colour of the stream's frame at `seconds`: the stream read by ffmpeg over HTTP
    from its start (chunks are rendered as they are asked for), then that frame decoded."""
    whole = out.with_suffix(".mp4")
    args = ["-protocol_whitelist", "http,tcp,file", "-i", url, "-map", "0:v:0", "-c", "copy"]
    ff.run([*args, "-y", str(whole)], timeout=120)
    ff.run(["-ss", f"{seconds}", "-i", str(whole), "-frames:v", "1", "-y", str(out)], timeout=60)
    with Image.open(out) as image:
        return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def test_a_choice_changes_the_next_personal_chunks(campaign: Campaign, tmp_path: Path) -> None:
    campaign.write_template(interactive_template())
    with reel_serve(campaign.root.parent, tmp_path / "data") as (url, key):
        page = put_data(url, key, "ada", {"first_name": "Ada", "plan": "basic"})["page"]
        token = page.rsplit("/", 1)[1]
        html = get(page).decode()
        signed = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])[
            "token"
        ]
        # (the first rendition's playlist, asked for again after the choice: new chunk URLs)
        rendition = uris(get(f"{url}/hls/{token}/index.m3u8").decode())[0]
        stream = f"{url}/hls/{token}/{rendition}"
        # GIVEN the basic plan: the outro (black) follows the greeting at 2.0 s
        before = frame_at(stream, 2.3, tmp_path / "before.png")
        assert max(before) < 30
        # WHEN Ada chooses "pro" on her page
        body = {
            "token": signed,
            "events": [
                {
                    "id": "choice-0001",
                    "kind": "choice",
                    "ts": 1.8e12,
                    "interaction": "pick_plan",
                    "option": "pro",
                }
            ],
        }
        req = urllib.request.Request(f"{url}/events", json.dumps(body).encode(), method="POST")
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 202
        # THEN her stream, asked for again, plays the pro offer (the red image) there
        after = frame_at(stream, 2.3, tmp_path / "after.png")
        red, green, blue = after
        assert red > 150 and green < 80 and blue < 80, after
        assert before != after
