"""Personal HLS streams with real ffmpeg on the tiny campaign: the playlist decodes to the whole
video, new data changes only the personal chunks' URLs, and concurrent viewers cause one render
per chunk group. Served over real HTTP by `reel serve` where the test is about the wire."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import av
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.landing.stream import LambdaRenders, ThreadRenders
from chalicelib.render import engine
from chalicelib.render import ffmpeg as ff
from chalicelib.services import recipients
from tests.conftest import API_KEY, Campaign
from tests.server import reel_serve

KEY = API_KEY
ANY = {"accept": "*/*"}  # what players send (binary responses need a matching Accept)
TINY_FRAMES = 26  # intro 1.0 + greeting 1.0 + outro 0.6 (cuts) → 2.6 s at 10 fps
TINY_SECONDS = 2.6


def put_data(url: str, key: str, rid: str, data: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"campaign_id": "tiny", "data": data}).encode()
    req = urllib.request.Request(f"{url}/recipients/{rid}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return bytes(resp.read())


def uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def durations(playlist: str) -> list[float]:
    return [float(m) for m in re.findall(r"#EXTINF:([0-9.]+),", playlist)]


def test_ffmpeg_decodes_the_personal_playlist(campaign: Campaign, tmp_path: Path) -> None:
    with reel_serve(campaign.root.parent, tmp_path / "data") as (url, key):
        # GIVEN a new recipient, never rendered
        page = put_data(url, key, "ada", {"first_name": "Ada", "plan": "basic"})["page"]
        token = page.rsplit("/", 1)[1]
        # WHEN ffmpeg reads their stream's first rendition over HTTP
        master = get(f"{url}/hls/{token}/index.m3u8").decode()
        first = uris(master)[0]
        media = f"{url}/hls/{token}/{first}"
        listed = sum(durations(get(media).decode()))
        frames = tmp_path / "frames.txt"
        args = ["-protocol_whitelist", "http,tcp,file", "-i", media, "-map", "0:v"]
        ff.run([*args, "-f", "framecrc", str(frames)], timeout=120)
        # THEN every frame of the video is there, in order, and the playlist says how long
        lines = [ln for ln in frames.read_text().splitlines() if not ln.startswith("#")]
        assert len(lines) == TINY_FRAMES
        assert listed == pytest.approx(TINY_SECONDS, abs=1e-6)
        # AND the audio rendition covers the same time in whole AAC frames, its priming frame
        # first, and the whole stream decodes with it
        audio = get(f"{url}/hls/{token}/audio.m3u8").decode()
        frame = 1024 / 48000
        assert TINY_SECONDS + frame <= sum(durations(audio)) < TINY_SECONDS + 2 * frame
        out = tmp_path / "whole.mp4"
        ff.run(["-protocol_whitelist", "http,tcp,file", "-i", f"{url}/hls/{token}/index.m3u8",
                "-c", "copy", str(out)], timeout=120)  # fmt: skip
        with av.open(str(out)) as c:
            assert c.streams.audio and c.streams.video
            v = c.streams.video[0]
            decoded = sum(1 for _ in c.decode(v))
            assert decoded == TINY_FRAMES
            assert float(c.duration or 0) / 1e6 == pytest.approx(TINY_SECONDS, abs=0.1)


def test_ffmpegs_hls_demuxer_copies_the_stream_without_a_warning(
    campaign: Campaign, tmp_path: Path
) -> None:
    """A strict, independent client: ffmpeg's own HLS demuxer copies a new recipient's stream
    from `reel serve` (video, audio, every chunk boundary) and has nothing to warn about. With
    MPEG-TS chunks muxed apart it reported "Packet corrupt" at every boundary (continuity
    counters restarting at 0); CMAF fragments carry none."""
    with reel_serve(campaign.root.parent, tmp_path / "data") as (url, key):
        # GIVEN a new recipient with a personal greeting between static scenes
        page = put_data(url, key, "ada", {"first_name": "Ada", "plan": "pro"})["page"]
        token = page.rsplit("/", 1)[1]
        # WHEN ffmpeg copies their stream (the master playlist: a rendition and the audio)
        out = tmp_path / "copy.mp4"
        cmd = [ff.ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "warning"]
        cmd += ["-protocol_whitelist", "http,tcp", "-i", f"{url}/hls/{token}/index.m3u8"]
        cmd += ["-map", "0:v:0", "-map", "0:a:0", "-c", "copy", "-y", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        # THEN it says nothing at all (no corrupt packet, no discontinuity, no warning)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == ""
        # AND the copy holds every frame and the whole audio
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(c.streams.video[0])) == 34  # 3.4 s at 10 fps
        with av.open(str(out)) as c:
            audio = c.streams.audio[0]
            seconds = sum(f.samples for f in c.decode(audio)) / (audio.rate or 1)
            assert seconds == pytest.approx(3.4, abs=0.05)


@pytest.fixture
def client(local_app: Client) -> Client:
    return local_app


def _put(client: Client, rid: str, data: dict[str, Any]) -> str:
    resp = client.http.put(
        f"/recipients/{rid}/data",
        headers={"content-type": "application/json", "x-api-key": KEY},
        body=json.dumps({"campaign_id": "tiny", "data": data}),
    )
    assert resp.status_code == 200, resp.body
    return str(json.loads(resp.body)["page"]).rsplit("/", 1)[1]


def _playlist(client: Client, token: str, name: str) -> str:
    resp = client.http.get(f"/hls/{token}/{name}")
    assert resp.status_code == 200, resp.body
    assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    return str(resp.body.decode() if isinstance(resp.body, bytes) else resp.body)


def test_new_data_changes_only_the_personal_chunks(client: Client) -> None:
    # GIVEN a recipient's stream
    token = _put(client, "ada", {"first_name": "Ada"})
    rendition = uris(_playlist(client, token, "index.m3u8"))[0]
    before = uris(_playlist(client, token, rendition))
    audio_before = _playlist(client, token, "audio.m3u8")
    # WHEN their data changes (same link) and the playlist is asked for again
    assert _put(client, "ada", {"first_name": "Grace"}) == token
    after = uris(_playlist(client, token, rendition))
    # THEN the personal chunks have new URLs, the static ones keep theirs
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed and all(a.startswith("p/") and b.startswith("p/") for a, b in changed)
    kept = [a for a, b in zip(before, after, strict=True) if a == b]
    assert kept and all(a.startswith("../s/") for a in kept)
    assert _playlist(client, token, "audio.m3u8") == audio_before
    # AND each chunk is served: static ones publicly cacheable, personal ones privately
    for uri in after:
        path = f"/hls/s/{uri[5:]}" if uri.startswith("../s/") else f"/hls/{token}/{uri}"
        resp = client.http.get(path, headers=ANY)
        assert resp.status_code == 200, resp.body
        assert resp.headers["Content-Type"] == "video/mp4"
        scope = "public" if uri.startswith("../") else "private"
        assert resp.headers["Cache-Control"] == f"{scope}, max-age=31536000, immutable"
    # AND a personal chunk is not served under the shared path, nor an old one under new data
    personal = next(u for u in after if u.startswith("p/"))
    assert client.http.get(f"/hls/s/{personal[2:]}", headers=ANY).status_code == 404


def test_two_viewers_at_once_cause_one_render(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: Counter[str] = Counter()
    real = engine.render_run

    def counting(run: Any, profile: Any, work: Path, out: Path, config: Any) -> None:
        rendered[f"{profile.height}:{run.start}"] += 1
        real(run, profile, work, out, config)

    monkeypatch.setattr(engine, "render_run", counting)
    # GIVEN a new recipient nobody has watched
    token = _put(client, "bob", {"first_name": "Bob", "plan": "pro"})
    rendition = uris(_playlist(client, token, "index.m3u8"))[0]
    entries = uris(_playlist(client, token, rendition))
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    # WHEN two viewers fetch the playlist and every chunk at the same moment
    def viewer() -> None:
        barrier.wait()
        _playlist(client, token, rendition)
        codes = []
        for uri in entries:
            path = f"/hls/s/{uri[5:]}" if uri.startswith("../s/") else f"/hls/{token}/{uri}"
            codes.append(client.http.get(path, headers=ANY).status_code)
        results.append(codes)

    threads = [threading.Thread(target=viewer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # THEN both get every chunk, and each run was rendered once, each group made once
    assert results == [[200] * len(entries)] * 2
    assert rendered and set(rendered.values()) == {1}
    threads_renders = bootstrap.streams().renders
    assert isinstance(threads_renders, ThreadRenders)  # the local backend: worker threads
    renders = threads_renders.scheduler.renders
    assert renders and set(renders.values()) == {1}


def test_unknown_streams_and_chunks_are_404(client: Client) -> None:
    assert client.http.get("/hls/nosuchtoken0123/index.m3u8").status_code == 404
    assert client.http.get(f"/hls/s/{'0' * 64}.m4s").status_code == 404
    assert client.http.get(f"/hls/s/{'0' * 64}.mp4").status_code == 404
    assert client.http.get("/hls/s/evil.m4s").status_code == 404
    token = _put(client, "cy", {"first_name": "Cy"})
    assert client.http.get(f"/hls/{token}/999p.m3u8").status_code == 404
    assert client.http.get(f"/hls/{token}/p/{'1' * 64}.m4s").status_code == 404
    assert client.http.get(f"/hls/{token}/s/{'1' * 64}.m4s").status_code == 404


def test_the_page_streams_with_hlsjs_served_by_the_app(client: Client) -> None:
    token = _put(client, "dee", {"first_name": "Dee"})
    html = client.http.get(f"/v/{token}").body.decode()
    config = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])
    assert config["hls_url"] == f"../hls/{token}/index.m3u8"
    assert html.index("../static/hls.min.js") < html.index("../static/player.js")
    script = client.http.get("/static/hls.min.js")  # vendored by `make player` (npm)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert client.http.get("/static/vendor%2Fhls.min.js").status_code == 404


def test_on_aws_groups_render_in_the_render_lambda(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same routes on moto: missing groups are handed to the render Lambda by asynchronous
    invocations (the real handler, run in-process by the dispatcher), chunks land in S3."""
    monkeypatch.setenv("REEL_API_KEYS", KEY)
    bootstrap.reset()
    with Client(app, stage_name="dev") as client:
        token = _put(client, "ada", {"first_name": "Ada"})
        master = _playlist(client, token, "index.m3u8")
        media = _playlist(client, token, uris(master)[0])
        chunk_uris = uris(media)
        assert any(u.startswith("p/") for u in chunk_uris), media  # personal ones: the token's
        for uri in chunk_uris:
            if uri.startswith("https://"):
                continue  # stored already: the store's (CloudFront's) signed URL
            resp = client.http.get(f"/hls/{token}/{uri}", headers={"accept": "video/mp4"})
            assert resp.status_code == 200, (uri, resp.body[:200])
            assert resp.body[4:8] == b"moof"  # a CMAF fragment
        # Once stored, static chunks and the initialization segment are listed by their signed
        # URL in the store (CloudFront when configured): the edge serves them; personal ones
        # stay behind the API
        again = _playlist(client, token, uris(master)[0])
        shared = [u for u in uris(again) if not u.startswith("p/")]
        assert shared and all(u.startswith("https://") and "/hls/s/" in u for u in shared)
        # (no worker threads on AWS: the renders are the render Lambda's)
        assert isinstance(bootstrap.streams().renders, LambdaRenders)
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', again)
        assert init and init[1].startswith("https://") and ".mp4" in init[1]
        assert [u for u in uris(again) if u.startswith("p/")] == [
            u for u in chunk_uris if u.startswith("p/")
        ]
        # The page's poster, made from the stream by the render Lambda (the API has no ffmpeg)
        poster = client.http.get(f"/v/{token}/poster.jpg", headers={"accept": "image/jpeg"})
        assert poster.status_code == 200, poster.body[:200]
        assert poster.body[:2] == b"\xff\xd8"
        stills = [p for _, p in aws.dispatcher.calls if p.get("action") == "hls_still"]
        assert len(stills) == 1
    groups = [p for name, p in aws.dispatcher.calls if p.get("action") == "hls_group"]
    assert groups, "no group was rendered through the Lambda"
    assert all(name == "render" for name, p in aws.dispatcher.calls if p.get("action"))
    assert set(aws.dispatcher.kinds) == {"Event"}  # asynchronous: nobody waits for a render
    keys = [p["key"] for p in groups]
    assert len(keys) == len(set(keys))  # one dispatch per group
    listing = aws.s3.list_objects_v2(Bucket=aws_bucket(), Prefix="hls/p/")
    assert listing.get("KeyCount", 0) > 0


def aws_bucket() -> str:
    from tests.aws import BUCKET

    return BUCKET


class Atomic:
    """The claims of the DynamoDB adapter, one at a time. DynamoDB applies a conditional write
    atomically; moto checks the condition and then writes, without a lock, so two threads of
    this test could both see the key free (seen: about one run in ten made a group twice)."""

    def __init__(self, claims: Any) -> None:
        self._claims = claims
        self._lock = threading.Lock()

    def claim(self, key: str, expires_at: float) -> bool:
        with self._lock:
            return bool(self._claims.claim(key, expires_at))


def test_on_aws_two_api_instances_render_a_group_once(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API containers (two stream services over the same tables and bucket) asked for the
    same new recipient at once: each group is dispatched once, and rendered once."""
    import boto3

    from chalicelib.errors import NotReadyError
    from chalicelib.landing.stream import Streams
    from chalicelib.settings import get_settings

    b = bootstrap.backends()
    record = recipients.set_recipient_data(b, "tiny", "ada", {"first_name": "Ada"})
    claims = Atomic(b.claims)

    def instance() -> Streams:
        client = boto3.client("lambda", region_name="us-east-1")
        renders = LambdaRenders(
            client, get_settings().render_function, claims=claims, store=b.cache.store
        )
        return Streams(b, renders, wait=2.0, cdn=True)

    first, second = instance(), instance()
    errors: list[BaseException] = []

    def fetch(streams: Streams, key: str, personal: bool) -> None:
        for _ in range(60):  # a player: retries a 503 (Retry-After: 1)
            try:
                streams.chunk(key, personal=personal, token=record.token)
                return
            except NotReadyError:
                time.sleep(0.5)
        raise AssertionError(f"chunk {key[:16]} never came")

    def watch(streams: Streams) -> None:
        try:
            name = uris(streams.master(record.token))[0]
            for uri in uris(streams.media(record.token, name.removesuffix(".m3u8"))):
                if uri.startswith("https://"):
                    continue
                key = uri.rsplit("/", 1)[-1].removesuffix(".m4s")
                fetch(streams, key, uri.startswith("p/"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=watch, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    calls = Counter(p["key"] for _, p in aws.dispatcher.calls if p.get("action") == "hls_group")
    assert calls and set(calls.values()) == {1}
