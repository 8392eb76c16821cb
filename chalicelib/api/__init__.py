"""The HTTP API's plumbing: body parsing, API keys, and the one place errors become 4xx."""

from __future__ import annotations

import functools
import hmac
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Chalice, Request, Response
from pydantic import BaseModel, Field, ValidationError

from chalicelib import bootstrap
from chalicelib.errors import AuthError, ReelError, RequestError
from chalicelib.template.documents import DocumentError, decode, load_json, load_yaml
from chalicelib.template.library import pydantic_problems
from chalicelib.template.model import Strict

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Any]


class ErrorDetail(Strict):
    """What went wrong, and where."""

    code: str = Field(description="invalid_request, invalid_data, not_found, unauthorized, …")
    message: str
    field: str = Field(description="the field path it is about (empty: the request as a whole)")


class ErrorBody(Strict):
    """The body of every 4xx (and 503) the API answers."""

    error: ErrorDetail


def error_response(status: int, code: str, message: str, field: str = "") -> Response:
    return Response(
        body=ErrorBody(error=ErrorDetail(code=code, message=message, field=field)).model_dump(),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def handles_errors(fn: Handler) -> Handler:
    """Every ReelError (and a body that fails its model) becomes `{"error": …}` with its status:
    a 4xx, or a 503 with Retry-After for what is still being made."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ReelError as exc:
            first = exc.problems[0]
            message = str(first) if len(exc.problems) == 1 else str(exc)
            if len(exc.problems) > 1:
                message = exc.message + ": " + "; ".join(str(p) for p in exc.problems)
            response = error_response(exc.status, exc.code, message, exc.field or first.field)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response

    return wrapper


def require_key(request: Request) -> None:
    """Write routes need one of the configured keys in `x-api-key` (compared in constant time)."""
    given = request.headers.get("x-api-key", "")
    keys = bootstrap.settings().api_key_list
    if not keys:
        raise AuthError("no API key is configured on this server (set REEL_API_KEYS)", "x-api-key")
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise AuthError("missing or invalid API key", "x-api-key")


def parse_document(request: Request) -> Any:
    """The body as JSON data: JSON, or YAML when the Content-Type says so. Anything JSON cannot
    say (NaN, duplicate keys, YAML tags and alias bombs, deep nesting) is refused with its path."""
    raw = request.raw_body or b""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        text = decode(raw) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
        if not text.strip():
            raise RequestError("the request body is empty", field="body")
        return load_yaml(text) if "yaml" in kind else load_json(text)
    except DocumentError as exc:
        raise RequestError(exc.message, field=exc.field or "body") from None


def parse_model(model: type[M], data: Any) -> M:
    """Validate a body against its pydantic model; the error names the first bad field."""
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc)
        raise RequestError(
            f"{len(problems)} problem(s) in the request",
            field=problems[0].field or "body",
            problems=problems,
        ) from exc


class _PerThread:
    """An attribute with one value per object and thread."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_by_thread"

    def _local(self, obj: object) -> threading.local:
        found: threading.local | None = obj.__dict__.get(self._slot)
        if found is None:  # setdefault: two threads' first uses keep one
            found = obj.__dict__.setdefault(self._slot, threading.local())
        return found

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return None if obj is None else getattr(self._local(obj), "value", None)

    def __set__(self, obj: object, value: Any) -> None:
        self._local(obj).value = value


class ReelApp(Chalice):
    """The Chalice app of Reel. Chalice keeps the request being handled on the app object
    (`current_request`), made for Lambda's one request per process at a time; `reel serve`
    answers each connection on its own thread, so each thread keeps its own."""

    current_request = _PerThread()
    lambda_context = _PerThread()
