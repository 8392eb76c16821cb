"""Reel's HTTP API (Chalice). Routes stay thin: parse, call one service function, dump."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from chalice.app import Response

from chalicelib import __version__
from chalicelib.api import ReelApp
from chalicelib.api.hls import hls
from chalicelib.api.hooks import hooks
from chalicelib.api.landing import landing
from chalicelib.api.openapi import Health, openapi_document
from chalicelib.api.operations import JSON_DOCUMENT, Media, Operation
from chalicelib.api.privacy import privacy
from chalicelib.api.routes import api
from chalicelib.api.studio import studio
from chalicelib.template.schema import template_json_schema

app = ReelApp(app_name="reel")
app.api.binary_types.extend(["video/mp4", "application/zip", "image/webp", "video/quicktime"])
app.api.binary_types.extend(["font/woff2", "font/woff", "font/ttf", "font/otf"])  # page.theme
app.register_blueprint(api)
app.register_blueprint(landing)
app.register_blueprint(hooks)
app.register_blueprint(hls)
app.register_blueprint(privacy)
app.register_blueprint(studio)


@app.route("/health")
@Operation("Liveness and version", "meta", Health, errors=())
def health() -> dict[str, Any]:
    return Health(status="ok", version=__version__).model_dump()


@app.route("/schema/template")
@Operation(
    "The JSON Schema of a template file",
    "meta",
    Media(("application/json",), "a JSON Schema (draft 2020-12)", JSON_DOCUMENT),
    errors=(),
)
def template_schema() -> dict[str, Any]:
    return template_json_schema()


@app.route("/openapi.json")
@Operation(
    "This description of the API",
    "meta",
    Media(("application/json",), "an OpenAPI 3.1 document", JSON_DOCUMENT),
    errors=(),
)
def openapi() -> Response:
    """This API's OpenAPI 3.1 description, built from the pydantic models (no key needed)."""
    return Response(
        body=openapi_document(app),
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=300"},
    )


# The S3 trigger: an upload of incoming/{template_id}/{name}.csv|.jsonl starts a batch. It is a
# plain Lambda function wired to the bucket by infra/ (`chalice package` cannot package
# @app.on_s3_event: CloudFormation cannot edit the notifications of a bucket it does not own).
@app.lambda_function(name="incoming")
def incoming(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib import bootstrap
    from chalicelib.errors import GoneError, ReelError
    from chalicelib.services import batches

    started, refused = [], []
    for record in event.get("Records", []):
        obj = record["s3"]["object"]
        key = unquote_plus(obj["key"])
        try:
            batch = batches.batch_from_upload(bootstrap.backends(), key, obj.get("eTag", ""))
        except GoneError:  # deleted meanwhile: a failed invocation, listed by `reel failures`
            raise
        except ReelError as exc:  # a bad upload (unknown template, bad mapping) fails alone
            app.log.error("incoming %s refused: %s", key, exc)
            refused.append({"key": key, **exc.to_dict()})
            continue
        if batch is not None:
            started.append(batch.id)
    return {"batches": started, "refused": refused}
