"""Field mappings and the CSV/JSONL readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.data.mapping import FieldMapping, apply_mapping, load_mapping, recipient_id
from chalicelib.data.readers import read_rows
from chalicelib.errors import DataError, TemplateError

MAPPING = FieldMapping.model_validate(
    {
        "id": "Email",
        "fields": {
            "first_name": {"from": "FirstName", "transform": ["trim", "title"]},
            "segment": {"from": "Tier", "transform": ["lower"], "default": "starter"},
            "renewal_date": {"from": "Renewal", "transform": [{"date": "%m/%d/%Y"}]},
            "monthly_fee": {"from": "Fee", "transform": ["number"]},
            "fee_label": {"from": "Fee", "transform": ["number", {"currency": "EUR"}]},
        },
    }
)


def test_mapping_renames_transforms_and_defaults() -> None:
    row = {
        "Email": "ann@example.com",
        "FirstName": "  mary ann ",
        "Tier": "",
        "Renewal": "03/01/2027",
        "Fee": "$1,234.50",
        "Owner": "x",
    }
    assert apply_mapping(MAPPING, row) == {
        "Email": "ann@example.com",
        "FirstName": "  mary ann ",
        "Renewal": "03/01/2027",
        "Fee": "$1,234.50",
        "Owner": "x",
        "first_name": "Mary Ann",
        "segment": "starter",
        "renewal_date": "2027-03-01",
        "monthly_fee": 1234.5,
        "fee_label": "€1,234.50",
    }
    assert recipient_id(MAPPING, row, "line-2") == "ann@example.com"
    assert recipient_id(MAPPING, {}, "line-2") == "line-2"


def test_bad_values_name_the_source_column() -> None:
    with pytest.raises(DataError) as info:
        apply_mapping(MAPPING, {"Renewal": "2027-13-45", "Fee": "lots"})
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("Renewal", "'2027-13-45' is not a date in %m/%d/%Y"),
        ("Fee", "'lots' is not a number"),
    ]


@pytest.mark.parametrize(
    ("raw", "number"), [("12,5", 12.5), ("1,234", 1234), ("€ 9.99", 9.99), ("-3", -3), (7, 7)]
)
def test_number_parsing(raw: object, number: float) -> None:
    mapping = FieldMapping.model_validate({"fields": {"n": {"transform": ["number"]}}})
    assert apply_mapping(mapping, {"n": raw})["n"] == number


def test_mapping_files_are_validated_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("fields:\n  first_name: {from: A, transform: [titel]}\n  x: {frm: B}\n")
    with pytest.raises(TemplateError) as info:
        load_mapping(path)
    found = {p.field: p.message for p in info.value.problems}
    assert found["fields.first_name.transform[0]"].startswith("unknown transform 'titel'")
    assert found["fields.x.frm"] == "Extra inputs are not permitted"


def test_csv_rows_with_bom_crlf_and_a_ragged_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffrecipient_id,first_name\r\n1,Zoë\r\n2,Ann,extra\r\n3,\r\n".encode())
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [2, 3, 4]
    assert rows[0].fields == {"recipient_id": "1", "first_name": "Zoë"}
    assert rows[1].fields is None and rows[1].error is not None
    assert "more cells than the header" in rows[1].error.message
    assert rows[2].fields == {"recipient_id": "3"}


def test_a_row_that_is_not_utf8_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"recipient_id,first_name\n1,Ann\n2,Zo\xeb\n3,Bob\n")
    rows = list(read_rows(path))
    assert [r.fields for r in rows] == [
        {"recipient_id": "1", "first_name": "Ann"},
        None,
        {"recipient_id": "3", "first_name": "Bob"},
    ]
    assert rows[1].error is not None and rows[1].error.field == "first_name"
    assert "not valid UTF-8" in rows[1].error.message


def test_jsonl_bad_lines_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n{oops\n[1, 2]\n{"a": 2}\n')
    rows = list(read_rows(path))
    assert [(r.line, r.fields) for r in rows] == [
        (1, {"a": 1}),
        (3, None),
        (4, None),
        (5, {"a": 2}),
    ]
    assert rows[1].error is not None and "invalid JSON" in rows[1].error.message


def test_unknown_data_formats(tmp_path: Path) -> None:
    (tmp_path / "r.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"data files are \.csv or \.jsonl"):
        read_rows(tmp_path / "r.xlsx")


def test_a_split_column_becomes_a_list_of_numbers() -> None:
    mapping = FieldMapping.model_validate(
        {"fields": {"usage": {"from": "Usage", "transform": [{"split": ";"}, "number"]}}}
    )
    assert apply_mapping(mapping, {"Usage": " 12; 15.5 ;;9 "})["usage"] == [12, 15.5, 9]


def test_several_columns_make_one_list_and_a_bad_cell_names_them() -> None:
    mapping = FieldMapping.model_validate(
        {"fields": {"usage": {"from": ["m1", "m2", "m3"], "transform": ["number"]}}}
    )
    assert apply_mapping(mapping, {"m1": "3", "m2": "", "m3": "4"})["usage"] == [3, 4]
    with pytest.raises(DataError) as err:
        apply_mapping(mapping, {"m1": "3", "m2": "lots", "m3": "4"})
    assert err.value.field == "m1, m2, m3" and "'lots' is not a number" in str(err.value)


def test_a_nested_list_is_refused_not_recursed_into() -> None:
    mapping = FieldMapping.model_validate({"fields": {"usage": {"transform": ["number"]}}})
    nested: list[object] = [1]
    for _ in range(2000):
        nested = [nested]
    with pytest.raises(DataError, match="list of lists"):
        apply_mapping(mapping, {"usage": nested})
    assert apply_mapping(mapping, {"usage": ["1", 2]})["usage"] == [1, 2]
