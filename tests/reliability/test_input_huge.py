"""Sources too big to hold: a 2 GB file is refused before a row is read, and a 100 MB row
fails alone while the rows after it are read; each under a memory bound (RLIMIT_AS in a
subprocess), so a reader that held the row or the file whole would die of MemoryError."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chalicelib.data import readers

ROOT = Path(__file__).resolve().parents[2]
#: Address space allowed beyond what the interpreter holds once the reader is imported: room
#: for a few rows of MAX_ROW (32 M characters), not for one 100 MB row read whole.
HEADROOM = 192 * 2**20

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from chalicelib.data.readers import read_rows
    from chalicelib.errors import DataError

    def vm_size():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    limit = vm_size() + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        rows = [
            {"line": r.line, "fields": r.fields, "error": r.error and r.error.message}
            for r in read_rows(sys.argv[1])
        ]
    except DataError as exc:
        print(json.dumps({"refused": exc.message}))
    except MemoryError:
        print(json.dumps({"memory": True}))
    else:
        print(json.dumps({"rows": rows}))
    """
)


def read_bounded(path: Path) -> dict[str, object]:
    """read_rows(path) in a subprocess whose address space is capped."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(HEADROOM)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def sparse(path: Path, head: bytes, size: int, tail: bytes = b"") -> Path:
    """`head`, then NUL bytes (a hole: no disk used) up to `size`, then `tail`."""
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
        fh.seek(size)
        fh.write(tail)
    return path


def test_a_2gb_csv_is_refused_before_a_row_is_read(tmp_path: Path) -> None:
    big = sparse(tmp_path / "big.csv", b"first_name\nAnn\n", 2 * 1024**3)
    found = read_bounded(big)
    assert found == {
        "refused": f"big.csv is {2 * 1024**3:,} bytes; a data file is at most "
        f"{readers.MAX_SOURCE_BYTES:,}: split it into several batches"
    }


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_100mb_row_fails_alone_and_the_next_rows_are_read(tmp_path: Path, suffix: str) -> None:
    # GIVEN a file whose second row is 100 MB on one line, and a good row after it
    if suffix == ".csv":
        head, tail, good = b"first_name\n", b"\nBob\n", {"first_name": "Bob"}
        bad_line, next_line = 2, 3
    else:
        head, tail, good = b'{"first_name": "Ann"}\n', b'\n{"first_name": "Bob"}\n', None
        bad_line, next_line = 2, 3
    path = sparse(tmp_path / f"long{suffix}", head, 100 * 2**20, tail)
    # WHEN it is read under a memory bound
    found = read_bounded(path)
    # THEN the long row is reported with its line and the limit, and the reading went on
    assert "rows" in found, found
    rows = found["rows"]
    assert isinstance(rows, list)
    bad = next(r for r in rows if r["line"] == bad_line)
    assert bad["fields"] is None
    assert bad["error"] == f"line {bad_line}: the row is over {readers.MAX_ROW:,} characters"
    last = rows[-1]
    assert last["line"] == next_line
    assert last["fields"] == (good or {"first_name": "Bob"})


def test_a_quote_never_closed_does_not_swallow_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a quote opened on line 2 and never closed, with many rows after it
    monkeypatch.setattr(readers, "MAX_ROW", 1000)
    lines = ["first_name,plan", '"Ann,basic'] + [f"Name {i},pro" for i in range(200)]
    path = tmp_path / "open.csv"
    path.write_text("\n".join(lines) + "\n")
    rows = list(readers.read_rows(path))
    # THEN line 2 fails once it has run past the row limit, and every row after it is read
    assert rows[0].line == 2 and rows[0].fields is None and rows[0].error is not None
    assert "over 1,000 characters (a quote never closed?)" in rows[0].error.message
    assert [r.line for r in rows[1:]] == list(range(3, 203))
    assert all(r.fields is not None for r in rows[1:])
