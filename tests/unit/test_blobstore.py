"""The local BlobStore: keys stay inside the root, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.ports import BlobStore


def test_it_is_a_blobstore(tmp_path: Path) -> None:
    assert isinstance(LocalBlobStore(tmp_path), BlobStore)


def test_put_get_fetch_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "s")
    store.put_bytes("a/b/c.txt", b"hello")
    src = tmp_path / "f.bin"
    src.write_bytes(b"\x00" * 10)
    store.put_file("f.bin", src)
    assert store.exists("a/b/c.txt") and store.get_bytes("a/b/c.txt") == b"hello"
    assert store.fetch("f.bin", tmp_path).read_bytes() == b"\x00" * 10
    assert store.url("f.bin").startswith("file://")
    store.delete("a/b/c.txt")
    assert not store.exists("a/b/c.txt")
    with pytest.raises(KeyError):
        store.get_bytes("a/b/c.txt")
    with pytest.raises(KeyError):
        store.fetch("missing", tmp_path)


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a\\b"])
def test_keys_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        LocalBlobStore(tmp_path).put_bytes(key, b"x")


def test_a_failed_write_leaves_nothing_under_the_key(tmp_path: Path) -> None:
    # GIVEN an object already stored, and a source that fails half-way through being copied
    store = LocalBlobStore(tmp_path / "s")
    store.put_bytes("v.mp4", b"old")

    class Boom(Exception):
        pass

    def failing(fh: object) -> None:
        fh.write(b"partial")  # type: ignore[attr-defined]
        raise Boom

    # WHEN the write fails
    with pytest.raises(Boom):
        store._write("v.mp4", failing)
    # THEN the old object is intact and no temporary file is left behind
    assert store.get_bytes("v.mp4") == b"old"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["v.mp4"]
