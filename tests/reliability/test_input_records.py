"""Bad input, part 1: data records bound to a template.

Property: whatever a record holds — any unicode, megabytes, NaN and infinities, 10**400,
nesting 10,000 levels deep, the wrong type — binding gives a plan or a DataError (an AssetError
for a media file) whose field names the variable at fault. Never another exception.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import AssetError, DataError
from chalicelib.template.bind import bind, bind_values
from chalicelib.template.library import LoadedTemplate, check_template, load_template
from chalicelib.template.model import Variable
from chalicelib.template.values import coerce
from tests.conftest import Campaign
from tests.reliability.hostile import MB, deep, hostile_values, json_values, texts

# One variable of every type, each interpolated or used on its own, so that a failure can be
# pinned on exactly one variable.
EVERY_TYPE = """\
id: every_type
canvas: {width: 160, height: 96, fps: 10}
variables:
  t: {type: text, max_length: 40}
  n: {type: number, min: -1000, max: 1000}
  d: {type: date, format: long, locale: fr_FR}
  di: {type: date, input_format: "%d/%m/%Y"}
  img: {type: image}
  vid: {type: video}
  aud: {type: audio}
  c: {type: color}
  b: {type: boolean, default: false}
  e: {type: enum, values: [basic, pro], default: basic}
  name: {type: text, required: true}
scenes:
  - id: main
    duration: 1
    layers:
      - {type: text, text: "Hi {{ name }}"}
      - {type: text, text: "{{ t }}", when: t}
      - {type: text, text: "{{ n | number }}", when: "n != null"}
      - {type: text, text: "{{ d }}", when: d}
      - {type: text, text: "{{ di | date('short') }}", when: di}
      - {type: image, src: "{{ img }}", when: img}
      - {type: video, src: "{{ vid }}", when: vid}
      - {type: audio, src: "{{ aud }}", when: aud}
      - {type: shape, color: "{{ c }}", when: c}
  - id: pro
    duration: 1
    when: "e == 'pro' && b"
    background: {color: "{{ c or '#123456' }}"}
"""
VARIABLES = ["t", "n", "d", "di", "img", "vid", "aud", "c", "b", "e", "name"]

# Megabyte values make hypothesis warn about the size of their repr: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@pytest.fixture
def every_type(campaign: Campaign) -> LoadedTemplate:
    lt = load_template(campaign.write_template(EVERY_TYPE))
    assert check_template(lt) == []
    return lt


def _bind_or_blame(lt: LoadedTemplate, record: Any) -> set[str]:
    """Bind; return the variables blamed (empty when the plan was made)."""
    try:
        bind(lt, record)
    except (DataError, AssetError) as exc:
        assert exc.field, f"no field in {exc!r}"
        assert all(p.field for p in exc.problems)
        assert exc.field == exc.problems[0].field
        return {p.field for p in exc.problems}
    return set()


@given(name=st.sampled_from(VARIABLES), value=hostile_values)
def test_a_bad_value_is_blamed_on_its_variable(
    every_type: LoadedTemplate, name: str, value: Any
) -> None:
    # GIVEN a valid record but for one variable, which holds anything at all
    record = {"name": "Ada", name: value}
    # WHEN it is bound THEN the plan is made, or only that variable is blamed
    assert _bind_or_blame(every_type, record) <= {name}


@given(record=st.dictionaries(st.sampled_from(VARIABLES) | texts, hostile_values, max_size=6))
def test_every_field_of_a_random_record_is_checked(
    every_type: LoadedTemplate, record: dict[str, Any]
) -> None:
    blamed = _bind_or_blame(every_type, record)
    assert blamed <= set(VARIABLES)
    assert blamed <= set(record) | {"name"}  # only fields it has, or the required one


@given(record=hostile_values)
@settings(max_examples=30)
def test_a_record_that_is_not_an_object_is_refused(every_type: LoadedTemplate, record: Any) -> None:
    if isinstance(record, dict):
        return
    with pytest.raises(DataError):
        bind_values(every_type, record)


# Each variable type on its own, with the options that change how a value is read.
VARIABLE_SPECS = [
    {"type": "text"},
    {"type": "text", "max_length": 3},
    {"type": "number"},
    {"type": "number", "min": 0, "max": 1},
    {"type": "date"},
    {"type": "date", "input_format": "%d/%m/%Y", "format": "EEEE d MMMM y", "locale": "de_DE"},
    {"type": "image"},
    {"type": "video"},
    {"type": "audio"},
    {"type": "color"},
    {"type": "boolean"},
    {"type": "enum", "values": ["a", "B", "ü"]},
]


@given(spec=st.sampled_from(VARIABLE_SPECS), raw=hostile_values)
def test_coercion_gives_a_value_or_a_reason(spec: dict[str, Any], raw: Any) -> None:
    var = Variable.model_validate(spec)
    try:
        value = coerce(var, raw)
    except ValueError as exc:
        assert 0 < len(str(exc)) < 500  # a reason, not a dump of the value
        return
    str(value)  # a date prints itself in its format and locale


# ── the bugs these properties found, as plain examples ─────────────────────────────────────


@pytest.mark.parametrize("raw", [10**400, -(10**400)])
def test_an_int_beyond_float_range_is_not_a_number(every_type: LoadedTemplate, raw: int) -> None:
    # was: OverflowError (int too large to convert to float)
    assert _bind_or_blame(every_type, {"name": "Ada", "n": raw}) == {"n"}


@pytest.mark.parametrize("name", ["b", "e", "t", "n", "c", "d"])
def test_a_value_nested_10000_deep_is_refused(every_type: LoadedTemplate, name: str) -> None:
    # was: RecursionError, printing the value in the error message (booleans, enums)
    for kind in (list, dict):
        assert _bind_or_blame(every_type, {"name": "Ada", name: deep(kind, 10_000)}) == {name}


@pytest.mark.parametrize("raw", ["x" * MB, "assets/\x00red.png", "a" * 300 + "/" + "b" * 300])
def test_a_media_path_too_long_or_with_a_nul_is_refused(
    every_type: LoadedTemplate, raw: str
) -> None:
    # was: OSError (file name too long) from the file system, for a path from the data
    assert _bind_or_blame(every_type, {"name": "Ada", "img": raw}) == {"img"}


def test_a_text_of_ten_thousand_digits_is_refused() -> None:
    # was: ValueError from str() on an int over 4,300 digits, as a confusing message
    with pytest.raises(ValueError, match="too long"):
        coerce(Variable(type="text"), 10**10_000)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["zzzz", "A", "B"])
def test_a_date_format_that_needs_a_time_is_refused_by_the_template(fmt: str) -> None:
    # was: AttributeError when the first record was bound ('datetime.date' has no 'tzname')
    with pytest.raises(ValueError, match="not a CLDR date format"):
        Variable.model_validate({"type": "date", "format": fmt})


def test_good_values_still_bind(every_type: LoadedTemplate) -> None:
    record = {
        "name": "Zoë",
        "t": "שלום",
        "n": "12.5",
        "d": "2026-03-01",
        "di": "01/03/2026",
        "img": "assets/red.png",
        "c": "#ABC",
        "b": "yes",
        "e": "Pro",
    }
    plan = bind(every_type, record)
    assert [s.id for s in plan.scenes] == ["main", "pro"]
    assert plan.record["d"] == dt.date(2026, 3, 1).isoformat()


@given(record=st.dictionaries(texts, json_values, max_size=5))
@settings(max_examples=20)
def test_fields_no_variable_uses_are_ignored(every_type: LoadedTemplate, record: dict) -> None:
    extra = {k: v for k, v in record.items() if k not in VARIABLES}
    assert _bind_or_blame(every_type, {**extra, "name": "Ada"}) == set()
