"""Coercing raw record values to a variable's type (pure; raises ValueError with the reason)."""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from typing import Any

from chalicelib.template.expr import DateValue
from chalicelib.template.model import Variable, VarType, normalize_color

DEFAULT_MAX_TEXT = 500
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def is_blank(raw: Any) -> bool:
    """Missing values: None, empty or whitespace-only strings, and NaN (as CSV readers give)."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return raw.strip() == ""
    return isinstance(raw, float) and math.isnan(raw)


def _text(var: Variable, raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected text, got {type(raw).__name__}")
    value = str(raw).strip()
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    for ch in value:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValueError(f"contains a control character U+{ord(ch):04X}")
    limit = var.max_length or DEFAULT_MAX_TEXT
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
    return value


def _number(var: Variable, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(raw, int | float):
        num: float = float(raw)
    elif isinstance(raw, str):
        try:
            num = float(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a number, got {raw[:40]!r}") from None
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
            raise ValueError(f"{text[:40]!r} is not a date in {expected}") from None
    else:
        raise ValueError(f"expected a date, got {type(raw).__name__}")
    return DateValue.of(day, var.format, var.locale)


def _media(var: Variable, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a file path, got {type(raw).__name__}")
    return raw.strip()


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
    raise ValueError(f"expected a boolean (true/false, yes/no, 1/0), got {str(raw)[:40]!r}")


def _enum(var: Variable, raw: Any) -> str:
    allowed = var.values or []
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else None
    if text is not None:
        if text in allowed:
            return text
        for value in allowed:  # a CRM may send 'Pro' for 'pro'
            if value.lower() == text.lower():
                return value
    raise ValueError(f"{str(raw)[:40]!r} is not one of {allowed}")


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
}


def coerce(var: Variable, raw: Any) -> Any:
    """Coerce a non-blank raw value to `var`'s type; ValueError says why it cannot."""
    return _COERCE[var.type](var, raw)


def to_json(value: Any) -> Any:
    """The JSON shape of a coerced value (for JMESPath conditions and cache keys)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
