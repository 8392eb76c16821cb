"""Bad input, part 2: templates and field mappings.

Property: a template (or mapping) document mutated at random — wrong types at random paths,
missing and extra keys, huge strings, NaN durations, deep nesting, unicode ids, YAML specials
(alias bombs, recursive aliases, `!!python/object`, duplicate keys) — is either valid or refused
with a TemplateError whose problems name a field path (or the line of a syntax error). Never
another exception; `reel validate` exits 1 with the problems, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chalicelib.cli import app
from chalicelib.data.mapping import FieldMapping, apply_mapping, load_mapping
from chalicelib.errors import DataError, Problem, TemplateError
from chalicelib.template.bind import bind
from chalicelib.template.library import (
    check_template,
    load_template_data,
    parse_document,
    validate_template_file,
)
from tests.conftest import BASE_TEMPLATE, Campaign
from tests.reliability.hostile import (
    BILLION_LAUGHS,
    YAML_SPECIALS,
    deep,
    deeps,
    huge_texts,
    json_values,
    mutations,
    odd_objects,
    texts,
)

BASE = yaml.safe_load(BASE_TEMPLATE)
values = st.one_of(
    json_values,
    json_values,
    huge_texts,
    deeps,
    odd_objects,
    st.sampled_from([float("nan"), float("inf"), -0.0, 10**400, "é\u200b\u202eid", "x" * 5000]),
)
runner = CliRunner()

# Megabyte values make hypothesis warn about the size of their repr: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def _dump(doc: Any, as_json: bool = False) -> str | None:
    """The document as JSON or YAML text; None when that format cannot represent it."""
    try:
        if as_json:
            return json.dumps(doc)
        return str(yaml.dump(doc, Dumper=yaml.CSafeDumper, allow_unicode=True))
    except (TypeError, ValueError, RecursionError, yaml.YAMLError):
        return None


def _named(problems: list[Problem]) -> None:
    """Every problem says where: a field path, or the line of a syntax error."""
    assert problems
    for p in problems:
        assert p.field or "line" in p.message or "top level" in p.message, p
        assert len(p.message) < 2000, "a reason, not a dump of the value"


def _check(doc: Any, root: Path) -> list[Problem]:
    try:
        lt = load_template_data(doc, root, strict=False)
    except TemplateError as exc:
        _named(exc.problems)
        return exc.problems
    problems = lt.problems + check_template(lt)
    if problems:
        _named(problems)
    return problems


@given(doc=mutations(BASE, values))
def test_a_mutated_template_is_valid_or_refused_with_paths(campaign: Campaign, doc: Any) -> None:
    _check(doc, campaign.root)


@given(doc=mutations(BASE, values), as_json=st.booleans())
@settings(max_examples=40)
def test_a_mutated_template_file_is_valid_or_refused_with_paths(
    campaign: Campaign, doc: Any, as_json: bool
) -> None:
    # Through the file: what it parses to is what the loader checks.
    text = _dump(doc, as_json)
    if text is None:
        return  # not representable in that format: the in-memory property covers it
    path = campaign.root / ("template.json" if as_json else "template.yaml")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    problems = validate_template_file(path)
    if problems:
        _named(problems)


@given(
    special=st.sampled_from(YAML_SPECIALS),
    where=st.sampled_from(["top", "variables", "scene", "layer", "default"]),
)
@settings(max_examples=50)
def test_yaml_specials_are_refused_with_a_line_or_a_path(
    campaign: Campaign, special: str, where: str
) -> None:
    indent = {"top": "", "variables": "  ", "scene": "    ", "layer": "      ", "default": "    "}
    text = BASE_TEMPLATE
    snippet = "\n".join(indent[where] + line for line in special.splitlines())
    anchor = {
        "top": "scenes:\n",
        "variables": "variables:\n",
        "scene": "  - id: greeting\n",
        "layer": "    layers:\n",
        "default": "  plan: {type: enum, values: [basic, pro], default: basic}\n",
    }[where]
    if where == "default":
        plan = "  plan:\n    type: enum\n    values: [basic, pro]\n"
        text = text.replace(anchor, plan + snippet + "\n")
    else:
        text = text.replace(anchor, anchor + snippet + "\n", 1)
    campaign.template.write_bytes(text.encode("utf-8", "surrogatepass"))
    problems = validate_template_file(campaign.template)
    if problems:
        _named(problems)


@given(doc=mutations(BASE, st.one_of(json_values, huge_texts)))
@settings(max_examples=15)
def test_reel_validate_exits_1_naming_the_field(campaign: Campaign, doc: Any) -> None:
    text = _dump(doc)
    if text is None:
        return
    campaign.template.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = runner.invoke(app, ["validate", str(campaign.template)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        assert "problem(s)" in result.stderr and "✗ " in result.stderr
    assert "Traceback" not in result.output


# ── mappings ───────────────────────────────────────────────────────────────────────────────

MAPPING = {
    "id": "Email",
    "fields": {
        "first_name": {"from": "FirstName", "transform": ["trim", "title"]},
        "segment": {"from": "Tier", "transform": ["lower"], "default": "starter"},
        "renewal": {"from": "Renewal", "transform": [{"date": "%m/%d/%Y"}]},
        "fee": {"from": "Fee", "transform": ["number"]},
        "fee_label": {"from": "Fee", "transform": ["number", {"currency": "EUR", "locale": "fr"}]},
        "count": {"from": "Count", "transform": [{"number_format": {"decimals": 1}}]},
    },
}
COLUMNS = ["Email", "FirstName", "Tier", "Renewal", "Fee", "Count"]


@given(doc=mutations(MAPPING, values), as_json=st.booleans())
@settings(max_examples=50)
def test_a_mutated_mapping_file_is_valid_or_refused_with_paths(
    tmp_path: Path, doc: Any, as_json: bool
) -> None:
    text = _dump(doc, as_json)
    if text is None:
        return
    path = tmp_path / ("mapping.json" if as_json else "mapping.yaml")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_mapping(path)
    except TemplateError as exc:
        _named(exc.problems)


@given(row=st.dictionaries(st.sampled_from(COLUMNS) | texts, values, max_size=7))
def test_a_mapping_blames_the_source_column(row: dict[str, Any]) -> None:
    mapping = FieldMapping.model_validate(MAPPING)
    try:
        apply_mapping(mapping, row)
    except DataError as exc:
        assert {p.field for p in exc.problems} <= set(row)
        assert all(len(p.message) < 2000 for p in exc.problems)


# ── the bugs these properties found, as plain examples ─────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: 2026-02-30", "day is out of range"),  # was: ValueError from PyYAML
        ("a: !!bool maybe", "cannot read 'maybe'"),  # was: KeyError
        ("a: !!timestamp 9999999-01-01", "cannot read"),  # was: AttributeError
        (BILLION_LAUGHS, "expands to over"),  # was: exponential time and memory downstream
        ("a: &a [*a]", "refers to itself"),  # was: a structure containing itself
        ("a: 1\na: 2", "duplicate key 'a'"),  # was: the first silently lost
        ("x: " + "[" * 5000 + "]" * 5000, "nest"),  # was: RecursionError
        ("a: !!binary aGk=", "not JSON data"),  # was: bytes, which JSON cannot hold
    ],
)
def test_yaml_that_crashed_the_loader(text: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason):
        parse_document(text)


def test_json_nan_and_duplicate_keys_are_refused() -> None:
    with pytest.raises(TemplateError, match="NaN is not a JSON number") as info:
        parse_document('{"scenes": [{"duration": NaN}]}', ".json")
    assert info.value.field == "scenes[0].duration"
    with pytest.raises(TemplateError, match="duplicate key") as info:
        parse_document('{"id": "a", "id": "b"}', ".json")
    assert info.value.field == "id"


def test_a_template_file_that_is_not_utf8_is_refused(campaign: Campaign) -> None:
    # was: UnicodeDecodeError out of `reel validate`
    campaign.template.write_bytes(BASE_TEMPLATE.encode().replace(b"Hi", b"H\xe9"))
    [problem] = validate_template_file(campaign.template)
    assert "not valid UTF-8 at line" in problem.message


def test_a_utf16_template_file_is_read(campaign: Campaign) -> None:
    campaign.template.write_bytes(BASE_TEMPLATE.encode("utf-16"))  # with its BOM
    assert validate_template_file(campaign.template) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"when": "(" * 5000 + "a" + ")" * 5000}, "scenes[1].when"),  # was: RecursionError
        (
            {"layers": [{"type": "text", "text": "{{ " + "(" * 5000 + "x" + ")" * 5000 + " }}"}]},
            "scenes[1].layers[0].text",
        ),  # was: RecursionError in jinja's parser
    ],
)
def test_expressions_nested_too_deeply_are_refused(
    campaign: Campaign, change: dict[str, Any], field: str
) -> None:
    doc = yaml.safe_load(BASE_TEMPLATE)
    doc["scenes"][1].update(change)
    problems = _check(doc, campaign.root)
    assert any(p.field == field and "nested too deeply" in p.message for p in problems)


@pytest.mark.parametrize(
    "text",
    ["{{ 'x' * 10**9 }}", "{{ [0] * 10**9 }}", "{{ 9 ** 9999999 }}", "{{ 7 | number(10**6) }}"],
)
def test_an_expression_cannot_make_a_gigabyte_or_hang(campaign: Campaign, text: str) -> None:
    # was: a gigabyte string, or minutes of CPU, binding the template (the API's request thread)
    doc = yaml.safe_load(BASE_TEMPLATE)
    doc["scenes"][1]["layers"][0]["text"] = text
    lt = load_template_data(doc, campaign.root)
    assert check_template(lt) == []  # it parses: only evaluating it would be too much
    with pytest.raises((TemplateError, DataError)) as info:
        bind(lt, {"first_name": "Ada"})
    assert info.value.field in ("scenes[1].layers[0].text", "first_name")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"library": "a" * 5000}, "library"),  # was: OSError, file name too long
        ({"library": "/etc"}, "library"),  # was: scenes read from outside the campaign
        ({"library": "../.."}, "library"),
        ({"scenes": [{"use": "a" * 5000}]}, "scenes[0].use"),  # was: OSError
        ({"id": "a" * 5000}, "id"),
    ],
)
def test_library_paths_and_ids_stay_sane(
    campaign: Campaign, change: dict[str, Any], field: str
) -> None:
    doc = {**yaml.safe_load(BASE_TEMPLATE), **change}
    assert field in {p.field for p in _check(doc, campaign.root)}


def test_a_strange_default_is_refused_not_crashed_on(campaign: Campaign) -> None:
    doc = yaml.safe_load(BASE_TEMPLATE)
    doc["variables"]["plan"]["default"] = deep(list, 10_000)  # was: RecursionError
    fields = {p.field for p in _check(doc, campaign.root)}
    assert any(f.startswith("variables.plan.default") for f in fields)
    doc["variables"]["plan"]["default"] = "basic"
    doc["variables"]["n"] = {"type": "number", "default": 10**400}  # was: OverflowError
    assert "variables.n.default" in {p.field for p in _check(doc, campaign.root)}


def test_a_mapping_with_an_unknown_locale_is_refused_at_load(tmp_path: Path) -> None:
    # was: babel's UnknownLocaleError (not a ValueError) out of every row's mapping
    path = tmp_path / "mapping.yaml"
    path.write_text("fields:\n  fee: {transform: [number, {currency: EUR, locale: xx_XX}]}\n")
    with pytest.raises(TemplateError, match="unknown locale") as info:
        load_mapping(path)
    assert info.value.problems[0].field.startswith("fields.fee.transform[1]")


def test_a_mapping_number_from_a_huge_int_is_a_data_error() -> None:
    # was: OverflowError (int too large to convert to float)
    mapping = FieldMapping.model_validate({"fields": {"fee": {"transform": ["number"]}}})
    with pytest.raises(DataError) as info:
        apply_mapping(mapping, {"fee": 10**400})
    assert info.value.field == "fee"


def test_reel_validate_on_a_billion_laughs_in_a_real_process(campaign: Campaign) -> None:
    campaign.template.write_text(BASE_TEMPLATE.replace("scenes:\n", BILLION_LAUGHS + "\nscenes:\n"))
    proc = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "validate", str(campaign.template)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "expands to over" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
