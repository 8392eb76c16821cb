"""Backends: the adapters of the ports (chalicelib/ports.py) that one process works with, and
the configuration its use cases need; built once by `bootstrap` from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chalicelib.ports import (
    AssetFetcher,
    BlobStore,
    ClaimStore,
    DeliveryStore,
    EventStore,
    JobStore,
    Orchestrator,
    Queue,
    RecipientStore,
    ResultStore,
    SpeechSynth,
    TemplateStore,
)
from chalicelib.render.cache import SegmentCache
from chalicelib.render.config import RenderConfig


@dataclass(frozen=True)
class Backends:
    """The adapters one process works with, and what its use cases need to know. The job-store
    concerns (templates, jobs, results, recipients, claims) may share one adapter."""

    blobs: BlobStore
    templates: TemplateStore
    jobs: JobStore
    results: ResultStore
    recipients: RecipientStore
    claims: ClaimStore
    cache: SegmentCache
    orchestrator: Orchestrator
    scratch: Path  # where template bundles are unpacked and sources downloaded
    events: EventStore
    queue: Queue  # the relay queue toward the CRM connectors
    secret: str  # the tracking HMAC key
    deliveries: DeliveryStore  # the relay's deliveries to the connectors
    render: RenderConfig  # ffmpeg, its timeout and threads, the encoding settings
    fetcher: AssetFetcher | None  # asset URLs in data; None: refused
    public_url: str  # where the API answers: the base of landing-page links
    speech: SpeechSynth | None = None  # the voice-over engine; None: voice layers fail
