"""The one wiring point: builds the adapters from settings, once per process.

A `Wiring` is what one set of settings builds: the backends, the stream service, the relay.
The process has one current wiring, made from the environment on first use (Lambda, tests) or
installed by the CLI from settings it was given (`use`), which win over the environment. The
core never reads settings: it receives what is built here (a render configuration, a fetcher,
the public URL) through `Backends`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.backends import Backends
from chalicelib.render.cache import SegmentCache
from chalicelib.render.config import RenderConfig
from chalicelib.render.disk import DiskBudget
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.adapters.fetcher import HttpFetcher
    from chalicelib.connectors.base import Connector
    from chalicelib.connectors.relay import Relay, RelayWorker
    from chalicelib.landing.stream import Streams
    from chalicelib.ports import FailedInvocations, SpeechSynth


def render_config(s: Settings) -> RenderConfig:
    """The render configuration the settings describe."""
    return RenderConfig(
        ffmpeg=s.ffmpeg or "",
        ffmpeg_version=s.ffmpeg_version,
        timeout=s.render_timeout,
        threads=s.ffmpeg_threads,
        x264_preset=s.x264_preset,
        x264_crf=s.x264_crf,
        work_dir=s.work_dir.resolve() if s.work_dir else None,
        speech=speech_engine(s),
    )


def fetched_dir(s: Settings) -> Path:
    """Where fetched copies are kept: work_dir/fetched, else (AWS: no home to write in) the
    temporary folder, else cache_dir/fetched."""
    if s.work_dir is not None:
        return (s.work_dir / "fetched").resolve()
    if s.backend == "aws":
        return (Path(tempfile.gettempdir()) / "reel" / "fetched").resolve()
    return (s.cache_dir / "fetched").resolve()


def tier_dir(s: Settings) -> Path:
    """AWS: the render function's local copies of S3 segments (/tmp, warm between calls)."""
    return (s.work_dir or Path(tempfile.gettempdir()) / "reel").resolve() / "segment-tier"


def _cache_root(s: Settings) -> Path:
    return tier_dir(s) if s.backend == "aws" else s.cache_dir.resolve()


@lru_cache(maxsize=8)
def _budget(folders: tuple[Path, ...], max_bytes: int, lock_dir: Path) -> DiskBudget:
    return DiskBudget(folders, max_bytes, lock_dir=lock_dir)


def disk_budget(s: Settings) -> DiskBudget:
    """One budget (REEL_CACHE_MAX_BYTES) over the segment cache's local files and the fetched
    copies, shared by the cache and the fetcher of one process."""
    root = _cache_root(s)
    folders = (root / "segments", root / "audio", fetched_dir(s))
    return _budget(folders, s.cache_max_bytes, root)


def fetcher(s: Settings) -> HttpFetcher:
    """The guarded fetcher of asset URLs in data, with the settings' policy."""
    from chalicelib.adapters.addresses import parse_networks
    from chalicelib.adapters.fetcher import FetchPolicy, HttpFetcher

    return HttpFetcher(
        FetchPolicy(
            store=fetched_dir(s),
            budget=disk_budget(s),
            allow_http=s.fetch_allow_http,
            allow_networks=parse_networks(s.fetch_allow_networks),
            max_bytes=s.fetch_max_bytes,
            connect_timeout=s.fetch_connect_timeout,
            read_timeout=s.fetch_read_timeout,
            deadline=s.fetch_deadline,
            ca_bundle=str(s.fetch_ca_bundle) if s.fetch_ca_bundle else None,
        )
    )


def speech_engine(s: Settings) -> str:
    """The speech engine the settings choose: espeak, polly or piper."""
    return s.speech_engine or (
        "polly" if s.backend == "aws" else "piper" if s.piper_model else "espeak"
    )


def speech(s: Settings) -> SpeechSynth:
    """The speech engine the settings choose (see `Settings.speech_engine`). A Piper engine
    whose model is missing raises SpeechError naming REEL_PIPER_MODEL."""
    engine = speech_engine(s)
    if engine == "polly":
        import boto3
        from botocore.config import Config

        from chalicelib.adapters.polly import PollySpeech

        # A line that takes longer is a failed recipient (voice_failed), not a stuck worker.
        timeouts = Config(
            connect_timeout=5, read_timeout=s.speech_timeout, retries={"max_attempts": 3}
        )
        client = boto3.client("polly", region_name=s.region, config=timeouts)
        return PollySpeech(client, engine=s.polly_engine)
    if engine == "piper":
        from chalicelib.adapters.piper import PiperSpeech
        from chalicelib.speech import SpeechError

        if s.piper_model is None:
            raise SpeechError("REEL_PIPER_MODEL: piper needs the path of a .onnx voice model")
        return PiperSpeech(s.piper_model, timeout=s.speech_timeout)
    from chalicelib.adapters.espeak import EspeakSpeech

    return EspeakSpeech(timeout=s.speech_timeout)


@lru_cache(maxsize=8)
def _segment_cache(root: Path, budget: DiskBudget | None) -> SegmentCache:
    return SegmentCache(LocalBlobStore(root), disk=budget)


def segment_cache(root: Path | None = None) -> SegmentCache:
    """The local segment cache: `root`, else the current settings' `cache_dir` (kept under
    REEL_CACHE_MAX_BYTES with the fetched copies)."""
    s = settings()
    if root is None or root.resolve() == s.cache_dir.resolve():
        local = s.model_copy(update={"backend": "local"})
        return _segment_cache(s.cache_dir.resolve(), disk_budget(local))
    return _segment_cache(root.resolve(), None)


def _job_stores(store: Any) -> dict[str, Any]:
    """One adapter (SQLite, DynamoDB) serving every job-store concern of `Backends`."""
    return dict.fromkeys(("templates", "jobs", "results", "recipients", "claims"), store)


def lazy_speech(s: Settings) -> SpeechSynth:
    """The settings' speech engine, built when first asked to speak (or check a voice)."""
    from chalicelib.adapters.lazy_speech import LazySpeech

    return LazySpeech(lambda: speech(s))


@dataclass(frozen=True)
class Spec:
    """What a wiring is built from: the settings, and for `reel batch` the output folder (its
    videos, posters and records live there instead of the data directory)."""

    settings: Settings
    folder: Path | None = None


class Wiring:
    """The adapters, services and connectors one set of settings builds (each on first use)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.settings = spec.settings
        self._lock = threading.RLock()
        self._backends: Backends | None = None
        self._streams: Streams | None = None

    @property
    def backends(self) -> Backends:
        with self._lock:  # built once, whichever request thread comes first
            if self._backends is None:
                aws = self.settings.backend == "aws" and self.spec.folder is None
                self._backends = self._aws() if aws else self._local()
            return self._backends

    def _local(self) -> Backends:
        from chalicelib.adapters.local_runner import LocalOrchestrator
        from chalicelib.adapters.sqlite import (
            SqliteDeliveryStore,
            SqliteEventStore,
            SqliteJobStore,
            SqliteOutbox,
        )

        s = self.settings
        if self.spec.folder is not None:  # `reel batch`: outputs in the folder, no pages
            folder = self.spec.folder.resolve()
            data = folder / ".reel"
            blobs = LocalBlobStore(folder)
            secret = ""
        else:
            data = s.data_dir.resolve()
            secret = s.tracking_secret or _local_secret(data / "tracking.key")
            # Media URLs signed with the tracking secret, expiring like CloudFront's (GET /files).
            blobs = LocalBlobStore(
                data / "blobs",
                base_url=s.public_url.rstrip("/") + "/files",
                secret=secret,
                url_expiry=s.url_expiry,
            )
        db = data / "reel.db"
        jobs = SqliteJobStore(db)
        return Backends(
            blobs=blobs,
            **_job_stores(jobs),
            cache=_segment_cache(s.cache_dir.resolve(), disk_budget(s)),
            orchestrator=LocalOrchestrator(
                s.workers,
                jobs=jobs,
                backends=lambda: self.backends,
                worker=(worker_backends, self.spec),
            ),
            scratch=(s.work_dir or data / "scratch").resolve(),
            events=SqliteEventStore(db),
            queue=SqliteOutbox(db),
            secret=secret,
            deliveries=SqliteDeliveryStore(db),
            render=render_config(s),
            fetcher=fetcher(s),
            public_url=s.public_url,
            speech=lazy_speech(s),
        )

    def _aws(self) -> Backends:
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

        s = self.settings
        # Clients of boto3's default session (region from settings, else boto3's own lookup).
        # SigV4 puts the expiry in presigned URLs, and is what every region accepts.
        s3 = boto3.client("s3", region_name=s.region, config=Config(signature_version="s3v4"))
        signer = None
        if s.cdn_domain and s.cdn_key_id and s.cdn_private_key:
            from chalicelib.adapters.cloudfront import CloudFrontUrls

            signer = CloudFrontUrls(
                s.cdn_domain, s.cdn_key_id, s.cdn_private_key, expiry=s.url_expiry
            )
        blobs = S3BlobStore(s3, s.bucket, url_expiry=s.url_expiry, signer=signer)
        jobs = DynamoJobStore(boto3.client("dynamodb", region_name=s.region), s.table)
        return Backends(
            blobs=blobs,
            **_job_stores(jobs),
            cache=SegmentCache(blobs, disk=disk_budget(s), tier=tier_dir(s)),
            orchestrator=StepFunctionsOrchestrator(
                boto3.client("stepfunctions", region_name=s.region),
                boto3.client("lambda", region_name=s.region),
                state_machine_arn=s.state_machine_arn,
                render_function=s.render_function,
            ),
            scratch=(s.work_dir or Path(tempfile.gettempdir()) / "reel").resolve(),
            events=DynamoEventStore(
                boto3.client("dynamodb", region_name=s.region),
                s.events_table,
                ttl_days=s.event_ttl_days,
            ),
            queue=SqsQueue(boto3.client("sqs", region_name=s.region), s.relay_queue_url),
            secret=s.tracking_secret,  # from the environment (SSM / Secrets Manager on deploy)
            deliveries=DynamoDeliveryStore(boto3.client("dynamodb", region_name=s.region), s.table),
            render=render_config(s),
            fetcher=fetcher(s),
            public_url=s.public_url,
            speech=lazy_speech(s),
        )

    @property
    def streams(self) -> Streams:
        """The HLS stream service: renders chunks here, or (AWS) through the render Lambda."""
        with self._lock:
            if self._streams is None:
                self._streams = self._make_streams()
            return self._streams

    def _make_streams(self) -> Streams:
        from chalicelib.landing.stream import (
            GroupRenderer,
            LambdaRenders,
            Renders,
            Streams,
            ThreadRenders,
        )

        s, b = self.settings, self.backends
        renders: Renders
        if s.backend == "aws":
            import boto3

            client = boto3.client("lambda", region_name=s.region)
            renders = LambdaRenders(
                client,
                s.render_function,
                claims=b.claims,
                store=b.cache.store,
                lease=s.stream_lease,
            )
            return Streams(b, renders, wait=s.stream_wait, cdn=True)
        renders = ThreadRenders(GroupRenderer(b.cache, b.render), b.cache.store)
        return Streams(b, renders)

    @cached_property
    def connectors(self) -> dict[str, Connector]:
        """The connectors configured in settings, by name (webhook, hubspot, salesforce)."""
        s = self.settings
        found: dict[str, Connector] = {}
        if s.webhook_url:
            from chalicelib.connectors.webhook import WebhookConnector

            keys = [x.strip() for x in s.webhook_secrets.split(",") if x.strip()]
            found["webhook"] = WebhookConnector(s.webhook_url, keys)
        if s.hubspot_token:
            from chalicelib.connectors.hubspot import HubSpotConnector

            found["hubspot"] = HubSpotConnector(s.hubspot_token, base_url=s.hubspot_base_url)
        if s.salesforce_instance_url and s.salesforce_token:
            from chalicelib.connectors.salesforce import SalesforceConnector

            found["salesforce"] = SalesforceConnector(s.salesforce_instance_url, s.salesforce_token)
        return found

    @cached_property
    def failures(self) -> FailedInvocations:
        """Failed asynchronous invocations: the AWS backend's on-failure queues; none locally,
        where nothing is invoked asynchronously."""
        from chalicelib.adapters.failures import NoFailedInvocations, SqsFailedInvocations

        s = self.settings
        if s.backend != "aws":
            return NoFailedInvocations()
        import boto3

        return SqsFailedInvocations(
            boto3.client("sqs", region_name=s.region),
            boto3.client("lambda", region_name=s.region),
            {
                "incoming": s.incoming_dead_letter_queue_url,
                "render": s.render_dead_letter_queue_url,
            },
        )

    @property
    def relay(self) -> Relay:
        """The relay over these backends and the configured connectors."""
        from chalicelib.connectors.relay import Relay

        return Relay(self.backends, self.connectors, max_attempts=self.settings.relay_max_attempts)

    def relay_worker(self) -> RelayWorker | None:
        """The thread that drains the local outbox to the connectors (`reel serve`); None on
        AWS, where the relay Lambda is fed by SQS."""
        if self.settings.backend == "aws":
            return None
        from chalicelib.adapters.sqlite import SqliteOutbox
        from chalicelib.connectors.relay import RelayWorker

        outbox = self.backends.queue
        assert isinstance(outbox, SqliteOutbox)  # the local backend's queue
        return RelayWorker(self.relay, outbox)

    def close(self) -> None:
        """Stop what this wiring started (the local render processes)."""
        with self._lock:
            built = self._backends
        if built is not None:
            built.orchestrator.close()


_current: Wiring | None = None
_guard = threading.Lock()


def use(s: Settings | None = None, *, folder: Path | None = None) -> Wiring:
    """Make the process's wiring from `s` (default: the environment's settings), closing the
    previous one. The CLI calls it with the settings its options give."""
    global _current
    wiring = Wiring(Spec(s if s is not None else get_settings(), folder))
    with _guard:
        previous, _current = _current, wiring
    if previous is not None:
        previous.close()
    return wiring


def current() -> Wiring:
    """The process's wiring (made from the environment on first use, once: request threads
    may all ask at the start)."""
    global _current
    with _guard:
        if _current is None:
            _current = Wiring(Spec(get_settings()))
        return _current


def settings() -> Settings:
    return current().settings


def backends() -> Backends:
    return current().backends


def streams() -> Streams:
    return current().streams


def connectors() -> dict[str, Connector]:
    return current().connectors


def failures() -> FailedInvocations:
    return current().failures


def relay() -> Relay:
    return current().relay


def worker_backends(spec: Spec) -> Backends:
    """In a local render process: the backends of the wiring that started it (its settings
    travel with the job, not through the environment)."""
    return use(spec.settings, folder=spec.folder).backends


@contextmanager
def folder(out_dir: Path, *, workers: int, cache_dir: Path | None = None) -> Iterator[Backends]:
    """The backends of a `reel batch` run into `out_dir` (its render processes stopped at the
    end); the settings are the environment's, `workers` and `cache_dir` given."""
    overrides: dict[str, object] = {"workers": workers, "backend": "local"}
    if cache_dir is not None:
        overrides["cache_dir"] = cache_dir
    s = get_settings().model_copy(update=overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    wiring = Wiring(Spec(s, out_dir.resolve()))
    try:
        yield wiring.backends
    finally:
        wiring.close()


@lru_cache(maxsize=16)
def idempotency(purpose: str) -> DynamoDBPersistenceLayer:
    """The Lambda handlers' Powertools idempotency store (`REEL_IDEMPOTENCY_TABLE`), one per
    purpose: a Powertools layer keeps the config it was first used with."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    s = settings()
    session = boto3.session.Session(region_name=s.region)
    return DynamoDBPersistenceLayer(table_name=s.idempotency_table, boto3_session=session)


def reset() -> None:
    """Forget the wiring (tests, after changing the environment): the local orchestrator's
    render processes are stopped, and the settings are read again on next use."""
    global _current
    with _guard:
        previous, _current = _current, None
    if previous is not None:
        previous.close()
    idempotency.cache_clear()
    get_settings.cache_clear()


def _local_secret(path: Path) -> str:
    """The local backend's tracking key: made once, kept beside the data (mode 600)."""
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
