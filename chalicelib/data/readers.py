"""Reading recipient rows from CSV and JSONL files, one row at a time; a bad row fails alone.

Files are UTF-8, or UTF-16/32 with a byte-order mark; lines end in \\n, \\r\\n or \\r, mixed.
A row with undecodable bytes, a cell over the size limit, a quote never closed, surplus cells,
or (JSONL) a line that is not one JSON object is reported with its line number and field, and
reading goes on with the next row: nothing after a bad row is lost.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chalicelib.errors import DataError
from chalicelib.template.documents import (
    BAD_BYTES,
    MAX_DEPTH,
    DocumentError,
    load_json,
    sniff_encoding,
)

MAX_CELL = 10 * 1024 * 1024  # characters in one cell; checked here, naming the column
# Characters in one row (a CSV record, a JSONL line): a longer one fails alone, and is never
# held whole (a 100 MB line, a quote never closed running on through a 2 GB file).
MAX_ROW = 32 * 1024 * 1024
# Bytes in a whole source: a larger one is refused before a row is read (split it).
MAX_SOURCE_BYTES = 1024**3
_SKIP = 1024 * 1024  # characters read at a time while skipping the rest of a long line
# csv's own limit would fail mid-line, leaving the rest of the row (a quoted cell running on
# to the next lines) to be misread as rows of its own: lift it, and check cells once parsed.
csv.field_size_limit(2**31 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Row:
    """One source row: its 1-based line number, and its fields or the reason it is unreadable."""

    line: int
    fields: dict[str, Any] | None
    error: DataError | None = None


def _open(path: Path, newline: str | None) -> tuple[IO[str], str]:
    """The file as text in the encoding its byte-order mark names (UTF-8 without one); bytes
    that do not decode become lone surrogates, for the row that holds them to fail alone."""
    try:
        raw = path.open("rb")
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise DataError(f"{path.name}: cannot read it: {exc.strerror}", "--data") from None
    encoding, skip = sniff_encoding(raw.read(4))
    raw.seek(skip)
    text = io.TextIOWrapper(raw, encoding=encoding, errors=BAD_BYTES, newline=newline)
    return text, encoding.upper().removesuffix("-LE").removesuffix("-BE")


# ── CSV ────────────────────────────────────────────────────────────────────────────────────


class _TooLong(Exception):
    """A row over MAX_ROW characters (raised through csv.reader, which resets on its next row)."""


def _readline(fh: IO[str]) -> str:
    """The next physical line, or raise _TooLong having skipped a line over MAX_ROW characters
    (read in pieces: never held whole)."""
    line = fh.readline(MAX_ROW + 1)
    if len(line) <= MAX_ROW:
        return line
    while line and not line.endswith(("\n", "\r")):
        line = fh.readline(_SKIP)
    raise _TooLong


def _too_long(line: int, hint: str = "") -> DataError:
    return DataError(f"line {line}: the row is over {MAX_ROW:,} characters{hint}")


class _Lines:
    """The file's physical lines for csv.reader, remembering those of the current record so a
    record that swallowed the rest of the file (a quote never closed) can be read again; a
    record is never let grow past MAX_ROW characters."""

    def __init__(self, fh: IO[str]):
        self.fh = fh
        self.back: deque[str] = deque()
        self.number = 0  # physical lines handed out
        self.record: list[str] = []
        self.size = 0  # characters in the current record

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.back:
            line = self.back.popleft()
        else:
            try:
                line = _readline(self.fh)
            except _TooLong:
                self.number += 1
                raise
            if not line:
                raise StopIteration
        self.number += 1
        self.record.append(line)
        self.size += len(line)
        if self.size > MAX_ROW:
            raise _TooLong
        return line

    def start_record(self) -> int:
        """Forget the previous record; the line number the next one starts on."""
        self.record = []
        self.size = 0
        return self.number + 1

    def reread_after_first(self) -> None:
        """Hand out again every line of the current record but its first."""
        again = self.record[1:]
        self.number -= len(again)
        self.back.extendleft(reversed(again))
        self.record = []
        self.size = 0


_UNQUOTED_STOP = re.compile(r'[,"\r\n]')


def _bad_cell(text: str) -> tuple[int, str] | None:
    """In a record's raw text: the index of the first cell whose quote is never closed or that
    has text after its closing quote, and which it is."""
    cell, i, end, at_start = 0, 0, len(text), True
    while i < end:
        if at_start and text[i] == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return cell, "unclosed"
                if not text.startswith('"', k + 1):
                    break
                j = k + 2  # "" is a quote inside the cell
            i, at_start = k + 1, False
            if i < end and text[i] not in ",\r\n":
                return cell, "junk"
            continue
        stop = _UNQUOTED_STOP.search(text, i)
        if stop is None or stop.group() in "\r\n":  # the end of the record
            break
        i, at_start = stop.end(), stop.group() == ","
        if at_start:
            cell += 1
    return None


_REASONS = {
    "unclosed": "a quoted cell is never closed",
    "junk": "a quoted cell has text after its closing quote",
}


def _column(header: list[str], index: int) -> str:
    name = header[index] if index < len(header) else ""
    return name or f"column {index + 1}"


def _csv_rows(path: Path) -> Iterator[Row]:
    fh, encoding = _open(path, newline="")
    with fh:
        lines = _Lines(fh)
        # strict: a quote left open or text after a closing quote is an error, not a silent
        # merge of the rows that follow into one cell
        reader = csv.reader(lines, strict=True)
        header: list[str] | None = None
        while True:
            line = lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _TooLong:
                if header is None:
                    raise _too_long(line, ": the header is unreadable") from None
                many = len(lines.record) > 1
                if many:  # a quote opened on `line` ran on: the lines after it are rows again
                    lines.reread_after_first()
                yield Row(line, None, _too_long(line, " (a quote never closed?)" if many else ""))
                continue
            except csv.Error as exc:
                if header is None:
                    raise DataError(f"line {line}: the header is unreadable: {exc}") from None
                found = _bad_cell("".join(lines.record))
                field = _column(header, found[0]) if found else ""
                reason = _REASONS[found[1]] if found else str(exc)
                if len(lines.record) > 1:
                    # The record ran on into the lines after `line` (a quote opened there
                    # swallowed them): it alone is bad; those lines are read again as rows.
                    lines.reread_after_first()
                yield Row(line, None, DataError(f"line {line}: {reason}", field=field))
                continue
            if not cells:
                continue  # a blank line
            if header is None:
                header = _read_header(cells, line, encoding)
                continue
            yield _csv_row(header, cells, line, encoding)


def _read_header(cells: list[str], line: int, encoding: str) -> list[str]:
    header = [c.strip() for c in cells]
    seen: set[str] = set()
    for name in header:
        if _SURROGATE.search(name):
            raise DataError(f"line {line}: the header is not valid {encoding}", field="header")
        if name and name in seen:
            raise DataError(f"line {line}: the header names column {name[:60]!r} twice", name)
        seen.add(name)
    return header


def _csv_row(header: list[str], cells: list[str], line: int, encoding: str) -> Row:
    if len(cells) > len(header):
        extra = len(cells) - len(header)
        return Row(line, None, DataError(f"line {line}: {extra} more cells than the header"))
    for index, value in enumerate(cells):
        if len(value) > MAX_CELL:
            reason = f"a cell is over {MAX_CELL:,} characters"
            return Row(line, None, DataError(f"line {line}: {reason}", _column(header, index)))
        if _SURROGATE.search(value):
            err = DataError(f"line {line}: not valid {encoding}", field=_column(header, index))
            return Row(line, None, err)
    return Row(line, {k: v for k, v in zip(header, cells, strict=False) if v != ""})


# ── JSONL ──────────────────────────────────────────────────────────────────────────────────


def _jsonl_rows(path: Path) -> Iterator[Row]:
    fh, encoding = _open(path, newline=None)
    with fh:
        line_no = 0
        while True:
            line_no += 1
            try:
                line = _readline(fh)
            except _TooLong:
                yield Row(line_no, None, _too_long(line_no))
                continue
            if not line:
                return
            if not line.strip():
                continue
            try:
                data = load_json(line, max_depth=MAX_DEPTH, encoding=encoding)
            except DocumentError as exc:
                reason = f"invalid JSON: {exc.reason}" if exc.line is not None else exc.message
                yield Row(line_no, None, DataError(f"line {line_no}: {reason}", field=exc.field))
                continue
            if not isinstance(data, dict):
                yield Row(line_no, None, DataError(f"line {line_no}: a record is a JSON object"))
                continue
            yield Row(line_no, data)


def read_rows(path: Path | str) -> Iterator[Row]:
    """Rows of a .csv or .jsonl/.ndjson file (UTF-8, or UTF-16/32 with a BOM)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}", field="--data")
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise DataError(
            f"{path.name} is {size:,} bytes; a data file is at most {MAX_SOURCE_BYTES:,}: "
            "split it into several batches",
            field="--data",
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path)
    raise DataError(f"{path.name}: data files are .csv or .jsonl", field="--data")
