"""Coercing raw record values to a variable's type (pure; raises ValueError with the reason)."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from chalicelib.template.expr import DateValue
from chalicelib.template.model import MAX_CHART_VALUES, Variable, VarType, normalize_color

DEFAULT_MAX_TEXT = 500
# A media value from data may be a URL of one of these schemes; the asset fetcher
# (adapters/fetcher.py) decides, when the plan is localized, whether http is allowed
# (REEL_FETCH_ALLOW_HTTP).
REMOTE_SCHEMES = ("https", "http")
MAX_URL_LENGTH = 2048
MAX_PATH, MAX_NAME = 1024, 255  # a local path, and one name in it (what file systems take)
# `scheme:` as RFC 3986 spells it; two letters at least, so `C:\x` is not taken for a URL.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def is_blank(raw: Any) -> bool:
    """Missing values: None, empty or whitespace-only strings, and NaN (as CSV readers give)."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return raw.strip() == ""
    return isinstance(raw, float) and math.isnan(raw)


def show(raw: Any) -> str:
    """A short, safe rendering of a raw value for an error message: never the repr of a
    container (it may be huge or nested past the recursion limit), never a huge int's digits."""
    if isinstance(raw, str):
        return repr(raw[:40])
    if isinstance(raw, bool) or raw is None:
        return repr(raw)
    if isinstance(raw, int):
        return repr(raw) if abs(raw) < 10**40 else "a number of over 40 digits"
    if isinstance(raw, float):
        return repr(raw)
    return f"a {type(raw).__name__}"


def _text(var: Variable, raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected text, got {type(raw).__name__}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"expected text, got {raw}")
    if isinstance(raw, int) and raw.bit_length() > 13_000:  # str() refuses over 4,300 digits
        raise ValueError("is a number too long to be text")
    limit = var.max_length or DEFAULT_MAX_TEXT
    value = str(raw).strip()
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if len(value) > limit:  # before the per-character check: a 1 MB value is refused at once
        raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
    for ch in value:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValueError(f"contains a control character U+{ord(ch):04X}")
    return value


def _number(var: Variable, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(raw, int | float):
        try:
            num: float = float(raw)
        except OverflowError:  # an int beyond a float's range (10**400)
            raise ValueError("must be a finite number (this one is too large)") from None
    elif isinstance(raw, str):
        try:
            num = float(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a number, got {show(raw)}") from None
    else:
        raise ValueError(f"expected a number, got {type(raw).__name__}")
    if not math.isfinite(num):
        raise ValueError("must be a finite number")
    if var.min is not None and num < var.min:
        raise ValueError(f"{num:g} is below the minimum {var.min:g}")
    if var.max is not None and num > var.max:
        raise ValueError(f"{num:g} is above the maximum {var.max:g}")
    return int(num) if num.is_integer() and abs(num) < 2**53 else num


def _date(var: Variable, raw: Any) -> DateValue:
    if isinstance(raw, dt.datetime):
        day = raw.date()
    elif isinstance(raw, dt.date):
        day = raw
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            if var.input_format:
                day = dt.datetime.strptime(text, var.input_format).date()
            else:
                day = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            expected = var.input_format or "ISO 8601 (YYYY-MM-DD)"
            raise ValueError(f"{show(text)} is not a date in {expected}") from None
    else:
        raise ValueError(f"expected a date, got {type(raw).__name__}")
    return DateValue.of(day, var.format, var.locale)


def url_scheme(ref: str) -> str | None:
    """The lower-case scheme of a URL (`https`, `file`, `data`…), or None for a plain path."""
    match = _SCHEME.match(ref.strip())
    return match.group(1).lower() if match else None


def check_url(url: str) -> str:
    """An https (or http) URL with a host and nothing else in it; ValueError says why not.

    Other schemes (file:, data:, ftp:, gopher:…) are refused: a media value from data is a
    path in the campaign folder or a web address, never a way to reach anything else.
    """
    scheme = url_scheme(url)
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(
            f"{scheme}: URLs are not allowed; give an https:// URL "
            "or a path inside the campaign folder"
        )
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ValueError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL carries credentials (user@host): not allowed")
    if port == 0:
        raise ValueError("the URL's port is 0")
    return url


def _media(var: Variable, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a file path, got {type(raw).__name__}")
    value = raw.strip()
    if url_scheme(value) is not None:
        check_url(value)
    elif len(value) > MAX_PATH or any(len(p) > MAX_NAME for p in value.split("/")):
        # the file system would fail on it (ENAMETOOLONG)
        raise ValueError(
            f"is too long for a file path ({MAX_PATH} characters, {MAX_NAME} per name)"
        )
    elif any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("the file path contains a control character")
    return value


def _color(var: Variable, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a colour, got {type(raw).__name__}")
    return normalize_color(raw)


def _boolean(var: Variable, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"expected a boolean (true/false, yes/no, 1/0), got {show(raw)}")


def _enum(var: Variable, raw: Any) -> str:
    allowed = var.values or []
    text = None
    if isinstance(raw, str):
        text = raw.strip()
    elif isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**40:
        text = str(raw)
    if text is not None:
        if text in allowed:
            return text
        for value in allowed:  # a CRM may send 'Pro' for 'pro'
            if value.lower() == text.lower():
                return value
    raise ValueError(f"{show(raw)} is not one of {allowed}")


def numbers(raw: Any, limit: int = MAX_CHART_VALUES) -> list[int | float]:
    """A list of finite numbers from a JSON list or a 'a;b;c' string; ValueError says which
    item is wrong (counted from 1) or that there are too many."""
    if isinstance(raw, str):
        items: list[Any] = [p for p in raw.split(";") if p.strip()]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        items = [raw]
    else:
        raise ValueError(f"expected a list of numbers, got {type(raw).__name__}")
    if len(items) > limit:
        raise ValueError(f"has {len(items)} values; the limit is {limit}")
    out = []
    plain = Variable(type=VarType.number)
    for i, item in enumerate(items, 1):
        try:
            out.append(_number(plain, item))
        except ValueError as exc:
            raise ValueError(f"item {i}: {exc}") from None
    return out


def _numbers(var: Variable, raw: Any) -> list[int | float]:
    values = numbers(raw)
    for v in values:
        if var.min is not None and v < var.min:
            raise ValueError(f"{v:g} is below the minimum {var.min:g}")
        if var.max is not None and v > var.max:
            raise ValueError(f"{v:g} is above the maximum {var.max:g}")
    return values


_COERCE = {
    VarType.text: _text,
    VarType.number: _number,
    VarType.date: _date,
    VarType.image: _media,
    VarType.video: _media,
    VarType.audio: _media,
    VarType.color: _color,
    VarType.boolean: _boolean,
    VarType.enum: _enum,
    VarType.numbers: _numbers,
}


def coerce(var: Variable, raw: Any) -> Any:
    """Coerce a non-blank raw value to `var`'s type; ValueError says why it cannot."""
    return _COERCE[var.type](var, raw)


def to_json(value: Any) -> Any:
    """The JSON shape of a coerced value (for JMESPath conditions and cache keys)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
