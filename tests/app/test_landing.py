"""Landing pages and tracking through chalice.test.Client on the embedded default: the page,
its captions and script, and POST /events (signatures, duplicates, malformed events)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.landing.tokens import signed_token, split
from tests.conftest import API_KEY

KEY = API_KEY


@pytest.fixture
def client(local_app: Client) -> Client:
    return local_app


def body(response: Any) -> Any:
    return json.loads(response.body)


def render(client: Client, data: dict[str, Any]) -> dict[str, Any]:
    """POST /renders and wait until it is done."""
    headers = {"content-type": "application/json", "x-api-key": KEY}
    payload = json.dumps({"template_id": "tiny", "data": data})
    accepted = body(client.http.post("/renders", headers=headers, body=payload))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = body(client.http.get(f"/renders/{accepted['render_id']}"))
        if got["status"] in ("done", "failed"):
            assert got["status"] == "done", got
            return dict(got)
        time.sleep(0.2)
    raise AssertionError("render not done")


@pytest.fixture
def page(client: Client) -> dict[str, Any]:
    """A rendered recipient's page: its path, HTML and the signed token it gives its script."""
    done = render(client, {"recipient_id": "ada@example.com", "first_name": "Ada"})
    path = done["urls"]["page"].removeprefix("http://127.0.0.1:8000")
    html = client.http.get(path).body.decode()
    config = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])
    return {"path": path, "html": html, "signed": config["token"], "render": done}


def events(*kinds: str, prefix: str = "ev") -> list[dict[str, Any]]:
    out = []
    for i, kind in enumerate(kinds):
        event: dict[str, Any] = {"id": f"{prefix}-{i:06d}", "kind": kind, "ts": 1.7e12 + i}
        if kind == "progress":
            event["progress"] = 10
        out.append(event)
    return out


def post_events(client: Client, token: str, items: list[dict[str, Any]]) -> Any:
    return client.http.post(
        "/events",
        headers={"content-type": "application/json"},
        body=json.dumps({"token": token, "events": items}),
    )


def stored(campaign_id: str = "tiny") -> list[Any]:
    return bootstrap.backends().events.for_campaign(campaign_id)


# ── the page ──────────────────────────────────────────────────────────────────────────────


def test_the_page_plays_the_recipients_video(client: Client, page: dict[str, Any]) -> None:
    html, urls = page["html"], page["render"]["urls"]
    token = page["path"].rsplit("/", 1)[-1]
    assert len(token) >= 22  # ≥ 128 bits of randomness, URL-safe base64
    # The video's URL, signed when the page was made (its query is its expiring signature)
    source = re.search(
        r'<source src="([^"?]+)\?expires=[0-9]+&amp;sig=[^"]+" type="video/mp4">', html
    )
    assert source is not None and source[1] == urls["video"].split("?")[0]
    poster = urls["page"] + "/poster.jpg"
    assert f'poster="{poster}"' in html
    assert f'<meta property="og:image" content="{poster}">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert "<title>A video for Ada</title>" in html
    assert 'id="reel-cta" class="reel-cta" href="/health">Book a call, Ada</a>' in html
    assert f'<track kind="captions" src="{token}/captions.vtt"' in html
    assert '<script src="../static/player.js" defer></script>' in html


def test_no_personal_data_in_any_url(client: Client, page: dict[str, Any]) -> None:
    found = re.findall(r'(?:src|href|content|poster)="([^"]+)"', page["html"])
    urls = [u for u in found if u.startswith(("http", "/", "../")) or ".vtt" in u]
    urls += [page["path"], *page["render"]["urls"].values()]
    assert len(urls) >= 8
    for url in urls:  # (hashes are lowercase hex: "ada" alone may occur in one)
        for personal in ("Ada", "ADA", "ada@", "ada%40", "example.com", "example%2Ecom"):
            assert personal not in url, url


def test_captions_and_static_files(client: Client, page: dict[str, Any]) -> None:
    vtt = client.http.get(page["path"] + "/captions.vtt")
    assert vtt.headers["Content-Type"].startswith("text/vtt")
    text = vtt.body.decode()
    assert text.startswith("WEBVTT")
    assert "00:00:01.000 --> 00:00:02.000\nHi Ada!" in text
    script = client.http.get("/static/player.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert b"sendBeacon" in script.body
    assert client.http.get("/static/page.css").status_code == 200
    assert client.http.get("/static/..%2Fweb.py").status_code == 404
    assert client.http.get("/static/nope.js").status_code == 404


def test_unknown_page_is_404(client: Client) -> None:
    assert client.http.get("/v/" + "x" * 32).status_code == 404
    assert client.http.get("/v/short").status_code == 404


# ── events ────────────────────────────────────────────────────────────────────────────────


def test_events_are_stored_once(client: Client, page: dict[str, Any]) -> None:
    first = post_events(client, page["signed"], events("impression", "play", "progress"))
    assert first.status_code == 202
    assert body(first) == {"received": 3, "stored": 3, "duplicates": 0}
    # The same beacons again (a retry), plus a new one
    again = post_events(
        client, page["signed"], [*events("impression", "play"), *events("pause", prefix="new")]
    )
    assert body(again) == {"received": 3, "stored": 1, "duplicates": 2}
    kept = stored()
    assert sorted(e.kind.value for e in kept) == ["impression", "pause", "play", "progress"]
    assert {e.recipient_id for e in kept} == {"ada@example.com"}
    # Every event sent went to the relay queue (a retried one again: the relay delivers each
    # event once, see tests/reliability/test_fault_relay.py)
    outbox = bootstrap.backends().queue.pending()  # type: ignore[attr-defined]
    kinds = [m["event"]["kind"] for m in outbox if m["type"] == "event"]
    assert kinds == ["impression", "play", "progress", "impression", "play", "pause"]


def test_forged_and_foreign_tokens_are_refused(client: Client, page: dict[str, Any]) -> None:
    other = render(client, {"recipient_id": "bob@example.com", "first_name": "Bob"})
    other_html = client.http.get(other["urls"]["page"].removeprefix("http://127.0.0.1:8000"))
    other_signed = json.loads(
        re.search(r'id="reel-config"[^>]*>(.*?)</script>', other_html.body.decode(), re.S)[1]
    )["token"]
    token, signature = split(page["signed"])
    other_token, other_signature = split(other_signed)
    forged = [
        f"{token}.{'A' * len(signature)}",  # a made-up signature
        f"{token}.{other_signature}",  # Ada's page with Bob's signature
        f"{other_token}.{signature}",  # Bob's page with Ada's signature
        signed_token("not-the-secret", token, "ada@example.com", "tiny"),  # another key
        token,  # no signature at all
        "x" * 40 + "." + signature,  # no such page
    ]
    for candidate in forged:
        response = post_events(client, candidate, events("play"))
        assert response.status_code == 403, candidate
        assert body(response)["error"]["code"] == "forbidden"
    assert stored() == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": [{"id": "abcdefgh", "kind": "play", "ts": 1}]}, "token"),
        ({"token": "t" * 20, "events": []}, "events"),
        (
            {"token": "t" * 20, "events": [{"id": "abcdefgh", "kind": "dance", "ts": 1}]},
            "events[0].kind",
        ),
        ({"token": "t" * 20, "events": [{"id": "a b", "kind": "play", "ts": 1}]}, "events[0].id"),
        (
            {"token": "t" * 20, "events": [{"id": "abcdefgh", "kind": "progress", "ts": 1}]},
            "events[0]",
        ),
        (
            {"token": "t" * 20, "events": [{"id": "abcdefgh", "kind": "play", "ts": -5}]},
            "events[0].ts",
        ),
        (
            {"token": "t" * 20, "events": [{"id": "abcdefgh", "kind": "play", "ts": 1, "x": 1}]},
            "events[0].x",
        ),
    ],
)
def test_malformed_events_are_400_naming_the_field(
    client: Client, payload: dict[str, Any], field: str
) -> None:
    response = client.http.post(
        "/events", headers={"content-type": "application/json"}, body=json.dumps(payload)
    )
    assert response.status_code == 400, response.body
    assert body(response)["error"]["field"] == field


def test_at_most_50_events_a_request(client: Client, page: dict[str, Any]) -> None:
    response = post_events(client, page["signed"], events(*["play"] * 51))
    assert response.status_code == 400
    assert body(response)["error"]["field"] == "events"
    assert post_events(client, page["signed"], events(*["play"] * 50)).status_code == 202


# ── the email snippet ─────────────────────────────────────────────────────────────────────


def test_email_snippet_of_a_campaign(client: Client, page: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chalicelib.cli import app as cli

    gif_path = page["render"]["urls"]["page"].removeprefix("http://127.0.0.1:8000") + "/email.gif"
    assert client.http.get(gif_path).status_code == 404  # no snippet made yet
    # WHEN the campaign's snippets are written
    result = CliRunner().invoke(cli, ["email-snippet", "tiny", "--out", str(tmp_path / "mail")])
    assert result.exit_code == 0, result.output
    # THEN the recipient's HTML links their page and shows a GIF the app serves
    html = (tmp_path / "mail" / "ada@example.com.html").read_text()
    assert f'href="{page["render"]["urls"]["page"]}"' in html
    # under a link that does not expire (emails outlive signed media URLs)
    gif_url = re.search(r'<img src="([^"]+)"', html)[1]
    assert gif_url == page["render"]["urls"]["page"] + "/email.gif"
    gif = client.http.get(
        gif_url.removeprefix("http://127.0.0.1:8000"), headers={"accept": "image/gif"}
    )
    assert gif.status_code == 200
    assert gif.body[:6] == b"GIF89a"
    assert len(gif.body) <= 1_000_000
    # One recipient by id; an unknown one is exit 1 naming it
    one = CliRunner().invoke(
        cli, ["email-snippet", "tiny/ada@example.com", "--out", str(tmp_path / "one")]
    )
    assert one.exit_code == 0, one.output
    missing = CliRunner().invoke(
        cli, ["email-snippet", "tiny/nobody", "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code == 1
    assert "nobody" in missing.output


# ── analytics ─────────────────────────────────────────────────────────────────────────────


def test_analytics_dashboard_and_report(
    client: Client, page: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN Ada watched half her video, and Bob has a page he never opened
    render(client, {"recipient_id": "bob@example.com", "first_name": "Bob"})
    progress = [
        {"id": f"p-{step:06d}", "kind": "progress", "progress": step, "ts": 1.7e12 + step}
        for step in (10, 20, 30, 40, 50)
    ]
    post_events(client, page["signed"], [*events("impression", "play"), *progress])
    # WHEN the analytics are asked for
    report = body(client.http.get("/campaigns/tiny/analytics"))
    # THEN the funnel counts both recipients as sent and Ada alone further on
    funnel = {step["step"]: step["count"] for step in report["funnel"]}
    assert funnel == {
        "sent": 2,
        "opened": 1,
        "played": 1,
        "25%": 1,
        "50%": 1,
        "75%": 0,
        "100%": 0,
        "clicked": 0,
    }
    by_id = {r["recipient_id"]: r for r in report["recipients"]}
    assert by_id["ada@example.com"]["max_progress"] == 50
    assert by_id["bob@example.com"]["opened"] is False
    # The dashboard draws the same numbers server-side
    html = client.http.get("/dashboard/tiny")
    assert html.headers["Content-Type"].startswith("text/html")
    assert html.body.count(b"<svg") == 2
    assert b"ada@example.com" in html.body
    assert client.http.get("/dashboard/nope").status_code == 404
    # And so does `reel report`, with a PNG of the charts
    from PIL import Image
    from typer.testing import CliRunner

    from chalicelib.cli import app as cli

    result = CliRunner().invoke(cli, ["report", "tiny", "--png", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "opened" in result.output.lower()
    assert "ada@example.com" in result.output
    with Image.open(tmp_path / "r.png") as image:
        assert image.format == "PNG"


# ── a recipient's current record ──────────────────────────────────────────────────────────


def test_put_recipient_data_keeps_their_page(client: Client, page: dict[str, Any]) -> None:
    headers = {"content-type": "application/json", "x-api-key": KEY}

    def put(rid: str, data: dict[str, Any]) -> Any:
        payload = json.dumps({"campaign_id": "tiny", "data": data})
        return client.http.put(f"/recipients/{rid}/data", headers=headers, body=payload)

    # A rendered recipient keeps the link they were sent; the record and its hash change
    first = put("ada@example.com", {"first_name": "Ada", "plan": "pro"})
    assert first.status_code == 200, first.body
    assert body(first)["page"] == page["render"]["urls"]["page"]
    second = body(put("ada@example.com", {"first_name": "Ada", "plan": "basic"}))
    assert second["page"] == body(first)["page"]
    assert second["data_hash"] != body(first)["data_hash"]
    stored = bootstrap.backends().recipients.get_recipient("tiny", "ada@example.com")
    assert stored is not None and stored.data["plan"] == "basic"
    # A new recipient gets a page at once, before anything is rendered, with a poster made
    # from their stream when it is asked for
    new = body(put("cy@example.com", {"first_name": "Cy"}))
    assert new["page"].startswith("http://127.0.0.1:8000/v/")
    path = new["page"].removeprefix("http://127.0.0.1:8000") + "/poster.jpg"
    poster = client.http.get(path, headers={"accept": "image/jpeg"})
    assert poster.status_code == 200, poster.body[:200]
    assert poster.body[:2] == b"\xff\xd8"
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(poster.body)) as image:
        assert image.size == (160, 96)
    # Their page streams; it names no MP4, as none was rendered
    html = client.http.get(new["page"].removeprefix("http://127.0.0.1:8000")).body.decode()
    assert "og:video" not in html and "<source" not in html
    assert '"hls_url": "../hls/' in html
    # Bad data is refused naming the field; writes need the key
    bad = put("cy@example.com", {"first_name": "Cy", "plan": "gold"})
    assert bad.status_code == 400
    assert body(bad)["error"]["field"] == "plan"
    anonymous = client.http.put(
        "/recipients/x/data", headers={"content-type": "application/json"}, body="{}"
    )
    assert anonymous.status_code == 401


def test_the_stream_poster_matches_the_rendered_one(client: Client, page: dict[str, Any]) -> None:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    def image(path: str) -> Any:
        got = client.http.get(path, headers={"accept": "image/jpeg"})
        assert got.status_code == 200, got.body[:200]
        with Image.open(BytesIO(got.body)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.float32)

    local = "http://127.0.0.1:8000"
    from_stream = image(page["path"] + "/poster.jpg")
    rendered = image(page["render"]["urls"]["poster"].removeprefix(local))
    assert from_stream.shape == rendered.shape
    # The same frame through two encodes: close, not identical
    assert float(np.abs(from_stream - rendered).mean()) < 6.0
