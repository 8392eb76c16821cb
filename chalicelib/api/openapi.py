"""The HTTP API's OpenAPI 3.1 description (`GET /openapi.json`), built from the app's routes:
each brings its path, method and content types, and the `Operation` it declares (its bodies,
query strings and errors are the pydantic models the route parses and dumps)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from chalice.app import Chalice, RouteEntry
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import __version__
from chalicelib.api import ErrorBody
from chalicelib.api.operations import Body, Media, Operation, declared
from chalicelib.template.model import Strict

KEY_SCHEME = "apiKey"
REF = "#/components/schemas/{model}"


class Health(Strict):
    """GET /health."""

    status: Literal["ok"]
    version: str = Field(description="the running Reel's version")


@dataclass(frozen=True)
class Route:
    """One method of one path of the app, with what its view declares."""

    method: str
    path: str
    content_types: tuple[str, ...]
    op: Operation


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad input: the error names the field",
    401: "Missing or invalid API key (`x-api-key`)",
    403: "Forbidden",
    404: "Not found",
    409: "Already received",
    503: "Still being made: retry after `Retry-After` seconds",
}


def routes(app: Chalice) -> tuple[Route, ...]:
    """Every method of every path of the app (its blueprints' too), with its declaration: a
    route without an `@Operation` is an error, so none is left out of the document."""
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            op = declared(entry.view_function)
            if op is None:
                raise ValueError(
                    f"{method} {path}: its view {entry.view_name}() declares no @Operation "
                    "(chalicelib.api.operations) under its route"
                )
            found.append(Route(method, path, _content_types(entry, op), op))
    return tuple(found)


def _content_types(entry: RouteEntry, op: Operation) -> tuple[str, ...]:
    """The media types of the route's request body: those it accepts, less the raw body's."""
    accepted = tuple(entry.content_types)
    raw = op.raw_request.types if op.raw_request is not None else ()
    if not set(raw) <= set(accepted):
        raise ValueError(f"{entry.method} {entry.uri_pattern}: its route accepts no {raw}")
    return tuple(t for t in accepted if t not in raw)


def _models(found: tuple[Route, ...]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None
    }
    for op in (route.op for route in found):
        if isinstance(op.response, type):
            models[(op.response, "serialization")] = None
        if isinstance(op.request, type):
            models[(op.request, "validation")] = None
        if op.query is not None:
            models[(op.query, "validation")] = None
        if op.refusal is not None:
            models[(op.refusal, "serialization")] = None
    return list(models)


def _content(body: Body, refs: dict[Any, Any], mode: JsonSchemaMode, types: tuple[str, ...]) -> Any:
    if isinstance(body, Media):
        return body.content(types)
    schema = refs[(body, mode)]
    return {t: {"schema": schema} for t in types}


def _operation(route: Route, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    op = route.op
    names = re.findall(r"{(\w+)}", route.path)
    by_name = {p.name: p for p in op.params}
    if sorted(names) != sorted(by_name):
        raise ValueError(f"{route.method} {route.path}: describe the path parameters {names}")
    parameters = [
        {"name": p.name, "in": "path", "required": True, "description": p.description}
        | {"schema": p.schema()}
        for p in (by_name[n] for n in names)
    ]
    if op.query is not None:
        query = schemas[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(query.get("required", ()))
        for name, schema in query["properties"].items():
            schema = _not_null(schema)
            parameters.append(
                {"name": name, "in": "query", "required": name in required}
                | ({"description": schema["description"]} if "description" in schema else {})
                | {"schema": schema}
            )
    parameters += [
        {"name": h.name, "in": "header", "required": h.required, "description": h.description}
        | {"schema": h.schema()}
        for h in op.headers
    ]
    ok: dict[str, Any] = {"description": _STATUS_TEXT[op.status]}
    kinds = op.response.types if isinstance(op.response, Media) else ("application/json",)
    ok["content"] = _content(op.response, refs, "serialization", kinds)
    if isinstance(op.response, Media):
        ok["description"] = op.response.description
    responses: dict[str, Any] = {str(op.status): ok}
    errors = sorted({*op.errors, *((401,) if op.key else ())})
    for status in errors:
        schema = refs[(ErrorBody, "serialization")]
        if status == 400 and op.refusal is not None:  # e.g. every record refused: which, why
            schema = {"anyOf": [schema, refs[(op.refusal, "serialization")]]}
        error: dict[str, Any] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": schema}},
        }
        if status == 503:
            seconds = {"type": "string", "pattern": "^[0-9]+$"}
            error["headers"] = {"Retry-After": {"description": "seconds", "schema": seconds}}
        responses[str(status)] = error
    out: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    if parameters:
        out["parameters"] = parameters
    if isinstance(op.request, Media) and op.request.types not in ((), route.content_types):
        raise ValueError(f"{route.method} {route.path}: its route accepts {route.content_types}")
    if op.request is not None:
        body = _content(op.request, refs, "validation", route.content_types)
        if op.raw_request is not None:
            body |= op.raw_request.content(op.raw_request.types)
        out["requestBody"] = {"required": True, "content": body}
    out["responses"] = responses
    if op.key:
        out["security"] = [{KEY_SCHEME: []}]
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter is absent, never null: its schema without the null."""
    options: list[dict[str, Any]] = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return options[0] | rest


def _operation_id(route: Route) -> str:
    words = re.findall(r"[a-z0-9]+", route.path.replace("{", "by_").lower())
    return "_".join([route.method.lower(), *words])


def openapi_document(app: Chalice) -> dict[str, Any]:
    """The description of every route of the app, as a JSON document (a copy: callers may
    change it)."""
    return copy.deepcopy(_document(routes(app)))


@cache  # the same routes give the same document: built once per process
def _document(found: tuple[Route, ...]) -> dict[str, Any]:
    refs, defs = models_json_schema(_models(found), ref_template=REF)
    schemas = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in found:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Reel",
            "version": __version__,
            "description": (
                "Personalized video: register a template, render recipients one by one or in "
                "batches, serve their landing pages and streams, measure how they watch. "
                'Every 4xx answers `{"error": {"code", "message", "field"}}`.'
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": t} for t in dict.fromkeys(route.op.tag for route in found)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                KEY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "one of REEL_API_KEYS (`reel serve` prints a dev key)",
                }
            },
        },
    }
