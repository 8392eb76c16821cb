"""HTTP plumbing shared by the connectors: one call, and one way to classify its failure."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from chalicelib.connectors.base import DeliveryFailed

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Reel-Connectors/0.1"
_SNIPPET = 300  # characters of a response body kept in an error message
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (never negative);
    None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT by definition
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def classify(
    status: int, what: str, *, retry_after: float | None = None, detail: str = ""
) -> DeliveryFailed | None:
    """The failure an HTTP status means for a delivery, or None for a 2xx.

    410: gone (the relay disables the endpoint) · 408, 429, 5xx: retryable, with the other
    side's Retry-After · any other status (3xx, 4xx): permanent."""
    if 200 <= status < 300:
        return None
    message = f"{what}: HTTP {status}{detail}"
    if status == 410:
        return DeliveryFailed(f"{message} (gone)", status=410)
    if status in (408, 429) or status >= 500:
        return DeliveryFailed(message, status=status, retry_after=retry_after)
    return DeliveryFailed(message, status=status, permanent=True)


def check(resp: requests.Response, what: str, *, clock: Callable[[], float] = time.time) -> None:
    """Return on a 2xx; raise the classified DeliveryFailed otherwise."""
    failure = classify(
        resp.status_code,
        what,
        retry_after=parse_retry_after(resp.headers.get("Retry-After"), clock()),
        detail=_body_snippet(resp),
    )
    if failure is not None:
        raise failure


def transport_failure(err: requests.RequestException, what: str) -> DeliveryFailed:
    """A failure without an HTTP status: connection errors and timeouts are retryable; a
    request that cannot be made at all (a bad URL, a bad header) is permanent."""
    retryable = (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    )
    if isinstance(err, retryable):
        return DeliveryFailed(f"{what}: {type(err).__name__}: {err}")
    return DeliveryFailed(f"{what}: {type(err).__name__}: {err}", permanent=True)


def call(
    session: requests.Session,
    method: str,
    url: str,
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.time,
    **kwargs: Any,
) -> requests.Response:
    """Make one request (never following redirects); return the 2xx response or raise
    DeliveryFailed."""
    try:
        resp = session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.RequestException as err:
        raise transport_failure(err, what) from err
    check(resp, what, clock=clock)
    return resp


def json_body(resp: requests.Response, what: str) -> Any:
    """A 2xx response's JSON; an unreadable body is retryable (a proxy's page, a cut body)."""
    try:
        return resp.json()
    except ValueError as err:
        raise DeliveryFailed(f"{what}: the response is not JSON", status=resp.status_code) from err


def wire_id(key: str) -> str:
    """An idempotency key as an id that any header, path or API accepts: the key itself when it
    is short and plain, else a stable digest of it (the same key always gives the same id)."""
    if _SAFE_ID.match(key):
        return key
    return "reel-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def looks_like_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def occurred_at(data: Mapping[str, Any]) -> float | None:
    """When the event behind a delivery was received (`data["event"]["received_at"]`, epoch
    seconds), so that every retry describes it with the same time; None if unknown."""
    event = data.get("event")
    received = event.get("received_at") if isinstance(event, Mapping) else None
    if isinstance(received, int | float) and not isinstance(received, bool):
        return float(received)
    return None


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: 2024-05-01T12:00:00.123Z."""
    stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers every connector sends."""
    return {"User-Agent": USER_AGENT, **(extra or {})}


def _body_snippet(resp: requests.Response) -> str:
    try:
        text = resp.text.strip()
    except (UnicodeDecodeError, LookupError):
        return ""
    if not text:
        return ""
    text = " ".join(text.split())
    return f" ({text[:_SNIPPET]}{'…' if len(text) > _SNIPPET else ''})"
