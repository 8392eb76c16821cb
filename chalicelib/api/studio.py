"""Reel Studio's routes: its page and bundled script, and the calls the page makes (check,
draw a frame, lay out the timeline, list recipients and assets, play, save). Every call but
the page's static files needs the API key; `reel studio` makes one for its session."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from chalice.app import Blueprint, Response
from pydantic import BaseModel, Field

from chalicelib import bootstrap
from chalicelib.api import handles_errors, parse_document, parse_model, require_key
from chalicelib.api.operations import BINARY, HTML_PAGE, JSON_DOCUMENT, Media, Operation, Param
from chalicelib.errors import NotFoundError, RequestError
from chalicelib.studio import service, workspace
from chalicelib.studio.watch import watcher
from chalicelib.template.model import Strict

studio = Blueprint(__name__)

JPEG = "image/jpeg"
STATIC = {"studio.js": "text/javascript", "studio.css": "text/css", "index.html": "text/html"}
# CodeMirror adds its styles with a <style> element, which carries this response's nonce, and
# sets a few `style` attributes (no script runs from either).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: http: https:; "
    "style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
WS = Param("ws", "the workspace: `local` (the folder `reel studio` opened) or a template id")
JSON_OBJECT = Media(("application/json",), "a JSON object", JSON_DOCUMENT)
THUMB_PX = 160


class StudioQuery(Strict):
    version: str | None = Field(
        None, description="a registered template's version (default: the latest)"
    )


class AssetQuery(StudioQuery):
    path: str = Field(
        min_length=1, max_length=500, description="the asset, relative to the campaign"
    )


class ChangesQuery(Strict):
    since: int = Field(0, ge=0, description="the revision the page has")


class DraftBody(Strict):
    """The editor's unsaved texts (campaign-relative path → text) over the campaign's files."""

    files: dict[str, str] = Field(default_factory=dict, max_length=200)
    version: str | None = Field(None, description="a registered template's version")


class RecipientBody(DraftBody):
    record: dict[str, Any] = Field(description="the recipient's record (template variables)")


class FrameBody(RecipientBody):
    at: float = Field(ge=0, le=3600, description="seconds from the start of the video")


class PlayBody(RecipientBody):
    preview: bool = Field(True, description="a low-resolution quick look, else the real MP4")


class RecipientsBody(Strict):
    data: str | None = Field(None, max_length=500, description="a CSV/JSONL file of the campaign")
    version: str | None = None


class PasteBody(Strict):
    text: str = Field(max_length=1_000_000, description="a record pasted as JSON")


def _body(model: type[BaseModel]) -> Any:
    require_key(studio.current_request)  # before the body is looked at
    return parse_model(model, parse_document(studio.current_request))


def _query(model: type[BaseModel]) -> Any:
    require_key(studio.current_request)
    params = studio.current_request.query_params
    return parse_model(model, {k: params[k] for k in params} if params else {})


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _open(ws: str, version: str | None) -> service.Workspace:
    require_key(studio.current_request)
    s = bootstrap.settings()
    return service.open_workspace(
        bootstrap.backends(), ws, folder=s.studio_dir, data=s.studio_data, version=version
    )


def _draft(ws: str, body: DraftBody) -> service.Draft:
    return service.Draft(_open(ws, body.version), body.files)


def _work() -> Path:
    work = bootstrap.backends().scratch / "studio"
    work.mkdir(parents=True, exist_ok=True)
    return work


# ── the page ───────────────────────────────────────────────────────────────────────────────


def _static(name: str) -> bytes | None:
    ref = resources.files("chalicelib.studio").joinpath("static", name)
    return ref.read_bytes() if ref.is_file() else None


@studio.route("/studio")
@Operation("Reel Studio: the template editor with a live preview", "studio", HTML_PAGE, errors=())
@handles_errors
def page() -> Response:
    body = _static("index.html")
    assert body is not None, "chalicelib/studio/static/index.html is packaged"
    nonce = secrets.token_urlsafe(18)
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": CSP.format(nonce=nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    html = body.decode().replace("{{nonce}}", nonce)
    return Response(body=html, status_code=200, headers=headers)


@studio.route("/studio/static/{name}")
@Operation(
    "The Studio's script and style (bundled from npm by `make studio`; no CDN)",
    "studio",
    Media(("text/javascript", "text/css"), "the file"),
    params=(Param("name", "the file", enum=("studio.css", "studio.js")),),
)
@handles_errors
def static(name: str) -> Response:
    kind = STATIC.get(name)
    body = _static(name) if kind and name != "index.html" else None
    if body is None:
        raise NotFoundError(f"no Studio file {name!r} (`make studio` builds studio.js)", "name")
    headers: dict[str, str | list[str]] = {
        "Content-Type": f"{kind}; charset=utf-8",
        "Cache-Control": "no-cache",
    }
    return Response(body=body.decode(), status_code=200, headers=headers)


# ── the calls the page makes ───────────────────────────────────────────────────────────────


@studio.route("/studio/api/workspaces")
@Operation("What the Studio can open here", "studio", JSON_OBJECT, key=True, errors=(401,))
@handles_errors
def list_workspaces() -> Response:
    require_key(studio.current_request)
    return _json({"workspaces": service.workspaces(bootstrap.settings().studio_dir)})


@studio.route("/studio/api/{ws}/files")
@Operation(
    "A campaign's text files, data files and assets, with the template's version",
    "studio",
    JSON_OBJECT,
    query=StudioQuery,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def files(ws: str) -> Response:
    query = _query(StudioQuery)
    found = _open(ws, query.version)
    draft = service.Draft(found)
    texts = {rel: draft.text(rel) for rel in workspace.text_files(found.root)}
    revision = watcher(found.root).revision if found.folder else 0
    return _json(
        {
            "workspace": found.id,
            "name": found.root.name if found.folder else found.id,
            "folder": found.folder,
            "version": found.version,
            "template": draft.template_rel,
            "files": texts,
            "data": workspace.data_files(found.root),
            "assets": workspace.assets(found.root),
            "revision": revision,
        }
    )


@studio.route("/studio/api/{ws}/check", methods=["POST"], content_types=["application/json"])
@Operation(
    "The problems `reel validate` reports for the draft, at their file and line",
    "studio",
    JSON_OBJECT,
    request=DraftBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def check(ws: str) -> Response:
    draft = _draft(ws, _body(DraftBody))
    return _json({"problems": service.check(draft)})


@studio.route("/studio/api/{ws}/recipients", methods=["POST"], content_types=["application/json"])
@Operation(
    "The recipients of a data file of the campaign, with its mapping applied",
    "studio",
    JSON_OBJECT,
    request=RecipientsBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def recipients(ws: str) -> Response:
    body = _body(RecipientsBody)
    return _json(service.recipients(_open(ws, body.version), body.data))


@studio.route("/studio/api/{ws}/record", methods=["POST"], content_types=["application/json"])
@Operation(
    "A record pasted as JSON, checked",
    "studio",
    JSON_OBJECT,
    request=PasteBody,
    params=(WS,),
    key=True,
    errors=(400, 401),
)
@handles_errors
def paste(ws: str) -> Response:
    require_key(studio.current_request)
    return _json({"record": service.parse_record(_body(PasteBody).text)})


@studio.route("/studio/api/{ws}/timeline", methods=["POST"], content_types=["application/json"])
@Operation(
    "The draft's timeline for one recipient: scenes, transitions, personal runs and their cost",
    "studio",
    JSON_OBJECT,
    request=RecipientBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def timeline(ws: str) -> Response:
    body = _body(RecipientBody)
    return _json(service.layout(bootstrap.backends(), _draft(ws, body), body.record))


@studio.route("/studio/api/{ws}/frame", methods=["POST"], content_types=["application/json"])
@Operation(
    "The frame at a time of the draft's video for one recipient, drawn by the render engine",
    "studio",
    Media((JPEG,), "the frame", BINARY),
    request=FrameBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def frame(ws: str) -> Response:
    body = _body(FrameBody)
    jpeg, index = service.frame(
        bootstrap.backends(), _draft(ws, body), body.record, body.at, _work()
    )
    headers: dict[str, str | list[str]] = {
        "Content-Type": JPEG,
        "Cache-Control": "no-store",
        "X-Reel-Frame": str(index),
    }
    return Response(body=jpeg, status_code=200, headers=headers)


@studio.route("/studio/api/{ws}/play", methods=["POST"], content_types=["application/json"])
@Operation(
    "Render the draft's whole video for one recipient (GET /renders/{render_id} follows it)",
    "studio",
    JSON_OBJECT,
    status=202,
    request=PlayBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def play(ws: str) -> Response:
    body = _body(PlayBody)
    record = service.play(bootstrap.backends(), _draft(ws, body), body.record, body.preview)
    return _json({"render_id": record.id, "version": record.version}, 202)


@studio.route("/studio/api/{ws}/save", methods=["POST"], content_types=["application/json"])
@Operation(
    "Save the draft: its files written (a folder), or a new template version (registered)",
    "studio",
    JSON_OBJECT,
    request=DraftBody,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def save(ws: str) -> Response:
    return _json(service.save(bootstrap.backends(), _draft(ws, _body(DraftBody))))


@studio.route("/studio/api/{ws}/thumbnail")
@Operation(
    "A small JPEG of an image or video asset",
    "studio",
    Media((JPEG,), "the thumbnail", BINARY),
    query=AssetQuery,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def thumbnail(ws: str) -> Response:
    query = _query(AssetQuery)
    found = _open(ws, query.version)
    path = workspace.confine(found.root, query.path)
    if not path.is_file():
        raise NotFoundError(f"no asset {query.path!r}", field="path")
    jpeg = service.thumbnail(bootstrap.backends(), path, THUMB_PX, _work())
    headers: dict[str, str | list[str]] = {
        "Content-Type": JPEG,
        "Cache-Control": "private, max-age=60",
    }
    return Response(body=jpeg, status_code=200, headers=headers)


@studio.route(
    "/studio/api/{ws}/assets/{name}",
    methods=["PUT"],
    content_types=[
        "application/octet-stream",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "audio/mp4",
        "audio/mpeg",
        "audio/wav",
        "audio/ogg",
    ],
)
@Operation(
    "Add a media file under the campaign's assets/, checked like any asset",
    "studio",
    JSON_OBJECT,
    status=201,
    request=Media((), "the file's bytes", BINARY),
    params=(WS, Param("name", "the file's name")),
    key=True,
    errors=(400, 401, 404, 409),
)
@handles_errors
def add_asset(ws: str, name: str) -> Response:
    found = _open(ws, None)
    if not found.folder:
        raise RequestError(
            "assets are added to a registered template with its bundle (POST /templates)", "ws"
        )
    raw = studio.current_request.raw_body or b""
    data = raw.encode() if isinstance(raw, str) else raw
    return _json(workspace.add_asset(found.root, name, data), 201)


@studio.route("/studio/api/{ws}/changes")
@Operation(
    "What changed on disk since a revision (a folder open in `reel studio`)",
    "studio",
    JSON_OBJECT,
    query=ChangesQuery,
    params=(WS,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def changes(ws: str) -> Response:
    found = _open(ws, None)
    if not found.folder:
        return _json({"revision": 0, "files": []})
    return _json(watcher(found.root).since(_query(ChangesQuery).since))
