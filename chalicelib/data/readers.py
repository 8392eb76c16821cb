"""Reading recipient rows from CSV and JSONL files, one row at a time; a bad row fails alone."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.errors import DataError

csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class Row:
    """One source row: its 1-based line number, and its fields or the reason it is unreadable."""

    line: int
    fields: dict[str, Any] | None
    error: DataError | None = None


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig", errors="strict") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return
        try:
            for row in reader:
                line = reader.line_num
                extra = row.pop(None, None)  # DictReader puts surplus cells under None
                if extra:
                    err = DataError(f"line {line}: {len(extra)} more cells than the header")
                    yield Row(line, None, err)
                    continue
                yield Row(line, {k: v for k, v in row.items() if v not in ("", None)})
        except (csv.Error, UnicodeDecodeError) as exc:
            yield Row(reader.line_num, None, DataError(f"line {reader.line_num}: {exc}"))


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row(line_no, None, DataError(f"line {line_no}: invalid JSON: {exc.msg}"))
                continue
            if not isinstance(data, dict):
                yield Row(line_no, None, DataError(f"line {line_no}: a record is a JSON object"))
                continue
            yield Row(line_no, data)


def read_rows(path: Path | str) -> Iterator[Row]:
    """Rows of a .csv or .jsonl/.ndjson file (UTF-8, BOM allowed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}", field="--data")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path)
    raise DataError(f"{path.name}: data files are .csv or .jsonl", field="--data")
