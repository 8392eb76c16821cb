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


def _not_utf8(row: dict[str, Any]) -> str | None:
    for key, value in row.items():
        for text in (key, value):
            if isinstance(text, str) and any("\udc80" <= ch <= "\udcff" for ch in text):
                return str(key).encode("utf-8", "replace").decode()
    return None


def _csv_rows(path: Path) -> Iterator[Row]:
    # Undecodable bytes are kept as surrogates so that only their row fails, not the file.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
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
                if (column := _not_utf8(row)) is not None:
                    err = DataError(f"line {line}: not valid UTF-8", field=column)
                    yield Row(line, None, err)
                    continue
                yield Row(line, {k: v for k, v in row.items() if v not in ("", None)})
        except csv.Error as exc:
            yield Row(reader.line_num, None, DataError(f"line {reader.line_num}: {exc}"))


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
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
            if (key := _not_utf8(data)) is not None:
                yield Row(line_no, None, DataError(f"line {line_no}: not valid UTF-8", field=key))
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
