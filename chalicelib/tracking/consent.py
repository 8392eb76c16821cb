"""Consent and tracking modes (pure): whether one view of a page is tracked identified,
anonymously or not at all, from the campaign's settings, the recipient's recorded answer, the
page's banner and the browser's privacy signals.

The rules, in order:
1. A campaign in mode `off` tracks nothing; in mode `anonymous`, every view is anonymous.
2. `Sec-GPC: 1` makes an identified view anonymous, and so does `DNT: 1` where the campaign
   honours it (`tracking.honour_dnt`). The banner is not shown: the browser has answered.
3. A recorded "no" (the record's `consent`, from the mapping) makes the view anonymous and is
   not asked again; a recorded "yes" makes it identified.
4. With no recorded answer: a page that asks (`page.consent: ask`) is anonymous until the viewer
   accepts; otherwise the campaign's `tracking.require_consent` decides (true: anonymous).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from chalicelib.errors import DataError
from chalicelib.template.model import Template, TrackingMode

CONSENT_FIELD = "consent"  # where a record holds its recipient's answer (the mapping puts it)

_YES = frozenset({"yes", "y", "true", "t", "1", "on", "opt-in", "opt_in", "granted", "accepted"})
_NO = frozenset({"no", "n", "false", "f", "0", "off", "opt-out", "opt_out", "denied", "refused"})


def parse_consent(value: Any) -> bool | None:
    """A boolean-like value → True/False; None or blank → None (no answer recorded).
    ValueError for anything else (the caller names the field)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in _YES:
            return True
        if text in _NO:
            return False
        raise ValueError(f"{value[:40]!r} is not a yes/no value (yes, no, true, false, 1, 0)")
    raise ValueError(f"expected a yes/no value, got a {type(value).__name__}")


def checked_consent(record: Mapping[str, Any]) -> bool | None:
    """The answer a record brings (its `consent`); DataError (invalid_data) naming the field
    when it is not a yes/no value."""
    try:
        return parse_consent(record.get(CONSENT_FIELD))
    except ValueError as exc:
        raise DataError(f"{CONSENT_FIELD}: {exc}", field=CONSENT_FIELD) from None


def recorded_consent(record: Mapping[str, Any] | None) -> bool | None:
    """The answer a stored record holds (checked when it was stored)."""
    if not record:
        return None
    try:
        return parse_consent(record.get(CONSENT_FIELD))
    except ValueError:
        return False  # cannot happen for a checked record; never track on a doubt


class ViewMode(StrEnum):
    """How one view is tracked; `ask` is anonymous until the viewer accepts the banner."""

    identified = "identified"
    anonymous = "anonymous"
    ask = "ask"
    off = "off"


def view_mode(
    template: Template,
    consent: bool | None,
    *,
    gpc: bool = False,
    dnt: bool = False,
) -> ViewMode:
    """The mode of a view (rules 1–4 of this module). `consent` is the recipient's answer:
    recorded, or given on the page."""
    tracking = template.tracking
    if tracking.mode is TrackingMode.off:
        return ViewMode.off
    if tracking.mode is TrackingMode.anonymous:
        return ViewMode.anonymous
    if gpc or (dnt and tracking.honour_dnt):
        return ViewMode.anonymous
    if consent is not None:
        return ViewMode.identified if consent else ViewMode.anonymous
    if template.page.consent == "ask":
        return ViewMode.ask
    return ViewMode.anonymous if tracking.require_consent else ViewMode.identified


def consenting(template: Template, consent: bool | None) -> bool:
    """True when the recipient may be tracked identified (signals aside): whether their row
    appears in the analytics and their behaviour may reach a CRM."""
    return view_mode(template, consent) is ViewMode.identified


def signal(headers: Mapping[str, str], name: str) -> bool:
    """True when a privacy header (Sec-GPC, DNT) says 1."""
    value = headers.get(name) or headers.get(name.lower()) or ""
    return value.strip() == "1"
