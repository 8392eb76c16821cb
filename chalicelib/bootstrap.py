"""The one wiring point: builds the adapters from settings, once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.pipeline.service import Backends
from chalicelib.render.cache import SegmentCache
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.connectors.base import Connector
    from chalicelib.connectors.relay import Relay
    from chalicelib.delivery.stream import Streams


def segment_cache(root: Path | None = None) -> SegmentCache:
    """The segment cache: a local directory (`root`, else `REEL_CACHE_DIR`)."""
    return _segment_cache((root or get_settings().cache_dir).resolve())


@lru_cache(maxsize=8)
def _segment_cache(root: Path) -> SegmentCache:
    return SegmentCache(LocalBlobStore(root))


@lru_cache(maxsize=8)
def output_store(root: Path) -> LocalBlobStore:
    """Where a batch's videos and posters go."""
    return LocalBlobStore(root)


@lru_cache(maxsize=1)
def backends() -> Backends:
    """The process's backends, chosen by `REEL_BACKEND` (local, or aws)."""
    s = get_settings()
    if s.backend == "aws":
        return _aws_backends()
    from chalicelib.adapters.local_runner import LocalOrchestrator
    from chalicelib.adapters.sqlite import (
        SqliteDeliveryStore,
        SqliteEventStore,
        SqliteJobStore,
        SqliteOutbox,
    )

    data = s.data_dir.resolve()
    db = data / "reel.db"
    secret = s.tracking_secret or _local_secret(data / "tracking.key")
    return Backends(
        # Media URLs signed with the tracking secret, expiring like CloudFront's (GET /files).
        blobs=LocalBlobStore(
            data / "blobs",
            base_url=s.public_url.rstrip("/") + "/files",
            secret=secret,
            url_expiry=s.url_expiry,
        ),
        jobs=SqliteJobStore(db),
        cache=segment_cache(),
        orchestrator=LocalOrchestrator(s.workers),
        scratch=(s.work_dir or data / "scratch").resolve(),
        events=SqliteEventStore(db),
        queue=SqliteOutbox(db),
        secret=secret,
        deliveries=SqliteDeliveryStore(db),
    )


def _local_secret(path: Path) -> str:
    """The local backend's tracking key: made once, kept beside the data (mode 600)."""
    import os
    import secrets

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _aws_backends() -> Backends:
    import tempfile

    import boto3
    from botocore.config import Config

    from chalicelib.adapters.dynamodb import (
        DynamoDeliveryStore,
        DynamoEventStore,
        DynamoJobStore,
    )
    from chalicelib.adapters.s3 import S3BlobStore
    from chalicelib.adapters.sqs import SqsQueue
    from chalicelib.adapters.stepfunctions import StepFunctionsOrchestrator

    s = get_settings()
    # Clients of boto3's default session (region from settings, else boto3's own lookup).
    # SigV4 puts the expiry in presigned URLs, and is what every region accepts.
    s3 = boto3.client("s3", region_name=s.region, config=Config(signature_version="s3v4"))
    signer = None
    if s.cdn_domain and s.cdn_key_id and s.cdn_private_key:
        from chalicelib.adapters.cloudfront import CloudFrontUrls

        signer = CloudFrontUrls(s.cdn_domain, s.cdn_key_id, s.cdn_private_key, expiry=s.url_expiry)
    blobs = S3BlobStore(s3, s.bucket, url_expiry=s.url_expiry, signer=signer)
    return Backends(
        blobs=blobs,
        jobs=DynamoJobStore(boto3.client("dynamodb", region_name=s.region), s.table),
        cache=SegmentCache(blobs),
        orchestrator=StepFunctionsOrchestrator(
            boto3.client("stepfunctions", region_name=s.region),
            boto3.client("lambda", region_name=s.region),
            state_machine_arn=s.state_machine_arn,
            render_function=s.render_function,
        ),
        scratch=(s.work_dir or Path(tempfile.gettempdir()) / "reel").resolve(),
        events=DynamoEventStore(boto3.client("dynamodb", region_name=s.region), s.events_table),
        queue=SqsQueue(boto3.client("sqs", region_name=s.region), s.relay_queue_url),
        secret=s.tracking_secret,  # from the environment (SSM / Secrets Manager on deploy)
        deliveries=DynamoDeliveryStore(boto3.client("dynamodb", region_name=s.region), s.table),
    )


@lru_cache(maxsize=1)
def streams() -> Streams:
    """The process's HLS stream service: renders chunks here, or (AWS) through the Lambda."""
    from chalicelib.delivery.stream import LambdaBackend, LocalBackend, RenderBackend, Streams

    s, b = get_settings(), backends()
    backend: RenderBackend
    if s.backend == "aws":
        import boto3

        client = boto3.client("lambda", region_name=s.region)
        backend = LambdaBackend(client, s.render_function, jobs=b.jobs, store=b.cache.store)
    else:
        backend = LocalBackend(b.cache)
    return Streams(b, backend, cdn=s.backend == "aws")


@lru_cache(maxsize=16)
def idempotency(purpose: str) -> DynamoDBPersistenceLayer:
    """The Lambda handlers' Powertools idempotency store (`REEL_IDEMPOTENCY_TABLE`), one per
    purpose: a Powertools layer keeps the config it was first used with."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    s = get_settings()
    session = boto3.session.Session(region_name=s.region)
    return DynamoDBPersistenceLayer(table_name=s.idempotency_table, boto3_session=session)


def reset() -> None:
    """Forget the built backends (tests, and `reel serve` after changing settings); the local
    orchestrator's render processes are stopped."""
    if backends.cache_info().currsize:
        shutdown = getattr(backends().orchestrator, "shutdown", None)
        if shutdown is not None:
            shutdown()
    backends.cache_clear()
    streams.cache_clear()
    idempotency.cache_clear()
    get_settings.cache_clear()


def connectors() -> dict[str, Connector]:
    """The connectors configured in settings, by name (webhook, hubspot, salesforce)."""
    s = get_settings()
    found: dict[str, Connector] = {}
    if s.webhook_url:
        from chalicelib.connectors.webhook import WebhookConnector

        secrets = [x.strip() for x in s.webhook_secrets.split(",") if x.strip()]
        found["webhook"] = WebhookConnector(s.webhook_url, secrets)
    if s.hubspot_token:
        from chalicelib.connectors.hubspot import HubSpotConnector

        found["hubspot"] = HubSpotConnector(s.hubspot_token, base_url=s.hubspot_base_url)
    if s.salesforce_instance_url and s.salesforce_token:
        from chalicelib.connectors.salesforce import SalesforceConnector

        found["salesforce"] = SalesforceConnector(s.salesforce_instance_url, s.salesforce_token)
    return found


def relay() -> Relay:
    """The relay over the process's backends and the configured connectors."""
    from chalicelib.connectors.relay import Relay

    return Relay(backends(), connectors(), max_attempts=get_settings().relay_max_attempts)
