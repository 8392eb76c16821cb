"""The HTTP API through chalice.test.Client, once on the embedded default (directory + SQLite +
process pool) and once on moto (S3, DynamoDB, Step Functions running the real Lambda handlers):
templates, renders, batches, uploads, the S3 trigger, keys and errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import pytest
import yaml
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.services import templates
from chalicelib.settings import get_settings
from tests.conftest import Campaign

KEY = "test-key-0123456789"
JSON = {"content-type": "application/json", "x-api-key": KEY}


def _client(backend: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    monkeypatch = request.getfixturevalue("monkeypatch")
    if backend == "aws":
        request.getfixturevalue("aws")  # moto, the resources and the handlers (tests/aws.py)
    monkeypatch.setenv("REEL_API_KEYS", f"other-key,{KEY}")
    monkeypatch.setenv("REEL_WORKERS", "2")
    bootstrap.reset()
    # The stage's environment names the backend (.chalice/config.json).
    with Client(app, stage_name="local" if backend == "local" else "dev") as c:
        yield c
    bootstrap.reset()


@pytest.fixture(params=["local", "aws"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    yield from _client(request.param, request)


@pytest.fixture
def local_client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """For what only the embedded default has: /files, resuming after a restart."""
    yield from _client("local", request)


def body(response: Any) -> Any:
    return json.loads(response.body)


def post(client: Client, path: str, payload: Any, headers: dict[str, str] = JSON) -> Any:
    return client.http.post(path, headers=headers, body=json.dumps(payload))


@pytest.fixture
def tiny(client: Client, campaign: Campaign) -> dict[str, Any]:
    """The tiny campaign registered as a zip bundle."""
    response = client.http.post(
        "/templates",
        headers={"content-type": "application/zip", "x-api-key": KEY},
        body=templates.pack(campaign.root),
    )
    assert response.status_code == 201, response.body
    return dict(body(response))


def wait_for(client: Client, path: str, done: Callable[[Any], bool], seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = body(client.http.get(path))
        if done(data):
            return data
        time.sleep(0.2)
    raise AssertionError(f"{path} not finished after {seconds} s: {data}")


LOCAL = "http://127.0.0.1:8000"


def media(client: Client, url: str, kind: str) -> bytes:
    """The bytes behind a media URL: served by the app locally, an S3 object on AWS."""
    if url.startswith(LOCAL + "/files/"):
        response = client.http.get(url.removeprefix(LOCAL), headers={"accept": kind})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == kind
        return bytes(response.body)
    parsed = urlparse(url)  # a presigned URL: https://{bucket}.s3.amazonaws.com/{key}?X-Amz-…
    assert "X-Amz-Signature=" in parsed.query
    obj = boto3.client("s3").get_object(
        Bucket=parsed.netloc.split(".")[0], Key=unquote(parsed.path.lstrip("/"))
    )
    assert obj["ContentType"] == kind
    return bytes(obj["Body"].read())


def finished(data: Any) -> bool:
    return data["status"] in ("done", "failed")


# ── templates ─────────────────────────────────────────────────────────────────────────────


def test_register_bundle_then_get(client: Client, tiny: dict[str, Any]) -> None:
    assert tiny["id"] == "tiny"
    assert tiny["variables"] == ["avatar", "first_name", "plan"]
    got = body(client.http.get("/templates/tiny"))
    assert got["version"] == tiny["version"]
    assert body(client.http.get(f"/templates/tiny?version={tiny['version']}")) == got


def test_same_bundle_twice_is_one_version(client: Client, campaign: Campaign) -> None:
    headers = {"content-type": "application/zip", "x-api-key": KEY}
    first = body(
        client.http.post("/templates", headers=headers, body=templates.pack(campaign.root))
    )
    again = body(
        client.http.post("/templates", headers=headers, body=templates.pack(campaign.root))
    )
    assert first == again


def test_yaml_document_without_assets(client: Client) -> None:
    doc = {
        "id": "plain",
        "canvas": {"width": 160, "height": 96, "fps": 10},
        "variables": {"name": {"type": "text", "required": True}},
        "scenes": [
            {
                "id": "hello",
                "duration": 1,
                "background": {"color": "#203040"},
                "layers": [{"type": "text", "text": "Hi {{ name }}", "size": [140, 40]}],
            }
        ],
    }
    headers = {"content-type": "application/x-yaml", "x-api-key": KEY}
    response = client.http.post(
        "/templates", headers=headers, body=yaml.safe_dump({"template": doc})
    )
    assert response.status_code == 201, response.body
    assert body(response)["id"] == "plain"


def test_document_with_bundle_by_reference(client: Client, campaign: Campaign) -> None:
    # GIVEN the campaign's files in the BlobStore, and a new document that uses them
    bootstrap.backends().blobs.put_bytes("bundles/tiny.zip", templates.pack(campaign.root))
    doc = yaml.safe_load(campaign.template.read_text())
    doc["id"] = "tiny_v2"
    # WHEN the document is registered with the bundle's key
    response = post(client, "/templates", {"template": doc, "bundle": "bundles/tiny.zip"})
    # THEN its scenes and assets come from the bundle
    assert response.status_code == 201, response.body
    assert body(response)["id"] == "tiny_v2"


def test_invalid_template_names_the_field(client: Client, campaign: Campaign) -> None:
    doc = yaml.safe_load(campaign.template.read_text())
    doc["scenes"][1]["layers"][0]["style"] = "missing_style"
    bootstrap.backends().blobs.put_bytes("bundles/tiny.zip", templates.pack(campaign.root))
    response = post(client, "/templates", {"template": doc, "bundle": "bundles/tiny.zip"})
    assert response.status_code == 400
    error = body(response)["error"]
    assert error["code"] == "invalid_template"
    assert error["field"] == "scenes[1].layers[0].style"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "body"),  # the body as a whole: neither `template` nor `bundle`
        ({"template": "not a mapping"}, "template"),
        ({"bundle": "bundles/none.zip"}, "bundle"),
        ({"template": {"id": "x"}, "extra": 1}, "extra"),
    ],
)
def test_bad_template_requests(client: Client, payload: dict[str, Any], field: str) -> None:
    response = post(client, "/templates", payload)
    assert response.status_code in (400, 404), response.body
    assert body(response)["error"]["field"] == field


def test_zip_with_path_escape_is_refused(client: Client) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.yaml", "id: x")
    response = client.http.post(
        "/templates",
        headers={"content-type": "application/zip", "x-api-key": KEY},
        body=buf.getvalue(),
    )
    assert response.status_code == 400
    assert "unsafe path" in body(response)["error"]["message"]


def test_unknown_template_is_404(client: Client) -> None:
    response = client.http.get("/templates/nope")
    assert response.status_code == 404
    assert body(response)["error"] == {
        "code": "not_found",
        "message": "template_id: no template 'nope'",
        "field": "template_id",
    }


# ── keys and malformed requests ───────────────────────────────────────────────────────────


@pytest.mark.parametrize("key", [None, "", "wrong", KEY + "x"])
def test_write_routes_need_a_key(client: Client, key: str | None) -> None:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    for path in ("/templates", "/renders", "/batches"):
        response = post(client, path, {}, headers)
        assert response.status_code == 401, path
        assert body(response)["error"]["field"] == "x-api-key"


def test_no_configured_key_refuses_writes(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_API_KEYS", "")
    bootstrap.reset()
    response = post(client, "/renders", {"template_id": "tiny", "data": {}})
    assert response.status_code == 401
    assert "REEL_API_KEYS" in body(response)["error"]["message"]


def test_malformed_json_is_400(client: Client) -> None:
    response = client.http.post("/renders", headers=JSON, body='{"template_id": ')
    assert response.status_code == 400
    assert body(response)["error"]["code"] == "invalid_request"
    assert body(response)["error"]["field"] == "body"


# ── renders ───────────────────────────────────────────────────────────────────────────────


def test_render_one_recipient_end_to_end(client: Client, tiny: dict[str, Any]) -> None:
    # WHEN a render is requested
    response = post(client, "/renders", {"template_id": "tiny", "data": {"first_name": "Ada"}})
    # THEN it is accepted at once, with the URLs its outputs will have
    assert response.status_code == 202, response.body
    accepted = body(response)
    assert accepted["status"] == "queued"
    assert "/videos/" in accepted["urls"]["video"]
    assert ".jpg" in accepted["urls"]["poster"]
    # AND it finishes, with the same URLs
    done = wait_for(client, f"/renders/{accepted['render_id']}", finished)
    assert done["status"] == "done", done
    same = ("video", "poster")  # the same objects; their signatures (in the query) expire
    assert {k: done["urls"][k].split("?")[0] for k in same} == {
        k: accepted["urls"][k].split("?")[0] for k in same
    }
    # The landing page exists once the video does
    assert accepted["urls"]["page"] is None
    assert "/v/" in done["urls"]["page"]
    # AND the media are there
    assert media(client, done["urls"]["video"], "video/mp4")[4:8] == b"ftyp"
    assert media(client, done["urls"]["poster"], "image/jpeg")[:2] == b"\xff\xd8"


def test_bad_record_is_400_naming_the_field(client: Client, tiny: dict[str, Any]) -> None:
    response = post(
        client, "/renders", {"template_id": "tiny", "data": {"first_name": "Ada", "plan": "gold"}}
    )
    assert response.status_code == 400
    error = body(response)["error"]
    assert (error["code"], error["field"]) == ("invalid_data", "plan")


def test_render_of_unknown_template_or_id(client: Client) -> None:
    response = post(client, "/renders", {"template_id": "nope", "data": {}})
    assert response.status_code == 404
    assert client.http.get("/renders/r_unknown").status_code == 404


def test_media_route_serves_only_media(local_client: Client) -> None:
    bootstrap.backends().blobs.put_bytes("templates/secret.zip", b"x")
    assert local_client.http.get("/files/templates/secret.zip").status_code == 404
    missing = bootstrap.backends().blobs.url("videos/none.mp4").removeprefix(LOCAL)
    assert local_client.http.get(missing).status_code == 404  # signed, but no such file
    assert local_client.http.get("/files/videos/none.mp4").status_code == 403  # not signed


def test_no_media_route_on_aws(client: Client) -> None:
    if get_settings().backend == "aws":
        bootstrap.backends().blobs.put_bytes("videos/x.mp4", b"x")
        assert client.http.get("/files/videos/x.mp4").status_code == 404


# ── batches ───────────────────────────────────────────────────────────────────────────────


def test_inline_batch_with_a_bad_record(client: Client, tiny: dict[str, Any]) -> None:
    records = [
        {"recipient_id": "ada", "first_name": "Ada"},
        {"recipient_id": "bob", "first_name": "Bob", "plan": "gold"},  # not a plan
        {"recipient_id": "cy", "first_name": "Cy", "plan": "pro"},
    ]
    response = post(client, "/batches", {"template_id": "tiny", "records": records})
    assert response.status_code == 202, response.body
    batch_id = body(response)["batch_id"]
    done = wait_for(client, f"/batches/{batch_id}", finished)
    assert done["status"] == "done"
    assert done["total"] == 3
    assert done["counts"] == {"rendered": 2, "cached": 0, "failed": 1}
    by_id = {r["recipient_id"]: r for r in done["results"]}
    assert by_id["bob"]["status"] == "failed"
    assert by_id["bob"]["field"] == "plan"
    assert media(client, by_id["ada"]["output"], "video/mp4")[4:8] == b"ftyp"
    assert "output_key" not in by_id["ada"]  # URLs are signed when shown, from stored keys
    # Paged results
    first = body(client.http.get(f"/batches/{batch_id}?limit=2"))
    assert [r["index"] for r in first["results"]] == [0, 1]
    assert first["next"] == 1
    rest = body(client.http.get(f"/batches/{batch_id}?limit=2&after=1"))
    assert [r["index"] for r in rest["results"]] == [2]
    assert rest["next"] is None
    assert client.http.get(f"/batches/{batch_id}?limit=0").status_code == 400


def test_batch_from_an_uploaded_csv_with_a_mapping(client: Client, tiny: dict[str, Any]) -> None:
    csv_text = "Email,First\nada@example.com,Ada\nbob@example.com,Bob\n"
    upload = client.http.put(
        "/uploads/people.csv",
        headers={"content-type": "text/csv", "x-api-key": KEY},
        body=csv_text,
    )
    assert upload.status_code == 201, upload.body
    key = body(upload)["key"]
    mapping = {"id": "Email", "fields": {"first_name": {"from": "First"}}}
    response = post(client, "/batches", {"template_id": "tiny", "source": key, "mapping": mapping})
    assert response.status_code == 202, response.body
    done = wait_for(client, f"/batches/{body(response)['batch_id']}", finished)
    assert done["counts"]["rendered"] == 2
    assert {r["recipient_id"] for r in done["results"]} == {"ada@example.com", "bob@example.com"}


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"template_id": "tiny"}, 400, "body"),  # the body as a whole is at fault
        ({"template_id": "tiny", "records": []}, 400, "body"),
        ({"template_id": "tiny", "records": [{}], "source": "a.csv"}, 400, "body"),
        ({"template_id": "tiny", "source": "uploads/none.csv"}, 404, "source"),
        ({"template_id": "tiny", "source": "uploads/x.txt"}, 400, "source"),
        ({"template_id": "tiny", "records": [{}], "mapping": {"fields": 3}}, 400, "mapping.fields"),
    ],
)
def test_bad_batch_requests(
    client: Client, tiny: dict[str, Any], payload: dict[str, Any], status: int, field: str
) -> None:
    response = post(client, "/batches", payload)
    assert response.status_code == status, response.body
    assert body(response)["error"]["field"] == field


def test_inline_records_are_capped(
    client: Client, tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REEL_MAX_INLINE_RECORDS", "2")
    bootstrap.reset()
    records = [{"first_name": n} for n in ("A", "B", "C")]
    response = post(client, "/batches", {"template_id": "tiny", "records": records})
    assert response.status_code == 400
    assert body(response)["error"]["field"] == "records"


def test_upload_under_incoming_starts_one_batch(client: Client, tiny: dict[str, Any]) -> None:
    # GIVEN a JSONL file uploaded under incoming/{template_id}/
    blobs = bootstrap.backends().blobs
    blobs.put_bytes("incoming/tiny/october.jsonl", b'{"first_name": "Ada"}\n')
    event = client.events.generate_s3_event(bucket="reel-media", key="incoming/tiny/october.jsonl")
    # WHEN the bucket notification arrives (twice: S3 delivers at least once)
    first = client.lambda_.invoke("incoming", event)
    second = client.lambda_.invoke("incoming", event)
    # THEN one batch is started, and it renders the file
    started = first.payload["batches"]
    assert len(started) == 1
    assert second.payload["batches"] == []
    done = wait_for(client, f"/batches/{started[0]}", finished)
    assert done["counts"]["rendered"] == 1
    # Other keys are ignored
    other = client.events.generate_s3_event(bucket="reel-media", key="uploads/x/y.csv")
    assert client.lambda_.invoke("incoming", other).payload["batches"] == []
    # A bad upload is refused alone, saying why
    blobs.put_bytes("incoming/nope/x.csv", b"first_name\nAda\n")
    blobs.put_bytes("incoming/tiny/mapping.yaml", b"fields: 3\n")
    blobs.put_bytes("incoming/tiny/november.csv", b"first_name\nAda\n")
    for key, code in (
        ("incoming/nope/x.csv", "not_found"),
        ("incoming/tiny/november.csv", "invalid_template"),
    ):
        bad = client.events.generate_s3_event(bucket="reel-media", key=key)
        payload = client.lambda_.invoke("incoming", bad).payload
        assert payload["batches"] == []
        assert payload["refused"][0]["error"]["code"] == code


def test_unfinished_work_resumes_after_a_restart(
    local_client: Client, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = local_client
    templates.register_folder(bootstrap.backends(), campaign.root)
    from chalicelib.adapters.local_runner import LocalOrchestrator

    # GIVEN a server that accepted a render and a batch, then stopped before doing them
    with monkeypatch.context() as m:
        m.setattr(LocalOrchestrator, "start_render", lambda self, rid: None)
        m.setattr(LocalOrchestrator, "start_batch", lambda self, bid: None)
        payload = {"template_id": "tiny", "data": {"first_name": "A"}}
        render = body(post(client, "/renders", payload))
        records = [{"first_name": "B"}]
        batch = body(post(client, "/batches", {"template_id": "tiny", "records": records}))
    assert body(client.http.get(f"/renders/{render['render_id']}"))["status"] == "queued"
    bootstrap.reset()
    # WHEN the server starts again
    b = bootstrap.backends()
    assert b.orchestrator.resume() == 2
    # THEN both finish
    assert wait_for(client, f"/renders/{render['render_id']}", finished)["status"] == "done"
    done = wait_for(client, f"/batches/{batch['batch_id']}", finished)
    assert done["counts"]["rendered"] == 1
