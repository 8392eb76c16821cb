"""What a route declares about itself for GET /openapi.json: `@Operation(...)` under its
`@….route(...)` names its bodies (pydantic models), query model, parameters, key and errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])

DECLARED = "__reel_operation__"  # the view function's attribute holding its Operation


@dataclass(frozen=True)
class Media:
    """A body that is not a JSON model: its media types and the schema of its bytes. A request
    body names no types: it takes the route's `content_types`."""

    types: tuple[str, ...]
    description: str
    schema: tuple[tuple[str, Any], ...] = (("type", "string"),)

    def content(self, types: tuple[str, ...]) -> dict[str, Any]:
        return {t: {"schema": dict(self.schema)} for t in types}


BINARY = (("type", "string"), ("format", "binary"))
TEXT = (("type", "string"), ("minLength", 1))
JSON_DOCUMENT = (("type", "object"),)
HTML_PAGE = Media(("text/html",), "an HTML page")

Body = type[BaseModel] | Media


@dataclass(frozen=True)
class Param:
    """A path or header parameter (query strings are models: see `Operation.query`)."""

    name: str
    description: str
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    required: bool = True

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            schema["pattern"] = self.pattern
        if self.enum:
            schema = {"type": "string", "enum": list(self.enum)}
        return schema


TOKEN = Param("token", "the recipient's page token (from their landing page URL)")
CAMPAIGN = Param("campaign_id", "the campaign: its template id")


@dataclass(frozen=True)
class Operation:
    """One route, described; the route's own path, method and content types complete it.

    Used as a decorator directly under the route's: `@api.route(...)` then `@Operation(...)`."""

    summary: str
    tag: str
    response: Body
    status: int = 200
    request: Body | None = None  # its media types: the route's content_types (less raw_request's)
    raw_request: Media | None = None  # a body the route also takes as it is (a zip…)
    query: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()  # the path's, in any order (each `{name}` needs one)
    headers: tuple[Param, ...] = ()
    key: bool = False  # needs `x-api-key`
    errors: tuple[int, ...] = (404,)
    refusal: type[BaseModel] | None = None  # a 400 may answer this instead of an ErrorBody
    description: str = ""

    def __call__(self, view: F) -> F:
        # An attribute, not a registry: functools.wraps (handles_errors) carries it over.
        setattr(view, DECLARED, self)
        return view


def declared(view: Callable[..., Any]) -> Operation | None:
    """The Operation a view function declares, if any."""
    found = getattr(view, DECLARED, None)
    return found if isinstance(found, Operation) else None
