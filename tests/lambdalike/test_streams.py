"""Personal streams under a harness that behaves like Lambda (tests/lambdalike/harness.py):
containers frozen once they have answered, cold starts, asynchronous invocations, one moto
server. The old design (work left on a thread after the response) stalls there; the new one
(every missing group handed to the render Lambda by an asynchronous invocation) does not."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.render import ffmpeg as ff
from chalicelib.render import hls
from chalicelib.services import templates
from chalicelib.services.streams import stream_plan, stream_source
from tests.conftest import Campaign
from tests.lambdalike.harness import (
    API_KEY,
    BUCKET,
    DEAD_LETTERS,
    Function,
    Stack,
    lambda_stack,
)

LEASE = "2"  # seconds: a render claim and a dispatch (production: 15)
RETRY_DELAY = 3.5  # Lambda retries a failed asynchronous invocation after ~1 min: > the lease
SETTLE = 120.0  # seconds every test waits at most for the renders to finish


@pytest.fixture
def stack(campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with lambda_stack(
        tmp_path / "lambda",
        settings={"REEL_STREAM_LEASE": LEASE},
        render_concurrency=3,
        retry_delay=RETRY_DELAY,
        extra=[Function("old", "tests.lambdalike.old_pattern.handler", 2, 30.0)],
    ) as s:
        for name, value in s.environ.items():
            monkeypatch.setenv(name, value)
        bootstrap.reset()
        templates.register_folder(bootstrap.backends(), campaign.root)
        yield s
    bootstrap.reset()


def put_data(stack: Stack, rid: str, data: dict[str, Any]) -> str:
    body = json.dumps({"campaign_id": "tiny", "data": data}).encode()
    req = urllib.request.Request(f"{stack.url}/recipients/{rid}/data", body, method="PUT")
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", API_KEY)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return str(json.loads(resp.read())["page"]).rsplit("/", 1)[1]


class Player:
    """What a player does: GET, and on a 503 wait as long as Retry-After says and retry."""

    def __init__(self, attempts: int = 60) -> None:
        self.attempts = attempts
        self.retries = 0

    def get(self, url: str) -> bytes:
        for _ in range(self.attempts):
            req = urllib.request.Request(url, headers={"accept": "*/*"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise
                self.retries += 1
                time.sleep(min(float(exc.headers.get("Retry-After") or 1), 1.0))
        raise AssertionError(f"{url} never came")


def uris(playlist: str) -> list[str]:
    found = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    return found + re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)


def absolute(base: str, uri: str) -> str:
    return uri if uri.startswith("http") else urllib.request.urljoin(base, uri)


def watch(stack: Stack, token: str, player: Player) -> dict[str, list[str]]:
    """Fetch the playlists and every part of the first rendition and the audio; their URIs."""
    base = f"{stack.url}/hls/{token}/"
    master = player.get(base + "index.m3u8").decode()
    listed = {}
    for name in (uris(master)[0], "audio.m3u8"):
        playlist = player.get(base + name).decode()
        listed[name] = uris(playlist)
        for uri in listed[name]:
            assert player.get(absolute(base, uri))
    return listed


def stream_blobs(token: str) -> list[str]:
    """The blobs of a token's stream (the first rendition's and the audio's), planned here."""
    b = bootstrap.backends()
    source = stream_source(b, token)
    planned = hls.plan_stream(stream_plan(b, source.campaign_id, source.version, source.data))
    first = planned.renditions[0].name
    audio = [c.blob for g in planned.audio for c in g.chunks]
    parts = [c.blob for c in planned.chunks(first)] + audio
    return [*parts, planned.inits[first].blob, planned.inits[None].blob]


def missing(blobs: list[str]) -> list[str]:
    s3 = boto3.client("s3")
    absent = []
    for blob in blobs:
        try:
            s3.head_object(Bucket=BUCKET, Key=blob)
        except s3.exceptions.ClientError:
            absent.append(blob)
    return absent


def until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return bool(condition())


def test_the_harness_freezes_containers_and_starts_new_ones_for_concurrent_calls(
    stack: Stack,
) -> None:
    h = stack.harness
    # GIVEN the old pattern: a request answered at once, its work left on a thread
    assert h.invoke("old", {"action": "start", "key": "old/1"})["result"] == {"state": "scheduled"}
    # WHEN nobody calls the function for a while
    # THEN the work never happens: the container is frozen since it answered
    assert not until(lambda: not missing(["old/1"]), 3.0)
    # AND it happens only while the container is thawed for another invocation
    assert h.invoke("old", {"action": "ping", "sleep": 1.0})["result"] == {"state": "pong"}
    assert until(lambda: not missing(["old/1"]), 3.0)
    # AND concurrent invocations go to other containers, started on demand (cold)
    h.invoke_async("old", {"action": "ping", "sleep": 1.5})
    h.invoke_async("old", {"action": "ping", "sleep": 1.5})
    assert h.settle(30)
    runs = [i for i in h.invocations if i.function == "old"]
    assert [i.cold for i in runs[:2]] == [True, False]  # the second call: the warm container
    assert len({i.container for i in runs[2:]}) == 2 and any(i.cold for i in runs[2:])


def test_a_playlist_request_alone_makes_the_whole_stream(stack: Stack) -> None:
    """No work after a response: once the playlist is answered, the stream is rendered by the
    render Lambda's asynchronous invocations, with no other request to thaw the API."""
    h = stack.harness
    token = put_data(stack, "ada", {"first_name": "Ada", "plan": "pro"})
    blobs = stream_blobs(token)
    assert missing(blobs) == blobs  # nothing rendered yet (personal or static)
    # WHEN one playlist is asked for, and then nothing
    master = urllib.request.urlopen(f"{stack.url}/hls/{token}/index.m3u8", timeout=60)
    assert master.status == 200
    api_calls = sum(1 for i in h.invocations if i.function == "api")
    # THEN every group of the first rendition and the audio gets stored all the same
    assert h.settle(SETTLE)
    assert missing(blobs) == []
    assert sum(1 for i in h.invocations if i.function == "api") == api_calls
    groups = [i for i in h.invocations if i.action == "hls_group"]
    assert groups and {i.kind for i in groups} == {"async"}
    assert {i.outcome for i in groups} == {"ok"}
    assert len({i.container for i in groups}) >= 2  # in parallel, across containers


def test_the_old_design_stalls_under_the_harness(stack: Stack) -> None:
    """The same story with the old pattern (renders on the API container's threads): the
    stream is not made until something thaws that container again."""
    h = stack.harness
    keys = [f"old/group-{i}" for i in range(3)]
    for key in keys:
        h.invoke("old", {"action": "start", "key": key})
    assert not until(lambda: not missing(keys), 3.0)


def test_a_stream_through_the_harness_reads_clean_and_follows_new_data(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN a new recipient
    token = put_data(stack, "ada", {"first_name": "Ada", "plan": "pro"})
    # WHEN a player fetches their playlists and every chunk (retrying 503s)
    player = Player()
    before = watch(stack, token, player)
    # THEN ffmpeg's HLS demuxer copies the whole stream with nothing to warn about
    out = tmp_path / "copy.mp4"
    cmd = [ff.ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "warning"]
    cmd += ["-protocol_whitelist", "http,tcp", "-i", f"{stack.url}/hls/{token}/index.m3u8"]
    cmd += ["-map", "0:v:0", "-map", "0:a:0", "-c", "copy", "-y", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 34  # 3.4 s at 10 fps
    # AND stored static parts are listed by their store URL (the edge), personal ones not
    rendition = next(name for name in before if name != "audio.m3u8")
    listed = before[rendition]
    assert any(u.startswith("p/") for u in listed)
    # WHEN their data changes (same link)
    assert put_data(stack, "ada", {"first_name": "Grace", "plan": "pro"}) == token
    after = watch(stack, token, Player())
    # THEN the next playlist has new personal chunks, and the same static ones
    old_personal = {u for u in listed if u.startswith("p/")}
    new_personal = {u for u in after[rendition] if u.startswith("p/")}
    assert new_personal and not new_personal & old_personal
    kept = [name_of(u) for u in after[rendition] if not u.startswith("p/")]
    assert kept == [name_of(u) for u in listed if not u.startswith("p/")]
    # AND (stored by now) they are listed by their store's URL: the edge serves them
    assert all(u.startswith("http://") for u in after[rendition] if not u.startswith("p/"))
    # AND the page's poster is made from the stream by the render Lambda (asynchronously too)
    assert Player().get(f"{stack.url}/v/{token}/poster.jpg")[:2] == b"\xff\xd8"
    # AND every render was an asynchronous invocation: no Lambda waited on another
    renders = [i for i in stack.harness.invocations if i.function == "render"]
    assert renders and {i.kind for i in renders} == {"async"}


def name_of(uri: str) -> str:
    """A part's file name (its key), whether listed under the token or by its store URL."""
    return uri.split("?")[0].rsplit("/", 1)[-1]


def test_a_render_that_crashes_mid_group_is_rendered_again_by_the_retry(stack: Stack) -> None:
    h = stack.harness
    fault = h.crash_on_claim()
    token = put_data(stack, "bob", {"first_name": "Bob"})
    blobs = stream_blobs(token)
    # WHEN the playlist is asked for, and the first group's container dies holding its claim
    urllib.request.urlopen(f"{stack.url}/hls/{token}/index.m3u8", timeout=60).close()
    assert fault.fired.wait(60)
    # THEN Lambda's retry (same request id, after the claim's lease) renders the group
    assert h.settle(SETTLE)
    crashed = [i for i in h.invocations if i.outcome == "crashed"]
    assert len(crashed) == 1 and crashed[0].action == "hls_group"
    again = [i for i in h.invocations if i.request_id == crashed[0].request_id]
    assert [i.attempt for i in again] == [1, 2]
    assert again[1].outcome == "ok" and again[1].result["state"] == "done"
    assert missing(blobs) == []
    assert h.dead_letters == []
    # AND the player gets every chunk
    watch(stack, token, Player())


def test_a_frozen_render_holding_a_claim_does_not_stall_the_stream(stack: Stack) -> None:
    h = stack.harness
    fault = h.freeze_on_claim()
    token = put_data(stack, "cy", {"first_name": "Cy"})
    urllib.request.urlopen(f"{stack.url}/hls/{token}/index.m3u8", timeout=60).close()
    assert fault.fired.wait(60)
    # WHEN a player watches while that container stays frozen with the group's claim
    player = Player()
    watch(stack, token, player)
    # THEN the stream came whole: the claim's lease ran out, a chunk request dispatched the
    # group again, and another container rendered it (the player saw 503s, then the chunks)
    assert player.retries > 0
    assert fault.container is not None
    frozen = fault.container.id
    assert not [i for i in h.invocations if i.container == frozen]  # it never answered
    groups = Counter(i.result["state"] for i in h.invocations if i.action == "hls_group")
    assert groups["done"] >= 1


def test_unknown_and_forged_tokens_are_refused(stack: Stack) -> None:
    for path in ("/hls/nosuchtoken0123/index.m3u8", f"/hls/nosuchtoken0123/s/{'0' * 64}.m4s"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(stack.url + path, timeout=60)
        assert err.value.code in (403, 404)


def test_a_group_that_keeps_failing_lands_in_the_dead_letter_queue(stack: Stack) -> None:
    h = stack.harness
    # GIVEN a group event no render can satisfy (its key is not in that stream any more)
    event = {
        "action": "hls_group",
        "campaign_id": "tiny",
        "version": templates.get_template(bootstrap.backends(), "tiny").version,
        "data": {"first_name": "Dee"},
        "rendition": "96p",
        "index": 0,
        "key": "f" * 64,
    }
    # WHEN it is invoked asynchronously
    request_id = h.invoke_async("render", event)
    assert h.settle(SETTLE)
    # THEN Lambda tried it three times (the first, two retries), then dead-lettered it
    attempts = [i for i in h.invocations if i.request_id == request_id]
    assert [(i.attempt, i.outcome) for i in attempts] == [(1, "error"), (2, "error"), (3, "error")]
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    (record,) = [json.loads(m["Body"]) for m in messages]
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == event
    assert "not in this stream" in record["responsePayload"]["errorMessage"]
