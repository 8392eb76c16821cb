"""Schemathesis against `reel serve`: every operation of GET /openapi.json, fuzzed over real HTTP
on 127.0.0.1, answers without a 5xx, with the media type and body its description promises.

The run is bounded (MAX_EXAMPLES per operation in the fuzzing phase, plus the coverage phase's
boundary and negative cases) and deterministic, so CI sends the same requests every time. Known
values (the tiny campaign, a page token and its signed form, a render, a batch, an upload, the
campaign's bundle, static files, playlists and chunks) replace generated ones half the time so
the fuzzer gets past the 404s. Below: a plain regression test for each 5xx found, and signed
hook bodies (which the fuzzer cannot sign) as a hypothesis property."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st

from app import app
from chalicelib.api.openapi import routes
from tests.app.test_hooks import secrets, standard_headers
from tests.conftest import API_KEY, Campaign
from tests.server import reel_serve

__all__ = ["secrets"]  # the hooks' secrets fixture, shared with tests/app/test_hooks.py

MAX_EXAMPLES = 20  # per operation in the fuzzing phase; examples and coverage add their own
KNOWN = 0.5  # how often a known id replaces a generated one

# The hooks are enabled (their secrets set), so the fuzzer meets their signature checks.
HOOK_ENV = {
    "REEL_HUBSPOT_CLIENT_SECRET": "fuzz-hubspot-secret",
    "REEL_SALESFORCE_HOOK_SECRET": "fuzz-salesforce-secret",
    "REEL_INBOUND_WEBHOOK_SECRETS": "whsec_ZnV6ei13ZWJob29rLXNlY3JldA==",
}


# A poster or chunk still rendering is a documented 503 with Retry-After, not a fault.
NOT_READY_503 = {"checks.not_a_server_error.expected-statuses": ["2xx", "3xx", "4xx", "503"]}


def _call(url: str, method: str = "GET", data: Any = None, key: str = "", kind: str = "") -> Any:
    req = urllib.request.Request(url, method=method)
    body = data if isinstance(data, bytes) else None
    if data is not None and body is None:
        body, kind = json.dumps(data).encode(), "application/json"
    if kind:
        req.add_header("content-type", kind)
    if key:
        req.add_header("x-api-key", key)
    with urllib.request.urlopen(req, body, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if "json" in resp.headers.get("content-type", "") else raw


def _known_ids(url: str, key: str) -> dict[str, list[str]]:
    """Make one of each thing the API names by id, through the API itself."""
    ada = {"campaign_id": "tiny", "data": {"first_name": "Ada"}}
    page = _call(f"{url}/recipients/ada/data", "PUT", ada, key)["page"]
    token = page.rsplit("/", 1)[1]
    html = _call(f"{url}/v/{token}").decode()
    found = re.search(r'<script id="reel-config" type="application/json">(.*?)</script>', html)
    assert found, html
    signed = json.loads(found.group(1))["token"]
    playlist = _call(f"{url}/hls/{token}/96p.m3u8").decode()
    chunks = [line.rsplit("/", 1)[1] for line in playlist.splitlines() if line.endswith(".m4s")]
    assert chunks, playlist
    preview = {"template_id": "tiny", "data": {"first_name": "Bo"}, "preview": True}
    render_id = _call(f"{url}/renders", "POST", preview, key)["render_id"]
    csv = b"recipient_id,first_name\ncy,Cy\n"
    source = _call(f"{url}/uploads/people.csv", "PUT", csv, key, "text/csv")["key"]
    batch = {"template_id": "tiny", "source": source, "preview": True}
    batch_id = _call(f"{url}/batches", "POST", batch, key)["batch_id"]
    bundle = _call(f"{url}/templates/tiny")["bundle_key"]
    return {
        "campaign": ["tiny"],
        "token": [token],
        "signed": [signed],
        "render": [render_id],
        "batch": [batch_id],
        "source": [source],
        "bundle": [bundle],
        "recipient": ["ada"],
        "static": ["player.js", "page.css"],
        "playlist": ["index.m3u8", "audio.m3u8", "96p.m3u8"],
        "chunk": chunks[:4],
    }


def _toml(value: Any) -> str:
    """A TOML value (JSON strings, numbers and booleans are TOML too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _name(dictionary: str) -> dict[str, Any]:
    """The `name` in the path of these operations (a static file, a playlist, a chunk)."""
    return {"parameters": {"path.name": {"dictionary": dictionary, "probability": KNOWN}}}


def _operations() -> list[tuple[list[str], dict[str, Any]]]:
    """Settings of some operations: (their paths, their settings)."""
    return [
        (["/static/{name}"], _name("static")),
        (["/hls/{token}/{name}"], _name("playlist")),
        (["/hls/s/{name}", "/hls/{token}/p/{name}"], _name("chunk") | NOT_READY_503),
        (["/v/{token}/poster.jpg"], NOT_READY_503),
    ]


def _config(path: Path, known: dict[str, list[str]]) -> Path:
    """schemathesis.toml: deterministic, no stateful phase, known values mixed in."""
    bindings = {
        "path.template_id": "campaign",
        "path.campaign_id": "campaign",
        "body.template_id": "campaign",
        "body.campaign_id": "campaign",
        "path.token": "token",
        "body.token": "signed",
        "path.render_id": "render",
        "path.batch_id": "batch",
        "body.source": "source",
        "body.bundle": "bundle",
        "path.recipient_id": "recipient",
    }
    lines = [
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "deterministic = true",
        "[phases.stateful]",
        "enabled = false",
        *(
            line
            for paths, settings in _operations()
            for line in (
                "[[operations]]",
                f"include-path = {_toml(paths)}",
                *(f"{k} = {_toml(v)}" for k, v in settings.items()),
            )
        ),
        "[dictionaries]",
        *(f"{name} = {_toml({'values': values})}" for name, values in known.items()),
        "[parameters]",
        *(
            f"{json.dumps(where)} = {_toml({'dictionary': name, 'probability': KNOWN})}"
            for where, name in bindings.items()
        ),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_no_server_error(campaign: Campaign, tmp_path: Path) -> None:
    # GIVEN `reel serve` with the tiny campaign, the hooks enabled, and one of each known id
    with reel_serve(campaign.root.parent, tmp_path / "data", env=HOOK_ENV) as (url, key):
        config = _config(tmp_path / "schemathesis.toml", _known_ids(url, key))
        # WHEN schemathesis runs every operation of the published description against it
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--header",
            f"x-api-key: {key}",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ]
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
        )
    # THEN no request got a 5xx, and every response has the type and body its description says
    assert run.returncode == 0, run.stdout[-30000:] + run.stderr[-3000:]
    fuzzed = [r for r in routes(app) if r.path != "/openapi.json"]  # not its own document
    assert re.search(rf"Tested: {len(fuzzed)}\b", run.stdout), run.stdout[-3000:]


# ── what the fuzzer (and the probes beside it) found: each a plain regression test ─────────


def test_a_method_no_route_has_is_405_not_501(tmp_path: Path) -> None:
    # GIVEN `reel serve` (http.server answered methods it has no handler for with 501)
    (tmp_path / "none").mkdir()
    with reel_serve(tmp_path / "none", tmp_path / "data") as (url, _):
        # WHEN a TRACE (or any method the app does not route) arrives
        for method, path in (("TRACE", "/health"), ("CONNECT", "/renders/x"), ("PROPFIND", "/")):
            req = urllib.request.Request(f"{url}{path}", method=method)
            # THEN the app answers each, as API Gateway would: 405 on a route, 403 elsewhere
            with pytest.raises(urllib.error.HTTPError) as answered:
                urllib.request.urlopen(req, timeout=30).close()
            answered.value.close()
            assert answered.value.code == (403 if path == "/" else 405), (method, path)


JSON = {"content-type": "application/json", "x-api-key": API_KEY}


@pytest.mark.parametrize("key", ["templates", "uploads", "templates/tiny", "x" * 300])
def test_a_bundle_key_naming_no_file_is_404(local_app: Client, key: str) -> None:
    # A folder of the store (IsADirectoryError) or a name too long for it (OSError) was a 500.
    response = local_app.http.post("/templates", headers=JSON, body=json.dumps({"bundle": key}))
    assert response.status_code == 404, response.body
    assert json.loads(response.body)["error"]["field"] == "bundle"


@pytest.mark.parametrize("source", ["uploads.csv", "x" * 300 + ".csv", "a/" + "y" * 300 + ".csv"])
def test_a_batch_source_naming_no_file_is_404(local_app: Client, source: str) -> None:
    body = json.dumps({"template_id": "tiny", "source": source})
    response = local_app.http.post("/batches", headers=JSON, body=body)
    assert response.status_code == 404, response.body
    assert json.loads(response.body)["error"]["field"] == "source"


def _signed_hook(client: Client, payload: bytes, msg_id: str) -> Any:
    headers = standard_headers(payload, time.time(), msg_id=msg_id)
    return client.http.post("/hooks/generic/tiny", headers=headers, body=payload)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"1" * 5000, "body"),  # json.loads: ValueError (over 4300 digits), a 500
        (b"[" * 5000 + b"]" * 5000, "body"),  # json.loads: RecursionError, a 500
        (b'{"recipient_id": NaN}', "recipient_id"),
        (b'{"a": 1, "a": 2}', "a"),
    ],
    ids=["huge-number", "deep-nesting", "nan", "duplicate-key"],
)
def test_a_signed_hook_body_json_cannot_hold_is_400(
    secrets: None, local_app: Client, payload: bytes, field: str
) -> None:
    # GIVEN a correctly signed Standard Webhooks request whose body is not JSON data
    response = _signed_hook(local_app, payload, "msg_bad_json")
    # THEN 400 naming where, and nothing started
    assert response.status_code == 400, response.body
    assert json.loads(response.body)["error"]["field"] == field


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["recipient_id", "plan", "avatar", "x"]) | st.text(), inner
        )
    ),
    max_leaves=12,
)


@given(body=_JSON | st.lists(_JSON, max_size=3))
def test_any_signed_hook_body_is_answered_without_a_5xx(
    secrets: None, local_app: Client, body: Any
) -> None:
    # No `first_name`: every record is refused by the template, none is rendered.
    payload = json.dumps(body).encode()
    msg_id = "msg_" + hashlib.sha256(payload).hexdigest()[:24]
    response = _signed_hook(local_app, payload, msg_id)
    assert response.status_code in (202, 400, 409), response.body
