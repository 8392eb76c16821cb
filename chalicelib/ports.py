"""Ports: the small interfaces the domain talks to; adapters/ holds their backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.adapters.failures import FailedInvocation
    from chalicelib.connectors.base import Delivery, DeliveryStatus, Outgoing
    from chalicelib.landing.pages import Page
    from chalicelib.pipeline.jobs import (
        BatchRecord,
        JobState,
        RecipientData,
        RecipientResult,
        RenderRecord,
        TemplateRecord,
    )
    from chalicelib.render.sniff import Kind
    from chalicelib.speech import Speech, SpeechRequest
    from chalicelib.tracking.events import Event


class BlobStore(Protocol):
    """Immutable-ish objects under string keys ('segments/ab12….mp4').

    Writes are atomic: a reader never sees a half-written object under its final key, and a
    crash mid-write leaves nothing under it. Keys use '/' separators and never start with '/'.
    """

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Store the file at `source` under `key` (replacing any previous object)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; KeyError if absent."""
        ...

    def fetch(self, key: str, scratch: Path) -> Path:
        """A local file holding the object: its own path for a local store, else a download
        into the `scratch` directory. KeyError if absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def url(self, key: str) -> str:
        """Where a client can read the object (a file:// URL locally, a signed URL on AWS)."""
        ...

    def location(self, key: str) -> tuple[str, str]:
        """(container, name) of the object for a service that reads it itself: the bucket and
        object key on S3 (the Distributed Map's ItemReader), the root folder and relative path
        locally."""
        ...

    def list(self, prefix: str = "") -> list[tuple[str, float]]:
        """(key, last modified in epoch seconds) of every object under `prefix` (erasure and
        retention sweeps; every version of it is removed by `delete` where the store keeps
        versions)."""
        ...

    def clean_partials(self) -> int:
        """Remove what writers that died mid-write left behind (never a final key); returns
        how many. Run at start, before resuming work."""
        ...


class TemplateStore(Protocol):
    """Registered template versions (SQLite, or DynamoDB)."""

    def put_template(self, record: TemplateRecord) -> None:
        """Store a template version and make it the template's latest."""
        ...

    def get_template(self, template_id: str, version: str | None = None) -> TemplateRecord | None:
        """A version of a template (the latest when `version` is None)."""
        ...


class JobStore(Protocol):
    """Renders and batches, and where each is.

    Status changes are conditional writes: `set_state` moves a job only from the states it
    names, so two workers racing on one job cannot both win, and a late retry cannot move a
    finished job back.
    """

    def create_render(self, record: RenderRecord) -> None:
        """Store a new render; ValueError if its id exists."""
        ...

    def get_render(self, render_id: str) -> RenderRecord | None: ...

    def create_batch(self, record: BatchRecord) -> None:
        """Store a new batch; ValueError if its id exists."""
        ...

    def get_batch(self, batch_id: str) -> BatchRecord | None: ...

    def set_state(
        self,
        kind: str,
        job_id: str,
        state: JobState,
        *,
        expect: tuple[JobState, ...],
        **fields: Any,
    ) -> bool:
        """Move render/batch `job_id` to `state` (and set `fields`) if it is in `expect`.

        `kind` is "render" or "batch". Returns False, changing nothing, otherwise.
        """
        ...


class ResultStore(Protocol):
    """Per-recipient results of batches: each item recorded once."""

    def put_result(self, batch_id: str, index: int, result: RecipientResult) -> bool:
        """Record item `index` of a batch; the first write wins (False for a duplicate).
        KeyError if the batch does not exist."""
        ...

    def list_results(
        self, batch_id: str, *, after: int = -1, limit: int = 100
    ) -> list[tuple[int, RecipientResult]]:
        """Results with index > `after`, in index order, at most `limit`."""
        ...

    def count_results(self, batch_id: str) -> dict[str, int]:
        """How many results of the batch have each status."""
        ...

    def scrub_results(self, batch_id: str, recipient_id: str) -> int:
        """Blank a recipient's results in a batch (erasure: the batch's counts stay, their id,
        media keys and page go); returns how many."""
        ...


class RecipientStore(Protocol):
    """Recipients of a campaign: their current record and their landing pages."""

    def put_page(self, page: Page) -> None:
        """Store a recipient's landing page; it becomes the recipient's current page in its
        campaign. ValueError if the token exists."""
        ...

    def get_page(self, token: str) -> Page | None: ...

    def campaign_pages(self, campaign_id: str) -> list[Page]:
        """The current page of every recipient of a campaign (the "sent" of its funnel)."""
        ...

    def put_recipient(self, record: RecipientData) -> None:
        """Store (replace) a recipient's current record in its campaign."""
        ...

    def get_recipient(self, campaign_id: str, recipient_id: str) -> RecipientData | None: ...

    # ── privacy: erasure, export and retention (services/privacy.py) ──

    def recipient_campaigns(self, recipient_id: str) -> list[str]:
        """The campaigns holding a record or a page of the recipient."""
        ...

    def recipient_pages(self, campaign_id: str, recipient_id: str) -> list[Page]:
        """Every page of the recipient in the campaign (old ones too), oldest first."""
        ...

    def erase_recipient(self, campaign_id: str, recipient_id: str) -> list[str]:
        """Delete the recipient's record and pages; their tokens answer 410 Gone from now on
        (`erased`). Returns the tokens."""
        ...

    def erased(self, token: str) -> bool:
        """True when the token's page was erased."""
        ...

    def stale_recipients(self, campaign_id: str, before: float) -> list[str]:
        """Recipients of the campaign whose record was last updated before `before`."""
        ...


class ClaimStore(Protocol):
    """Keys claimed once until they expire (replay protection, single-flight renders)."""

    def claim(self, key: str, expires_at: float) -> bool:
        """First claim wins: True for the first caller of `key`, False for every later one until
        `expires_at` (epoch seconds) has passed; then the key may be claimed afresh. Inbound
        hooks claim each message's replay key so a replayed message starts nothing."""
        ...


class EventStore(Protocol):
    """The player's events (SQLite, or DynamoDB), each stored once (`Event.key`)."""

    def add(self, events: list[Event]) -> list[Event]:
        """Store the events not seen before; returns those (duplicates are dropped)."""
        ...

    def for_campaign(self, campaign_id: str) -> list[Event]:
        """Every event of a campaign (any order)."""
        ...

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Event]:
        """Every event of one recipient of a campaign (any order)."""
        ...

    def delete_recipient(self, campaign_id: str, recipient_id: str) -> int:
        """Delete a recipient's events; returns how many."""
        ...

    def delete_before(self, campaign_id: str, before: float) -> int:
        """Delete a campaign's events received before `before` (retention); returns how many."""
        ...


class Queue(Protocol):
    """The relay queue of stored events, toward the CRM connectors (a SQLite outbox, or SQS)."""

    def put(self, messages: list[dict[str, Any]]) -> None:
        """Enqueue JSON-able messages (at least once)."""
        ...


class Orchestrator(Protocol):
    """Runs the work the API accepted: the local process pool, or Lambda/Step Functions."""

    def start_render(self, render_id: str) -> None:
        """Render a stored RenderRecord in the background."""
        ...

    def start_batch(self, batch_id: str) -> None:
        """Plan, render and finalize a stored BatchRecord in the background."""
        ...

    def resume(self) -> int:
        """Start again the renders and batches a stopped process left unfinished; returns how
        many (0 where the platform resumes them itself, as Step Functions does)."""
        ...

    def wait(self, timeout: float | None = None) -> None:
        """Block until the work started so far in this process is finished (a no-op where it
        runs elsewhere)."""
        ...

    def close(self) -> None:
        """Stop: work in hand finishes or is left to `resume`; nothing new starts."""
        ...


class DeliveryStore(Protocol):
    """The relay's deliveries (SQLite, or DynamoDB): what to send to which connector, and how
    far each got. A delivery's key is its idempotency key: adding it twice keeps the first."""

    def add(self, outgoing: list[Outgoing], now: float) -> int:
        """Store new deliveries as pending, due now; returns how many were new."""
        ...

    def get(self, key: str) -> Delivery | None: ...

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose `next_at` has come, oldest first."""
        ...

    def save(self, delivery: Delivery) -> None:
        """Store a delivery's new state (status, attempts, next_at, last_error)."""
        ...

    def by_status(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries (of one status), most recently updated first."""
        ...

    def disable(self, connector: str, reason: str) -> None:
        """Stop delivering to a connector (its endpoint answered 410 Gone)."""
        ...

    def enable(self, connector: str) -> None: ...

    def disabled(self) -> dict[str, str]:
        """Disabled connectors and why."""
        ...

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Delivery]:
        """Every delivery made (or to make) about a recipient of a campaign."""
        ...

    def delete(self, keys: list[str]) -> int:
        """Forget deliveries (erasure); returns how many were stored."""
        ...


class AssetFetcher(Protocol):
    """Brings a media file named by a URL in data to a local, checked copy (adapters/fetcher.py):
    the one door through which rendering's inputs may come from the network."""

    def fetch(self, url: str, kind: Kind, *, field: str) -> Path:
        """A local copy of the media at `url`, checked to be of `kind`; AssetError (naming
        `field`) says why it was refused."""
        ...


class FailedInvocations(Protocol):
    """Asynchronous invocations that failed for good (an upload's trigger, a stream's render),
    where they can be seen and retried."""

    def recent(self, limit: int = 50) -> list[FailedInvocation]:
        """The failures, newest first."""
        ...

    def retry(self, failure_id: str) -> FailedInvocation:
        """Run the failed invocation again and forget the failure; NotFoundError if unknown."""
        ...


class SpeechSynth(Protocol):
    """Text to speech (espeak-ng locally, Polly on AWS, Piper with a voice model)."""

    @property
    def name(self) -> str:
        """The engine's name (part of a spoken clip's cache key)."""
        ...

    def has_voice(self, voice: str) -> bool:
        """True when the engine can speak with `voice`."""
        ...

    def synthesize(self, request: SpeechRequest) -> Speech:
        """The line spoken (a mono WAV, and word/sentence marks where the engine gives
        them); SpeechError when the engine fails or times out."""
        ...
