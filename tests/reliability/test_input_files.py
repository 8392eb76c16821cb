"""Bad input, part 3: CSV and JSONL recipient files, and the CLI reading them.

Property: in a file with any mix of good and bad rows — BOMs (UTF-8, UTF-16 LE/BE), mixed
\\r\\n / \\r / \\n, NUL bytes, invalid UTF-8, cells over the size limit, quotes left open,
ragged rows; JSONL lines that are not objects, nested too deep, NaN, duplicate keys, huge —
each good row yields its record, each bad row is reported alone with its line number (and its
field when one is at fault), and no row is lost or merged into another.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chalicelib.cli import app
from chalicelib.data import readers
from chalicelib.data.readers import Row, read_rows
from chalicelib.pipeline.folder import RESULTS, read_results
from chalicelib.pipeline.jobs import RecipientJob, RecipientResult
from chalicelib.pipeline.steps import plan_recipient
from chalicelib.template.library import load_template
from tests.conftest import Campaign
from tests.reliability.hostile import NASTY_CHARS

HEADER = ["recipient_id", "first_name", "plan"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"]
BOMS = {
    "utf-8": b"",
    "utf-8-sig": b"\xef\xbb\xbf",
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
}
LIMIT = 2000  # the cell size limit during these tests (10 MB in production)
BREAKS = re.compile(r"\r\n|\r|\n")

# Megabyte values make hypothesis warn about the size of their repr: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@pytest.fixture
def small_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell limit lowered, so that an oversized cell costs kilobytes, not megabytes."""
    monkeypatch.setattr(readers, "MAX_CELL", LIMIT)


@dataclass
class Line:
    """One row as written: its text, what reading it must give, and where it starts."""

    text: str
    fields: dict[str, Any] | None  # None: a bad row
    field: str | None = None  # the field blamed for a bad row (None: not checked)
    bad_bytes: int | None = None  # a bad row: insert an undecodable byte at this text index
    line: int = 0


MARK = "\ue000\ue000"  # where undecodable bytes go: no generated cell holds it
cell_text = st.text(
    st.characters(exclude_categories=("Cs",)) | st.sampled_from(NASTY_CHARS.replace("\ud800", "")),
    max_size=12,
).filter(lambda t: "\udfff" not in t and "\ue000" not in t)


def _csv_text(cells: list[str], ending: str) -> str:
    buf = io.StringIO()
    # written with \r\n so that csv quotes a cell holding either; then the ending drawn
    csv.writer(buf, lineterminator="\r\n").writerow(cells)
    return buf.getvalue().removesuffix("\r\n") + ending


@st.composite
def csv_lines(draw: st.DrawFn) -> Line:
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    cells = draw(st.lists(cell_text, min_size=1, max_size=3))
    kind = draw(
        st.sampled_from(["good", "good", "good", "bytes", "extra", "junk", "open", "big", "nul"])
    )
    column = draw(st.integers(0, len(cells) - 1))
    name = HEADER[column]
    if kind == "nul":
        cells[column] = "a\x00b"  # a NUL is data: the template decides (text refuses it)
    if kind in ("good", "nul"):
        fields = {h: v for h, v in zip(HEADER, cells, strict=False) if v != ""}
        return Line(_csv_text(cells, ending), fields)
    if kind == "bytes":
        cells[column] = MARK + cells[column]
        text = _csv_text(cells, ending)
        return Line(text, None, name, bad_bytes=text.index(MARK) + 1)
    if kind == "extra":
        return Line(_csv_text([*cells, *(["z"] * (4 - len(cells)))], ending), None, "")
    if kind == "big":
        cells[column] = "b" * (LIMIT + 10)
        return Line(_csv_text(cells, ending), None, name)
    # A quote left open, or text after a closing quote: written by hand, past csv.writer.
    before = _csv_text(cells[:column], "") if column else ""
    cell = '"never closed' if kind == "open" else '"closed"then more'
    return Line((before + "," if column else "") + cell + ending, None, name)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, list[Line]]:
    return draw(st.sampled_from(ENCODINGS)), draw(st.lists(csv_lines(), min_size=1, max_size=8))


def _encode(text: str, encoding: str, bad_at: list[int]) -> bytes:
    """`text` encoded, with one undecodable byte sequence at each index of `bad_at`."""
    codec = encoding.removesuffix("-sig")
    bad = b"\xff" if codec == "utf-8" else "\ud800".encode(codec, "surrogatepass")
    out, start = [], 0
    for index in sorted(bad_at):
        out += [text[start:index].encode(codec), bad]
        start = index
    out.append(text[start:].encode(codec))
    return BOMS[encoding] + b"".join(out)


def _write(path: Path, encoding: str, header: str, lines: list[Line]) -> None:
    text, bad_at = header, []
    for line in lines:
        line.line = len(BREAKS.findall(text)) + 1
        if line.bad_bytes is not None:
            bad_at.append(len(text) + line.bad_bytes)
        text += line.text
    path.write_bytes(_encode(text, encoding, bad_at))


def _assert_rows(rows: list[Row], lines: list[Line]) -> None:
    assert [r.line for r in rows] == [line.line for line in lines]
    for row, line in zip(rows, lines, strict=True):
        if line.fields is not None:
            assert row.error is None, (row, line)
            assert row.fields == line.fields
        else:
            assert row.fields is None and row.error is not None, (row, line)
            assert row.error.message.startswith(f"line {row.line}: ")
            if line.field is not None:
                assert row.error.field == line.field, (row.error, line)


@given(file=csv_files())
@settings(max_examples=60)
def test_each_csv_row_is_read_or_reported_alone(
    tmp_path: Path, small_cells: None, file: tuple[str, list[Line]]
) -> None:
    encoding, lines = file
    path = tmp_path / "recipients.csv"
    _write(path, encoding, ",".join(HEADER) + "\r\n", lines)
    _assert_rows(list(read_rows(path)), lines)


# What a JSON document can say: finite numbers within 64 bits, text without lone surrogates.
json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | cell_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(cell_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def jsonl_lines(draw: st.DrawFn) -> Line:
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    record = draw(st.dictionaries(st.sampled_from(HEADER) | cell_text, json_data, max_size=4))
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "array",
                "junk",
                "nan",
                "dup",
                "deep",
                "bytes",
                "huge",
                "blank",
            ]
        )
    )
    dump = json.dumps(record, ensure_ascii=draw(st.booleans()))
    if kind == "good":
        return Line(dump + ending, record)
    if kind == "huge":
        record = {**record, "note": "€" * 1_000_000}
        return Line(json.dumps(record, ensure_ascii=False) + ending, record)
    if kind == "blank":
        return Line(draw(st.sampled_from(["", " ", "\t"])) + ending, {})  # skipped: no row
    bad = {
        "array": ("[1, 2]", ""),
        "junk": ('{"a": 1} trailing', ""),
        "nan": ('{"first_name": "x", "score": NaN}', "score"),
        "dup": ('{"plan": "pro", "plan": "basic"}', "plan"),
        "deep": ('{"deep": ' + "[" * 100 + "]" * 100 + "}", None),
        "bytes": ('{"first_name": "xx"}', "first_name"),
    }
    text, field = bad[kind]
    at = text.index("xx") + 1 if kind == "bytes" else None
    return Line(text + ending, None, field, bad_bytes=at)


@given(
    encoding=st.sampled_from(ENCODINGS),
    lines=st.lists(jsonl_lines(), min_size=1, max_size=6),
)
@settings(max_examples=50)
def test_each_jsonl_line_is_read_or_reported_alone(
    tmp_path: Path, encoding: str, lines: list[Line]
) -> None:
    path = tmp_path / "recipients.jsonl"
    _write(path, encoding, "", lines)
    kept = [line for line in lines if line.text.strip()]  # blank lines are no rows
    rows = list(read_rows(path))
    _assert_rows(rows, kept)
    for row, line in zip(rows, kept, strict=True):
        if line.text.startswith('{"deep"'):
            assert row.error is not None and "nested" in row.error.message


@given(file=csv_files())
@settings(max_examples=30)
def test_a_bad_row_fails_alone_when_planned(
    campaign: Campaign, small_cells: None, file: tuple[str, list[Line]]
) -> None:
    # GIVEN a file of good and bad rows, and the tiny campaign (first_name required)
    encoding, lines = file
    path = campaign.root / "recipients.csv"
    _write(path, encoding, ",".join(HEADER) + "\n", lines)
    lt = load_template(campaign.template)
    # WHEN each row is planned (mapped and bound, nothing rendered)
    planned = [plan_recipient(lt, None, row) for row in read_rows(path)]
    # THEN one job or one failure per row, each failure with its line and a reason
    assert len(planned) == len(lines)
    for item, line in zip(planned, lines, strict=True):
        assert item.line == line.line
        if isinstance(item, RecipientResult):
            assert item.reason and item.code in ("invalid_data", "invalid_asset")
            if line.fields is not None:  # a good row refused by the template: a field says why
                assert item.field
        else:
            assert isinstance(item, RecipientJob) and line.fields is not None


# ── the CLI on bad data ────────────────────────────────────────────────────────────────────

runner = CliRunner()
bad_names = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
    st.text(min_size=61, max_size=80),
    st.text(max_size=5).map(lambda t: t + "\x00"),
)


plain = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)


@given(
    record=st.dictionaries(plain, plain | st.integers(), max_size=3),
    name=bad_names,
    raw=st.binary(max_size=40),
    as_bytes=st.booleans(),
)
@settings(max_examples=20)
def test_reel_render_with_bad_data_exits_1_naming_the_field(
    campaign: Campaign, record: dict[str, Any], name: Any, raw: bytes, as_bytes: bool
) -> None:
    data = campaign.root / "record.json"
    if as_bytes:  # not JSON at all (or not UTF-8, or not an object)
        data.write_bytes(b"\xff" + raw if raw.strip()[:1] in (b"{", b"") else raw)
        named = re.compile(r"invalid input: \S+: ")  # --data, or the path in the record
    else:
        data.write_text(json.dumps({**record, "first_name": name}))
        named = re.compile("first_name")
    out = campaign.root / "out.mp4"
    result = runner.invoke(app, ["render", str(campaign.template), "-d", str(data), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "invalid input: " in result.stderr and named.search(result.stderr), result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_reel_batch_with_only_bad_rows_reports_each_with_its_line(
    campaign: Campaign, tmp_path: Path
) -> None:
    # GIVEN rows every one of which is bad in its own way (nothing gets rendered)
    data = tmp_path / "bad.csv"
    data.write_bytes(
        b"\xef\xbb\xbfrecipient_id,first_name,plan\r\n"
        b"a,,basic\r"  # first_name missing
        b'b,"never closed,pro\n'  # a quote left open (it would swallow the rest)
        b"c,Zo\xeb,pro\r\n"  # not UTF-8
        b"d,Ann,gold\n"  # not a plan
        b"e,Bob,pro,extra\n"  # a cell too many
        b"f,Al\x00,pro\n"  # a NUL in a name
    )
    out = tmp_path / "out"
    args = ["batch", str(campaign.template), "-d", str(data), "-o", str(out), "--workers", "1"]
    result = runner.invoke(app, args)
    # THEN exit 1, one failed result per row, in order, each naming its line and field
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    results = read_results(out / RESULTS)
    assert [(r.line, r.status.value, r.field) for r in results] == [
        (2, "failed", "first_name"),
        (3, "failed", "first_name"),
        (4, "failed", "first_name"),
        (5, "failed", "plan"),
        (6, "failed", None),
        (7, "failed", "first_name"),
    ]
    assert "0 rendered, 0 already done, 6 failed" in result.stdout


# ── the bugs these properties found, as plain examples ─────────────────────────────────────


def _rows(tmp_path: Path, name: str, data: bytes) -> list[tuple[int, Any, str | None]]:
    path = tmp_path / name
    path.write_bytes(data)
    return [(r.line, r.fields, None if r.error is None else r.error.field) for r in read_rows(path)]


@pytest.mark.parametrize("bom", ["utf-16-le", "utf-16-be"])
def test_a_utf16_file_with_a_bom_is_read(tmp_path: Path, bom: str) -> None:
    # was: every row "not valid UTF-8", with a garbled column name
    text = "recipient_id,first_name\r\n1,Zoë\r\n"
    rows = _rows(tmp_path, "r.csv", BOMS[bom] + text.encode(bom))
    assert rows == [(2, {"recipient_id": "1", "first_name": "Zoë"}, None)]
    rows = _rows(tmp_path, "r.jsonl", BOMS[bom] + '{"a": "é"}\n'.encode(bom))
    assert rows == [(1, {"a": "é"}, None)]


def test_a_quote_left_open_fails_its_row_alone(tmp_path: Path) -> None:
    # was: the rest of the file silently read as one cell of that row
    rows = _rows(tmp_path, "r.csv", b'id,name\n1,"open\n2,Ann\n3,Bob\n')
    assert rows == [
        (2, None, "name"),
        (3, {"id": "2", "name": "Ann"}, None),
        (4, {"id": "3", "name": "Bob"}, None),
    ]


def test_a_cell_over_the_limit_fails_its_row_alone(tmp_path: Path, small_cells: None) -> None:
    # was: csv.Error ended the file there: every row after it lost
    big = b"x" * (LIMIT + 1)
    rows = _rows(tmp_path, "r.csv", b"id,name,note\n1," + big + b',"a\nb"\n2,Ann\n')
    assert rows == [(2, None, "name"), (4, {"id": "2", "name": "Ann"}, None)]


def test_a_duplicate_column_is_refused(tmp_path: Path) -> None:
    # was: the first column's values silently dropped
    with pytest.raises(Exception, match="names column 'name' twice") as info:
        _rows(tmp_path, "r.csv", b"id,name,name\n1,a,b\n")
    assert getattr(info.value, "field", None) == "name"


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (b'{"a": NaN}', "a", "NaN is not a JSON number"),  # was: NaN, then taken as missing
        (b'{"a": 1, "a": 2}', "a", "duplicate key"),  # was: the first value silently lost
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "", "nested more than"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "", "invalid JSON"),  # was: ValueError, the file lost
        (b'{"a": "\\ud800"}', "a", "not valid UTF-8"),
    ],
)
def test_jsonl_lines_that_crashed_or_lied(
    tmp_path: Path, line: bytes, field: str, reason: str
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(line + b"\n" + b'{"b": 2}\n')
    bad, good = list(read_rows(path))
    assert bad.error is not None and bad.error.field == field and reason in bad.error.message
    assert (good.line, good.fields) == (2, {"b": 2})
