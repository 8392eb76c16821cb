"""Field mappings (pure): source columns of a CSV/JSONL/CRM record → template variables.

```yaml
id: Email                       # the column that identifies the recipient (default recipient_id)
fields:
  first_name: {from: FirstName, transform: [trim, title]}
  segment:    {from: Tier, transform: [lower], default: starter}
  renewal_date: {from: Renewal, transform: [{date: "%m/%d/%Y"}]}
  monthly_fee:  {from: Fee, transform: [number]}
  fee_label:    {from: Fee, transform: [number, {currency: EUR, locale: fr_FR}]}
consent: {from: OptIn}          # the recipient's tracking consent: yes/no, true/false, 1/0
```
Columns that are not mapped pass through under their own name (CRM records carry many; the
template ignores what it does not use) unless `passthrough: false`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from chalicelib.errors import DataError, Problem, TemplateError
from chalicelib.template.expr import check_locale, format_money, format_number
from chalicelib.template.library import pydantic_problems, read_document
from chalicelib.template.model import Strict
from chalicelib.tracking.consent import CONSENT_FIELD, parse_consent


class DateTransform(Strict):
    date: str = Field(description="strptime format of the source, e.g. %m/%d/%Y; output ISO")


def _locale(v: str) -> str:
    return check_locale(v)  # an unknown locale fails the mapping, not each row


Locale = Annotated[str, AfterValidator(_locale)]


class SplitTransform(Strict):
    split: str = Field(min_length=1, max_length=5, description="separator: '12;15;9' → a list")


class CurrencyTransform(Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    locale: Locale = "en_US"


class NumberFormatTransform(Strict):
    decimals: int = Field(2, ge=0, le=10)
    locale: Locale = "en_US"


SimpleTransform = Literal["trim", "lower", "upper", "title", "number"]


SIMPLE = ("trim", "lower", "upper", "title", "number")
KEYED = ("date", "currency", "number_format", "split")


def _expand(v: Any) -> Any:
    # One clear error for a typo, rather than one per member of the union.
    if isinstance(v, str):
        if v == "date":  # `date` alone reads ISO dates
            return {"date": "%Y-%m-%d"}
        if v not in SIMPLE:
            raise ValueError(f"unknown transform {v[:40]!r}; known: {', '.join(SIMPLE + KEYED)}")
        return v
    if isinstance(v, dict):
        if "number_format" in v:
            options = v["number_format"]
            if options is None:
                return {}
            if not isinstance(options, dict):
                raise ValueError("number_format takes an object, e.g. {decimals: 2, locale: fr}")
            return options
        if not any(k in v for k in KEYED):
            raise ValueError(f"a transform object has one of the keys {', '.join(KEYED)}")
        return v
    raise ValueError("a transform is a name (trim, title, …) or an object ({date: '%d/%m/%Y'})")


def _transform_tag(v: Any) -> str:
    # Which member to check against, so that a bad keyed transform gets its own errors rather
    # than one per member of the union.
    if isinstance(v, str):
        return "name"
    if isinstance(v, DateTransform) or (isinstance(v, dict) and "date" in v):
        return "date"
    if isinstance(v, CurrencyTransform) or (isinstance(v, dict) and "currency" in v):
        return "currency"
    if isinstance(v, SplitTransform) or (isinstance(v, dict) and "split" in v):
        return "split"
    return "number_format"


Transform = Annotated[
    Annotated[SimpleTransform, Tag("name")]
    | Annotated[DateTransform, Tag("date")]
    | Annotated[CurrencyTransform, Tag("currency")]
    | Annotated[NumberFormatTransform, Tag("number_format")]
    | Annotated[SplitTransform, Tag("split")],
    Discriminator(_transform_tag),
    BeforeValidator(_expand),
]


class FieldMap(Strict):
    # Dumped as `from`, like it is written, so a stored mapping reads back.
    model_config = Strict.model_config | {"serialize_by_alias": True}

    from_: str | list[str] | None = Field(
        None,
        alias="from",
        description="source column (default: same name), or several columns made one list",
    )
    default: Any = None
    transform: list[Transform] = Field(default_factory=list)


class FieldMapping(Strict):
    """A field mapping, validated like templates."""

    id: str = Field("recipient_id", description="source column holding the recipient id")
    fields: dict[str, FieldMap] = Field(default_factory=dict)
    passthrough: bool = True
    consent: FieldMap | None = Field(
        None,
        description="the column holding the recipient's tracking consent (yes/no, true/false, "
        "1/0): the record's `consent` becomes true or false; anything else is invalid_data",
    )


_NUMBER_JUNK = re.compile(r"[^\d.,\-+eE]")


def _to_number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        try:
            num = float(value)
        except OverflowError:  # an int beyond a float's range
            raise ValueError("must be a finite number (this one is too large)") from None
    elif not isinstance(value, str):
        raise ValueError(f"expected a number, got a {type(value).__name__}")
    else:
        text = _NUMBER_JUNK.sub("", value)  # currency signs, spaces, letters
        if text.count(",") and text.count("."):
            text = text.replace(",", "")  # 1,234.50
        elif text.count(",") == 1 and len(text.split(",")[1]) != 3:
            text = text.replace(",", ".")  # 12,5 (decimal comma)
        else:
            text = text.replace(",", "")
        try:
            num = float(text)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a number") from None
    if not math.isfinite(num):
        raise ValueError("must be a finite number")
    return int(num) if num.is_integer() and abs(num) < 2**53 else num


MAX_LIST = 1000  # items a split or a list of columns may make


def _apply(transform: Transform, value: Any) -> Any:
    if isinstance(value, list):  # after a split, or from several columns: item by item
        if len(value) > MAX_LIST:
            raise ValueError(f"has {len(value)} items; the limit is {MAX_LIST}")
        if any(isinstance(item, list | dict) for item in value):
            raise ValueError("a list of lists or objects cannot be transformed")
        return [_apply(transform, item) for item in value]
    if isinstance(transform, SplitTransform):
        parts = [p.strip() for p in str(value).split(transform.split)]
        if len(parts) > MAX_LIST:
            raise ValueError(f"splits into {len(parts)} items; the limit is {MAX_LIST}")
        return [p for p in parts if p]
    if isinstance(transform, DateTransform):
        text = str(value).strip()
        try:
            return dt.datetime.strptime(text, transform.date).date().isoformat()
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a date in {transform.date}") from None
    if isinstance(transform, CurrencyTransform):
        return format_money(_to_number(value), transform.currency, transform.locale)
    if isinstance(transform, NumberFormatTransform):
        return format_number(_to_number(value), transform.decimals, transform.locale)
    if transform == "number":
        return _to_number(value)
    text = str(value)
    if transform == "trim":
        return text.strip()
    if transform == "lower":
        return text.lower()
    if transform == "upper":
        return text.upper()
    return text.title()  # "title"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def apply_mapping(mapping: FieldMapping | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """Map one source row to a record; DataError names the source column and the reason."""
    if mapping is None:
        return {k: v for k, v in row.items() if not _blank(v)}
    record: dict[str, Any] = {}
    if mapping.passthrough:
        record.update({k: v for k, v in row.items() if not _blank(v)})
    problems = []
    for name, spec in mapping.fields.items():
        source = spec.from_ or name
        if isinstance(source, list):  # several columns, one list (blank cells left out)
            value = [row.get(c) for c in source if not _blank(row.get(c))] or None
            source = ", ".join(source)
        else:
            value = row.get(source)
        if _blank(value):
            record.pop(name, None)
            if spec.default is not None:
                record[name] = spec.default
            continue
        try:
            for transform in spec.transform:
                value = _apply(transform, value)
        except ValueError as exc:
            problem = Problem(source, str(exc))
            if problem not in problems:  # two fields read from one bad column: say it once
                problems.append(problem)
            continue
        record[name] = value
    if mapping.consent is not None:
        _map_consent(mapping.consent, row, record, problems)
    if problems:
        raise DataError("; ".join(map(str, problems)), field=problems[0].field, problems=problems)
    return record


def _map_consent(
    spec: FieldMap, row: Mapping[str, Any], record: dict[str, Any], problems: list[Problem]
) -> None:
    if isinstance(spec.from_, list):
        problems.append(Problem("consent.from", "consent is read from one column"))
        return
    source = spec.from_ or CONSENT_FIELD
    value = row.get(source)
    if _blank(value):
        value = spec.default
    try:
        for transform in spec.transform:
            value = _apply(transform, value)
        answer = parse_consent(value)
    except ValueError as exc:
        problems.append(Problem(source, str(exc)))
        return
    if source != CONSENT_FIELD:
        record.pop(source, None)  # one place holds the answer: the record's `consent`
    if answer is None:
        record.pop(CONSENT_FIELD, None)
    else:
        record[CONSENT_FIELD] = answer


def recipient_id(mapping: FieldMapping | None, row: Mapping[str, Any], fallback: str) -> str:
    """The recipient's id from the mapping's id column, or `fallback` (e.g. 'row-7')."""
    column = mapping.id if mapping else "recipient_id"
    value = row.get(column)
    return fallback if _blank(value) else str(value).strip()


def load_mapping(path: Path | str) -> FieldMapping:
    """Read and validate a mapping file (YAML or JSON); TemplateError lists every problem."""
    data = read_document(Path(path))
    if not isinstance(data, dict):
        raise TemplateError("a mapping is a YAML/JSON object (fields: …) at the top level")
    try:
        return FieldMapping.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc)
        raise TemplateError(
            f"{len(problems)} problem(s) in the mapping", problems=problems
        ) from exc
