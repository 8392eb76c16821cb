"""BlobStore on an S3 bucket: a PUT is atomic, reads of a missing key raise KeyError.

Transient S3 failures (500, 503 SlowDown, throttling, a dropped connection) are retried by the
client itself: botocore's retry configuration (its mode and `max_attempts`) is the one retry
policy, so no second loop multiplies its attempts. What still fails is reported as a
StorageError naming the operation, the S3 error, the key and the attempts made. An object
appears whole or not at all: a single PUT is atomic, and a multipart upload becomes visible
only when completed — s3transfer aborts one that failed, and the bucket's lifecycle rule
(infra/) aborts one whose process died before it could.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageError

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client

# What S3 answers for a missing object: HeadObject and download_file say "404" (no body to
# carry a code), GetObject says "NoSuchKey".
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def _storage_error(exc: Exception, operation: str, key: str) -> StorageError:
    """A failed write as a StorageError: 'S3 PutObject failed (SlowDown: …) writing
    videos/x.mp4 after 5 attempts'."""
    cause = exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        meta = cause.response.get("ResponseMetadata", {})
        attempts = int(meta.get("RetryAttempts", 0)) + 1
        op = cause.operation_name or operation
        reason = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
        return StorageError(f"S3 {op} failed ({reason}) writing {key} after {tries}")
    return StorageError(f"S3 {operation} failed ({type(exc).__name__}: {exc}) writing {key}")


def _content_type(key: str) -> str:
    # CloudFront and presigned URLs serve the stored type: a video must say video/mp4 to play.
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class S3BlobStore:
    """Objects under `prefix + key` in `bucket`. `url` is signed by `signer` (CloudFront, see
    adapters/cloudfront.py) when given, else a presigned S3 GET valid `url_expiry` s.
    `transfer` tunes `put_file` (multipart threshold and part size)."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        url_expiry: int = 3600,
        prefix: str = "",
        signer: Callable[[str], str] | None = None,
        transfer: TransferConfig | None = None,
    ) -> None:
        if prefix.startswith("/") or "\\" in prefix or ".." in PurePosixPath(prefix).parts:
            raise ValueError(f"invalid key prefix: {prefix!r}")
        self.client = client
        self.bucket = bucket
        self.url_expiry = url_expiry
        self.prefix = prefix
        self.signer = signer
        self.transfer = transfer

    def object_key(self, key: str) -> str:
        """The S3 key of `key`; refuses the keys `LocalBlobStore.path` refuses."""
        pure = PurePosixPath(key)
        if not key or pure.is_absolute() or ".." in pure.parts or "\\" in key:
            raise ValueError(f"invalid blob key: {key!r}")
        return self.prefix + key

    def location(self, key: str) -> tuple[str, str]:
        """(bucket, object key): what a service reading the object itself needs (the
        Distributed Map's ItemReader)."""
        return self.bucket, self.object_key(key)

    def clean_partials(self) -> int:
        """Nothing to clean: an S3 object appears whole or not at all."""
        return 0

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def put_file(self, key: str, source: Path) -> None:
        # A single PUT or a completed multipart upload appears all at once: no partial object.
        object_key = self.object_key(key)
        try:
            self.client.upload_file(
                str(source),
                self.bucket,
                object_key,
                ExtraArgs={"ContentType": _content_type(key)},
                Config=self.transfer,
            )
        except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "upload", key) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        object_key = self.object_key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key,
                Body=data,
                ContentType=_content_type(key),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "PutObject", key) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise
        with response["Body"] as body:
            return body.read()

    def fetch(self, key: str, scratch: Path) -> Path:
        """Download into `scratch/<sha1(key)[:12]>/<base name>`: the suffix is kept (callers
        read it) and two keys with one base name never share a file."""
        object_key = self.object_key(key)
        target = scratch / hashlib.sha1(key.encode()).hexdigest()[:12] / PurePosixPath(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # s3transfer writes a temporary file and renames it: never a half-written target.
            self.client.download_file(self.bucket, object_key, str(target))
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise
        return target

    def delete(self, key: str) -> None:
        """Remove the object, and every older version of it where the bucket keeps versions
        (an erasure must not leave a copy behind a delete marker)."""
        object_key = self.object_key(key)
        self.client.delete_object(Bucket=self.bucket, Key=object_key)
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=object_key
        )
        for page in pages:
            for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if version.get("Key") == object_key and version.get("VersionId"):
                    self.client.delete_object(
                        Bucket=self.bucket, Key=object_key, VersionId=version["VersionId"]
                    )

    def list(self, prefix: str = "") -> list[tuple[str, float]]:
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self.prefix)
                found.append((key, item["LastModified"].timestamp()))
        return found

    def url(self, key: str) -> str:
        if self.signer is not None:
            return self.signer(self.object_key(key))
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=self.url_expiry,
        )
