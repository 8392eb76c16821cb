"""The BlobStores, local and S3 (moto): one behaviour, keys stay inside, writes are atomic."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.adapters.retry import Retry
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.errors import StorageError
from chalicelib.ports import BlobStore
from tests.aws import create_bucket

BUCKET = "reel-test-media"
PART = 5 * 1024 * 1024  # S3's smallest part of a multipart upload


@pytest.fixture
def s3_store() -> Iterator[S3BlobStore]:
    with mock_aws():
        yield S3BlobStore(create_bucket(BUCKET), BUCKET, url_expiry=600)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "s")
        return
    with mock_aws():
        yield S3BlobStore(create_bucket(BUCKET), BUCKET)


# ── every store ───────────────────────────────────────────────────────────────────────────


def test_put_get_fetch_delete(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes("a/b/c.txt", b"hello")
    src = tmp_path / "f.bin"
    src.write_bytes(b"\x00" * 10)
    store.put_file("f.bin", src)
    assert store.exists("a/b/c.txt") and store.get_bytes("a/b/c.txt") == b"hello"
    assert store.fetch("f.bin", tmp_path / "scratch").read_bytes() == b"\x00" * 10
    store.delete("a/b/c.txt")
    assert not store.exists("a/b/c.txt")
    with pytest.raises(KeyError):
        store.get_bytes("a/b/c.txt")
    with pytest.raises(KeyError):
        store.fetch("missing", tmp_path / "scratch")


def test_a_put_replaces_the_object(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes("v.mp4", b"old")
    src = tmp_path / "new.mp4"
    src.write_bytes(b"new")
    store.put_file("v.mp4", src)
    assert store.get_bytes("v.mp4") == b"new"
    assert store.fetch("v.mp4", tmp_path / "scratch").read_bytes() == b"new"


def test_deleting_a_missing_key_is_harmless(store: BlobStore) -> None:
    store.delete("never/stored.bin")
    assert not store.exists("never/stored.bin")


def test_a_prefix_of_a_key_is_not_an_object(store: BlobStore) -> None:
    store.put_bytes("a/b/c.txt", b"hello")
    assert not store.exists("a/b")
    assert not store.exists("a/b/c")


@dataclass
class Broken:
    """A store whose writes fail part-way (after some of the bytes were written or sent) for
    a reason that does not pass; `leftovers()` lists what a failed write left anywhere."""

    store: BlobStore
    leftovers: Callable[[], list[str]]


@pytest.fixture(params=["local", "s3"])
def broken(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Broken]:
    if request.param == "local":
        local = LocalBlobStore(tmp_path / "s", retry=Retry(sleep=lambda _: None))
        local.put_bytes("v.mp4", b"the old video")

        def half_then_read_only(src: Any, dst: Any, length: int = 0) -> None:
            dst.write(src.read(PART // 2))
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        # the copy of a source file into the store's temporary file
        monkeypatch.setattr(shutil, "copyfileobj", half_then_read_only)
        yield Broken(local, lambda: sorted(p.name for p in local.root.rglob("*.part")))
        return
    with mock_aws():
        client = create_bucket(BUCKET)
        # Two parts: the first is uploaded, the second refused (403: botocore does not retry).
        s3 = S3BlobStore(
            client,
            BUCKET,
            transfer=TransferConfig(multipart_threshold=PART, multipart_chunksize=PART),
        )
        parts: list[int] = []

        def refuse_the_second_part(request: Any, **_: Any) -> AWSResponse | None:
            parts.append(1)
            if len(parts) < 2:
                return None
            body = b"<Error><Code>AccessDenied</Code><Message>denied</Message></Error>"
            url, request.url = request.url, "http://s3-fault.invalid/"  # moto stores nothing
            headers = {"Content-Type": "application/xml"}
            return AWSResponse(url, 403, headers, MockRawResponse(body))  # type: ignore[arg-type]

        s3.put_bytes("v.mp4", b"the old video")
        client.meta.events.register_first("before-send.s3.UploadPart", refuse_the_second_part)

        def leftovers() -> list[str]:
            uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
            objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
            return [u["Key"] for u in uploads] + [o["Key"] for o in objects if o["Key"] != "v.mp4"]

        yield Broken(s3, leftovers)


def test_a_write_that_fails_part_way_leaves_the_old_object(broken: Broken, tmp_path: Path) -> None:
    # GIVEN an object stored, and a new version of it, larger than one write or one part
    source = tmp_path / "new.mp4"
    source.write_bytes(os.urandom(PART + PART // 2))
    # WHEN storing the new version fails part-way
    with pytest.raises(StorageError, match=r"writing v\.mp4"):
        broken.store.put_file("v.mp4", source)
    # THEN readers still get the old object whole, nothing of the new one is anywhere, and a
    # key never written is still absent
    assert broken.store.get_bytes("v.mp4") == b"the old video"
    assert broken.store.fetch("v.mp4", tmp_path / "scratch").read_bytes() == b"the old video"
    assert broken.leftovers() == []
    with pytest.raises(StorageError):
        broken.store.put_file("never.mp4", source)
    assert not broken.store.exists("never.mp4")
    with pytest.raises(KeyError):
        broken.store.get_bytes("never.mp4")
    assert broken.leftovers() == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a\\b"])
def test_keys_cannot_leave_the_store(store: BlobStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put_bytes(key, b"x")
    for read in (store.exists, store.get_bytes, store.url, store.delete):
        with pytest.raises(ValueError, match="invalid blob key"):
            read(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.fetch(key, tmp_path)


# ── the local store ───────────────────────────────────────────────────────────────────────


def test_local_url_is_a_file_url(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "s")
    store.put_bytes("f.bin", b"x")
    assert store.url("f.bin").startswith("file://")
    assert store.fetch("f.bin", tmp_path / "scratch") == store.path("f.bin")


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


# ── the S3 store ──────────────────────────────────────────────────────────────────────────


def test_s3_fetch_keeps_the_base_name_and_suffix(s3_store: S3BlobStore, tmp_path: Path) -> None:
    # GIVEN two sources with the same file name under different keys, in one scratch dir
    s3_store.put_bytes("incoming/b_1/people.csv", b"first_name\nAda\n")
    s3_store.put_bytes("incoming/b_2/people.csv", b"first_name\nBob\n")
    s3_store.put_bytes("incoming/b_3/people.jsonl", b'{"first_name": "Cy"}\n')
    scratch = tmp_path / "scratch"
    # WHEN they are fetched
    one = s3_store.fetch("incoming/b_1/people.csv", scratch)
    two = s3_store.fetch("incoming/b_2/people.csv", scratch)
    three = s3_store.fetch("incoming/b_3/people.jsonl", scratch)
    # THEN each is its own file inside scratch, with the key's name and suffix
    assert (one.name, one.suffix, three.suffix) == ("people.csv", ".csv", ".jsonl")
    assert one != two and one.is_relative_to(scratch) and two.is_relative_to(scratch)
    assert one.read_bytes() == b"first_name\nAda\n"
    assert two.read_bytes() == b"first_name\nBob\n"
    # AND a refetch after a replace gets the new bytes
    s3_store.put_bytes("incoming/b_1/people.csv", b"first_name\nEve\n")
    assert s3_store.fetch("incoming/b_1/people.csv", scratch).read_bytes() == b"first_name\nEve\n"


def test_s3_url_is_presigned(s3_store: S3BlobStore) -> None:
    s3_store.put_bytes("videos/ab12/out.mp4", b"x")
    url = s3_store.url("videos/ab12/out.mp4")
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert BUCKET in url and unquote(parts.path).endswith("videos/ab12/out.mp4")
    # botocore presigns S3 with SigV2 unless the client is configured for s3v4
    assert "Signature=" in parts.query and "Expires=" in parts.query


def test_s3_url_honours_the_expiry_with_sigv4(s3_store: S3BlobStore) -> None:
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    store = S3BlobStore(client, BUCKET, url_expiry=600)
    query = parse_qs(urlsplit(store.url("videos/ab12/out.mp4")).query)
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query


def test_s3_get_of_a_missing_key(s3_store: S3BlobStore) -> None:
    with pytest.raises(KeyError):
        s3_store.get_bytes("nope.bin")
    assert not s3_store.exists("nope.bin")


def test_s3_objects_carry_their_content_type(s3_store: S3BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "v.mp4"
    src.write_bytes(b"x")
    s3_store.put_file("videos/v.mp4", src)
    s3_store.put_bytes("posters/p.jpg", b"x")
    head = s3_store.client.head_object
    assert head(Bucket=BUCKET, Key="videos/v.mp4")["ContentType"] == "video/mp4"
    assert head(Bucket=BUCKET, Key="posters/p.jpg")["ContentType"] == "image/jpeg"


def test_s3_prefix(tmp_path: Path) -> None:
    with mock_aws():
        client = create_bucket(BUCKET)
        store = S3BlobStore(client, BUCKET, prefix="stage/")
        store.put_bytes("a/b.txt", b"hi")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys == ["stage/a/b.txt"]
        assert store.exists("a/b.txt") and store.get_bytes("a/b.txt") == b"hi"
        assert store.fetch("a/b.txt", tmp_path).name == "b.txt"
        assert "stage/a/b.txt" in store.url("a/b.txt")
        with pytest.raises(ValueError, match="prefix"):
            S3BlobStore(client, BUCKET, prefix="/abs/")
