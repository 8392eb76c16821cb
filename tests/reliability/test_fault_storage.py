"""Failed blob writes: a full disk, an S3 that answers SlowDown or 500. A write is retried a few
times (the sleep injected: nothing waits), then reported as a StorageError naming what failed;
no partial object is ever left under the key nor a temporary file beside it, and a recipient
whose video cannot be stored fails alone while the rest of its batch is rendered."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import SimpleNamespace, TracebackType
from typing import Any

import boto3
import botocore.endpoint
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from chalice.test import Client
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse

from chalicelib import bootstrap
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.adapters.retry import Retry
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.data.readers import Row
from chalicelib.errors import StorageError
from chalicelib.pipeline.jobs import RecipientJob, Status
from chalicelib.pipeline.steps import plan_recipient
from chalicelib.services import batches, templates
from tests.aws import create_bucket
from tests.conftest import API_KEY, Campaign

BUCKET = "reel-test-faults"


# ── a full disk, injected where the store writes its temporary file ───────────────────────


class _FillsUp:
    """A file whose writes stop half-way with the given errno (ENOSPC: the disk filled up)."""

    def __init__(self, fh: Any, code: int) -> None:
        self.fh = fh
        self.code = code

    def write(self, data: bytes) -> int:
        self.fh.write(bytes(data[: len(data) // 2]))
        self.fh.flush()
        raise OSError(self.code, os.strerror(self.code))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)

    def __enter__(self) -> _FillsUp:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.fh.close()


class DiskFault:
    """Writes under `root` to a file named like `name` fail (`times` times; None: always)."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        root: Path,
        name: str,
        *,
        times: int | None = None,
        code: int = errno.ENOSPC,
    ) -> None:
        self.hits = 0
        real = os.fdopen

        def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
            fh = real(fd, *args, **kwargs)
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            mine = path.is_relative_to(root.resolve()) and path.name.startswith(f".{name}.")
            if mine and (times is None or self.hits < times):
                self.hits += 1
                return _FillsUp(fh, code)
            return fh

        # os.fdopen is where LocalBlobStore opens its temporary file
        monkeypatch.setattr(os, "fdopen", fdopen)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.name.endswith(".part"))


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def store(tmp_path: Path, slept: list[float]) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", retry=Retry(attempts=3, base=0.5, sleep=slept.append))


def test_a_disk_full_for_a_moment_is_retried(
    store: LocalBlobStore, slept: list[float], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a disk that is full for the first two attempts
    fault = DiskFault(monkeypatch, store.root, "v.mp4", times=2)
    source = tmp_path / "video.bin"
    source.write_bytes(os.urandom(300_000))
    # WHEN the video is stored
    store.put_file("videos/v.mp4", source)
    # THEN the third attempt stored it whole, after two waits that grow
    assert fault.hits == 2
    assert slept == [0.5, 1.0]
    assert store.get_bytes("videos/v.mp4") == source.read_bytes()
    assert leftovers(store.root) == []


def test_a_disk_that_stays_full_is_reported_and_leaves_nothing(
    store: LocalBlobStore, slept: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an object already stored, and a disk that then stays full
    store.put_bytes("videos/v.mp4", b"the old video")
    fault = DiskFault(monkeypatch, store.root, "v.mp4")
    # WHEN it is replaced
    with pytest.raises(StorageError) as caught:
        store.put_bytes("videos/v.mp4", b"x" * 100_000)
    # THEN three attempts were made, and the error says what failed
    assert fault.hits == 3 and len(slept) == 2
    message = str(caught.value)
    assert "disk full (ENOSPC) writing videos/v.mp4" in message
    assert "3 attempts" in message
    assert caught.value.code == "storage_failed" and caught.value.status == 503
    # AND the old object is intact, with no part of the new one anywhere
    assert store.get_bytes("videos/v.mp4") == b"the old video"
    assert leftovers(store.root) == []


def test_a_failure_that_cannot_pass_is_not_retried(
    store: LocalBlobStore, slept: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = DiskFault(monkeypatch, store.root, "p.jpg", code=errno.EROFS)
    with pytest.raises(StorageError, match=r"read-only file system \(EROFS\) writing p\.jpg"):
        store.put_bytes("p.jpg", b"jpeg")
    assert fault.hits == 1 and slept == []
    assert not store.exists("p.jpg") and leftovers(store.root) == []


def test_partials_of_dead_writers_are_cleaned_and_live_ones_kept(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    # GIVEN the temporary file of a writer that was killed, and one of a writer still alive
    (store.root / "videos").mkdir()
    dead = store.root / "videos" / f".a.mp4.{2**22 + 7}.k3j2x9ab.part"  # above pid_max
    live = store.root / "videos" / f".b.mp4.{os.getpid()}.q8w7e6rt.part"
    dead.write_bytes(b"half")
    live.write_bytes(b"in progress")
    # WHEN the store is cleaned
    assert store.clean_partials() == 1
    # THEN only the dead writer's is gone
    assert not dead.exists() and live.exists()


def test_the_partial_of_a_killed_writer_not_yet_reaped_is_cleaned(store: LocalBlobStore) -> None:
    # GIVEN a writer killed mid-write whose parent has not reaped it yet (a zombie: a render
    # worker's pool joins it only after its jobs were told that it died)
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "60"])
    try:
        part = store.root / f".c.jpg.{child.pid}.z0mb1e00.part"
        part.write_bytes(b"half")
        child.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not die"
            time.sleep(0.01)
        # WHEN the store is cleaned, THEN its partial file is gone
        assert store.clean_partials() == 1 and not part.exists()
    finally:
        child.wait()


# ── the failure of one recipient's write, in a batch of the embedded default ──────────────


def test_a_recipient_whose_video_cannot_be_stored_fails_alone(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch, slept: list[float]
) -> None:
    b = bootstrap.backends()
    template = templates.register_folder(b, campaign.root)
    assert isinstance(b.blobs, LocalBlobStore)
    monkeypatch.setattr(b.blobs, "retry", Retry(attempts=3, sleep=slept.append))
    # (the batch's steps run here, in this process, where the fault is injected)
    monkeypatch.setattr(type(b.orchestrator), "start_batch", lambda self, batch_id: None)
    people = [{"recipient_id": f"r{i}", "first_name": f"Name {i}"} for i in range(3)]
    lt = templates.materialize(b, template)
    r1 = plan_recipient(lt, None, Row(2, people[1]), named=False)
    assert isinstance(r1, RecipientJob)
    # GIVEN the disk fills up whenever r1's video is written
    fault = DiskFault(monkeypatch, b.blobs.root, PurePosixPath(r1.output_key).name)
    # WHEN the batch runs
    req = batches.BatchRequest(template_id="tiny", records=people)
    batch = batches.create_batch(b, req)
    batches.plan_batch(b, batch.id)
    for item in batches.read_items(b, batches.get_batch(b, batch.id)):
        batches.render_item(b, batch.id, item)
    counts = batches.finalize_batch(b, batch.id)
    # THEN r1 alone failed, with the storage error recorded on its result
    assert counts == {"rendered": 2, "cached": 0, "failed": 1}
    results = {r.recipient_id: r for _, r in b.results.list_results(batch.id)}
    failed = results["r1"]
    assert failed.status is Status.failed and failed.code == "storage_failed"
    assert failed.reason is not None
    assert f"disk full (ENOSPC) writing {r1.output_key}" in failed.reason
    assert fault.hits == 3 and len(slept) == 2
    # AND the others' videos are stored, r1's is not, and nothing half-written is left
    for rid in ("r0", "r2"):
        output = results[rid].output_key
        assert results[rid].status is Status.rendered
        assert output is not None and b.blobs.exists(output)
    assert not b.blobs.exists(r1.output_key)
    assert leftovers(b.blobs.root) == []
    assert batches.get_batch(b, batch.id).state == "done"


def test_an_upload_to_a_full_disk_is_a_503_naming_the_reason(
    local_app: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    b = bootstrap.backends()
    assert isinstance(b.blobs, LocalBlobStore)
    monkeypatch.setattr(b.blobs, "retry", Retry(attempts=2, sleep=lambda s: None))
    DiskFault(monkeypatch, b.blobs.root, "people.csv")
    response = local_app.http.put(
        "/uploads/people.csv",
        headers={"x-api-key": API_KEY, "content-type": "text/csv"},
        body=b"first_name\nAda\n",
    )
    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"] == "30"
    error = json.loads(response.body)["error"]
    assert error["code"] == "storage_failed"
    assert "disk full (ENOSPC) writing uploads/" in error["message"]
    assert leftovers(b.blobs.root) == []


# ── S3: botocore's retries, then a StorageError; a failed multipart upload is aborted ──────


class S3Fault:
    """The first `times` calls of `operation` (None: every call) answer an S3 error."""

    def __init__(
        self,
        client: Any,
        operation: str,
        *,
        times: int | None = None,
        status: int = 503,
        code: str = "SlowDown",
        message: str = "Please reduce your request rate.",
    ) -> None:
        self.calls = 0
        self.failed = 0
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"

        def answer(request: Any, **_: Any) -> AWSResponse | None:
            self.calls += 1
            if times is not None and self.failed >= times:
                return None  # on to moto
            self.failed += 1
            # botocore offers the request to every before-send handler: aimed elsewhere, moto's
            # S3 does not see (and store) the request S3 refused.
            url, request.url = request.url, "http://s3-fault.invalid/"
            headers = {"Content-Type": "application/xml"}
            return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]

        client.meta.events.register_first(f"before-send.s3.{operation}", answer)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> Iterator[Any]:
    """A client as bootstrap builds it, with 3 attempts in botocore's standard retry mode; the
    waits between them recorded, not slept."""
    with mock_aws():
        create_bucket(BUCKET)
        monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append))
        retries: Any = {"mode": "standard", "total_max_attempts": 3}
        yield boto3.client("s3", config=Config(signature_version="s3v4", retries=retries))


def objects(client: Any) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_s3_slowdown_for_a_moment_is_retried(s3: Any, slept: list[float]) -> None:
    fault = S3Fault(s3, "PutObject", times=2)
    S3BlobStore(s3, BUCKET).put_bytes("videos/v.mp4", b"video")
    assert (fault.calls, len(slept)) == (3, 2)
    assert s3.get_object(Bucket=BUCKET, Key="videos/v.mp4")["Body"].read() == b"video"


def test_s3_slowdown_that_lasts_is_reported(s3: Any, slept: list[float]) -> None:
    fault = S3Fault(s3, "PutObject")
    with pytest.raises(StorageError) as caught:
        S3BlobStore(s3, BUCKET).put_bytes("videos/v.mp4", b"video")
    assert fault.calls == 3 and len(slept) == 2
    message = str(caught.value)
    assert "S3 PutObject failed (SlowDown: Please reduce your request rate.)" in message
    assert "writing videos/v.mp4 after 3 attempts" in message
    assert objects(s3) == []


def test_s3_failed_multipart_upload_leaves_no_object_and_no_upload(
    s3: Any, slept: list[float], tmp_path: Path
) -> None:
    # GIVEN a file uploaded in parts, and an S3 whose UploadPart keeps failing
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(64 * 1024))
    fault = S3Fault(s3, "UploadPart", status=500, code="InternalError", message="We're sorry")
    store = S3BlobStore(s3, BUCKET, transfer=TransferConfig(multipart_threshold=1024))
    # WHEN the video is stored
    with pytest.raises(StorageError) as caught:
        store.put_file("videos/big.mp4", source)
    # THEN the error names the failing call, and S3 holds neither an object nor an upload
    assert "S3 UploadPart failed (InternalError: We're sorry) writing videos/big.mp4" in str(
        caught.value
    )
    assert fault.calls == 3
    assert objects(s3) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
