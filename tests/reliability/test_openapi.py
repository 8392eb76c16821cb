"""GET /openapi.json: a valid OpenAPI 3.1 description of exactly the routes the app has, built
from the pydantic models the routes parse and dump, with the API key where the code asks for
it."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema_rs  # schemathesis' own validator
import pytest
import schemathesis
from chalice.app import Blueprint, Chalice
from chalice.test import Client

from app import app
from chalicelib.api import ErrorBody, handles_errors
from chalicelib.api.openapi import Route, openapi_document, routes
from chalicelib.api.operations import Operation, Param
from chalicelib.services.renders import RenderRequest
from chalicelib.tracking.events import MAX_EVENTS_PER_REQUEST
from tests.app.test_hooks import secrets, standard_headers

__all__ = ["secrets"]  # the hooks' secrets fixture, shared with tests/app/test_hooks.py

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _app_routes() -> dict[tuple[str, str], list[str]]:
    return {
        (path, method.upper()): list(entry.view_args)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


def _documented(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_lists_exactly_the_routes_of_the_app() -> None:
    # A route added without a description (or a description left behind) fails here.
    documented = _documented(openapi_document(app))
    routes = _app_routes()
    assert sorted(documented) == sorted(routes)
    for key, view_args in routes.items():
        params = documented[key].get("parameters", [])
        in_path = sorted(p["name"] for p in params if p["in"] == "path")
        assert in_path == sorted(view_args), key


def test_each_route_declares_its_operation_where_it_is_declared() -> None:
    # GIVEN an app whose blueprint's routes each declare an Operation
    small, things = Chalice(app_name="small"), Blueprint(__name__)

    @things.route("/things/{thing_id}")
    @Operation("A thing", "things", ErrorBody, params=(Param("thing_id", "its id"),))
    @handles_errors
    def thing(thing_id: str) -> None: ...

    @things.route("/things", methods=["POST"])
    @handles_errors
    @Operation("Make a thing", "things", ErrorBody, status=201)  # under the wrapper: found too
    def make_thing() -> None: ...

    small.register_blueprint(things)
    # THEN the document describes them from the routes' own paths and methods
    paths = openapi_document(small)["paths"]
    assert set(paths) == {"/things/{thing_id}", "/things"}
    assert paths["/things"]["post"]["summary"] == "Make a thing"
    assert "201" in paths["/things"]["post"]["responses"]
    assert paths["/things/{thing_id}"]["get"]["parameters"][0]["name"] == "thing_id"

    # WHEN a route is added without a declaration
    @small.route("/forgotten", methods=["PUT"])
    def forgotten() -> None: ...

    # THEN building the document fails, naming the route
    with pytest.raises(ValueError, match=r"PUT /forgotten: its view forgotten\(\) declares no"):
        openapi_document(small)


def test_a_declaration_must_describe_the_routes_path_parameters() -> None:
    small = Chalice(app_name="small")

    @small.route("/things/{thing_id}")
    @Operation("A thing", "things", ErrorBody)
    def thing(thing_id: str) -> None: ...

    with pytest.raises(ValueError, match=r"GET /things/{thing_id}: describe the path parameters"):
        openapi_document(small)


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi_document(app)
    assert doc["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(json.loads(json.dumps(doc))).validate()  # raises if invalid
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    ids = [op["operationId"] for op in _documented(doc).values()]
    assert len(ids) == len(set(ids))


def test_bodies_come_from_the_models() -> None:
    doc = openapi_document(app)
    renders = doc["paths"]["/renders"]["post"]
    body = renders["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RenderRequest"}
    schema = doc["components"]["schemas"]["RenderRequest"]
    assert set(schema["properties"]) == set(RenderRequest.model_fields)
    assert schema["additionalProperties"] is False  # extra="forbid", as the route parses it
    events = doc["components"]["schemas"]["EventBatch"]
    assert events["properties"]["events"]["maxItems"] == MAX_EVENTS_PER_REQUEST
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(doc["components"]["schemas"]["ErrorDetail"]["required"]) == {
        "code",
        "message",
        "field",
    }


def test_non_json_routes_say_their_media_types() -> None:
    paths = openapi_document(app)["paths"]
    templates = paths["/templates"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-yaml", "application/zip"} <= set(templates)
    assert "text/csv" in paths["/uploads/{name}"]["put"]["requestBody"]["content"]
    assert "text/plain" in paths["/events"]["post"]["requestBody"]["content"]
    assert "text/html" in paths["/v/{token}"]["get"]["responses"]["200"]["content"]
    assert "image/jpeg" in paths["/v/{token}/poster.jpg"]["get"]["responses"]["200"]["content"]
    playlist = paths["/hls/{token}/{name}"]["get"]["responses"]["200"]["content"]
    assert "application/vnd.apple.mpegurl" in playlist
    assert "Retry-After" in paths["/hls/s/{name}"]["get"]["responses"]["503"]["headers"]


def test_query_parameters_come_from_the_query_models() -> None:
    params = openapi_document(app)["paths"]["/batches/{batch_id}"]["get"]["parameters"]
    limit = next(p for p in params if p["name"] == "limit")
    assert limit["in"] == "query" and not limit["required"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    deliveries = openapi_document(app)["paths"]["/deliveries"]["get"]["parameters"]
    status = next(p for p in deliveries if p["name"] == "status")
    assert status["schema"]["$ref"] == "#/components/schemas/DeliveryStatus"  # never null


def test_served_without_a_key(local_app: Client) -> None:
    response = local_app.http.get("/openapi.json")
    assert response.status_code == 200
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["content-type"].startswith("application/json")
    assert json.loads(response.body) == json.loads(json.dumps(openapi_document(app)))


def _request(client: Client, method: str, path: str, described: dict[str, Any]) -> Any:
    concrete = path.replace("{", "").replace("}", "")  # /renders/{render_id} → /renders/render_id
    kinds = list(described.get("requestBody", {}).get("content", {"application/json": {}}))
    return client.http.request(method, concrete, headers={"content-type": kinds[0]}, body=b"{}")


@pytest.mark.parametrize("route", routes(app), ids=lambda r: f"{r.method} {r.path}")
def test_the_key_is_asked_where_the_document_says(local_app: Client, route: Route) -> None:
    # GIVEN a request without x-api-key WHEN it is sent THEN a route documented as needing the
    # key answers 401 naming it, and no other route asks for it.
    described = _documented(openapi_document(app))[(route.path, route.method)]
    response = _request(local_app, route.method, route.path, described)
    secured = described.get("security")
    asked = False
    if response.status_code == 401:
        asked = ErrorBody.model_validate_json(response.body).error.field == "x-api-key"
    assert asked == bool(secured), (response.status_code, response.body)


def test_error_bodies_match_the_documented_model(local_app: Client) -> None:
    for response in (
        local_app.http.get("/renders/r_unknown"),
        local_app.http.get("/batches/b_x?limit=0"),
        local_app.http.post("/events", headers={"content-type": "application/json"}, body=b"{"),
    ):
        assert 400 <= response.status_code < 500
        error = ErrorBody.model_validate_json(response.body).error  # raises if it does not fit
        assert error.code and error.message


def _fits(path: str, method: str, status: int, body: bytes) -> bool:
    doc = json.loads(json.dumps(openapi_document(app)))
    response = doc["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": doc["components"]})
    return bool(validator.is_valid(json.loads(body)))


def test_hook_refusals_fit_their_description(secrets: None, local_app: Client) -> None:
    # The fuzzer cannot sign a hook request: its refusals are checked here. A body that is
    # not records is an ErrorBody; records all refused are a HookResult with the first error.
    path = "/hooks/generic/{campaign_id}"
    for n, payload in enumerate((b"[]", b'[{"recipient_id": "ada"}, 5]')):
        headers = standard_headers(payload, time.time(), msg_id=f"msg_fit_{n}")
        response = local_app.http.post("/hooks/generic/tiny", headers=headers, body=payload)
        assert response.status_code == 400, response.body
        assert _fits(path, "post", 400, response.body), response.body
    assert not _fits(path, "post", 400, b'{"renders": []}')  # the check can fail
