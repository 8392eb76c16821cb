"""Privacy: erase one person (the right to be forgotten), export what Reel holds about them (the
right of access), and sweep what the campaigns' retention periods have outlived.

What an erasure removes, per campaign: the record and every page (their tokens answer 410 Gone),
the personal video, poster and email GIF of each page and render, the personal stream chunks,
stream posters and segments of their current record (shared static ones stay: nothing personal
in them), their events (kept as anonymous events where the campaign keeps aggregates), the
relay's deliveries and queued messages about them, their single renders, and their rows in the
sources and item lists kept for batches (results keep their status, not who). The SQLite file is
then rewritten (secure_delete and VACUUM) so no copy stays in free pages or the log. An audit
entry says who asked, when, and how much of what went: never who was erased.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import Field

from chalicelib.backends import Backends
from chalicelib.data.mapping import FieldMapping, recipient_id
from chalicelib.errors import NotFoundError, ReelError
from chalicelib.landing.pages import Page
from chalicelib.pipeline.jobs import BatchItem
from chalicelib.services import templates
from chalicelib.template.model import Strict, Template
from chalicelib.tracking.events import ANONYMOUS

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit/erasures/"
DAY = 86_400.0


class Erasure(Strict):
    """An audit entry: who asked, when, what kinds of data went and how much (no personal
    data: the recipient is not named; `id` is what the requester may keep to refer to it)."""

    id: str
    at: float = Field(description="epoch seconds")
    actor: str = Field(
        description="who asked: api:<fingerprint of the API key>, cli, or retention (a sweep)"
    )
    campaigns: list[str]
    removed: dict[str, int] = Field(description="how many of each kind were removed")


class RecipientExport(Strict):
    """Everything Reel holds about one recipient (GET /recipients/{id}/export)."""

    recipient_id: str
    exported_at: float
    campaigns: list[dict[str, Any]] = Field(
        description="per campaign: record, pages, events, deliveries, renders and media links"
    )


class SweepReport(Strict):
    """What one retention sweep removed, per kind."""

    at: float
    removed: dict[str, int]


# ── finding a person ───────────────────────────────────────────────────────────────────────


def _campaigns(b: Backends, rid: str, campaign_id: str | None) -> list[str]:
    found = b.recipients.recipient_campaigns(rid)
    if campaign_id is not None:
        found = [c for c in found if c == campaign_id]
    if not found:
        where = f" in campaign {campaign_id!r}" if campaign_id else ""
        raise NotFoundError(f"no such recipient{where}", field="recipient_id")
    return found


def _template(b: Backends, campaign_id: str) -> Template | None:
    try:
        return templates.materialize(b, templates.get_template(b, campaign_id)).template
    except NotFoundError:
        return None


def _gif_key(page: Page) -> str:
    return f"thumbnails/{PurePosixPath(page.video_key).stem}.gif"


def _renders(b: Backends, campaign_id: str, rid: str) -> list[Any]:
    renders_of = getattr(b.jobs, "renders_of", None)
    if renders_of is None:
        return []
    return [r for r in renders_of(campaign_id) if recipient_id(None, r.data, "api") == rid]


# ── erasure ────────────────────────────────────────────────────────────────────────────────


def erase(
    b: Backends, rid: str, campaign_id: str | None = None, *, actor: str, scrub: bool = True
) -> Erasure:
    """Erase a recipient from one campaign (or every campaign); NotFoundError naming
    `recipient_id` when there is nobody to erase. `scrub`: rewrite the SQLite file now (a
    sweep erasing many does it once, at its end)."""
    campaigns = _campaigns(b, rid, campaign_id)
    removed: Counter[str] = Counter()
    for campaign in campaigns:
        _erase_in(b, campaign, rid, removed)
    if scrub:
        _scrub(b)
    entry = Erasure(
        id="er_" + secrets.token_hex(12),
        at=time.time(),
        actor=actor,
        campaigns=campaigns,
        removed=dict(sorted(removed.items())),
    )
    stamp = datetime.fromtimestamp(entry.at, UTC).strftime("%Y%m%dT%H%M%SZ")
    b.blobs.put_bytes(f"{AUDIT_PREFIX}{stamp}-{entry.id}.json", entry.model_dump_json().encode())
    log.info("erasure %s by %s: %s", entry.id, actor, entry.removed)
    return entry


def _scrub(b: Backends) -> None:
    rewrite = getattr(b.jobs, "scrub", None)
    if rewrite is not None:  # SQLite: no copy of the deleted rows left in the file
        rewrite()


def _erase_in(b: Backends, campaign_id: str, rid: str, removed: Counter[str]) -> None:
    template = _template(b, campaign_id)
    known = b.recipients.get_recipient(campaign_id, rid)
    pages = b.recipients.recipient_pages(campaign_id, rid)
    # Media first: the record and pages are what tell us where it is.
    media = set()
    for page in pages:
        media |= {page.video_key, page.poster_key, _gif_key(page)}
    renders = _renders(b, campaign_id, rid)
    for render in renders:
        media |= {render.output_key, render.poster_key}
    for key in sorted(media):
        if b.blobs.exists(key):
            b.blobs.delete(key)
            removed["media"] += 1
    if known is not None and template is not None:
        removed["stream_media"] += _erase_stream(b, campaign_id, known.data)
    for render in renders:
        b.jobs.delete_render(render.id)  # type: ignore[attr-defined]
        removed["renders"] += 1
    # Events: anonymous where the campaign keeps aggregates, else gone.
    events = b.events.for_recipient(campaign_id, rid)
    b.events.delete_recipient(campaign_id, rid)
    if events and (template is None or template.tracking.keep_aggregates):
        view = secrets.token_urlsafe(12)  # one view, tied to nobody
        b.events.add(
            [e.model_copy(update={"recipient_id": ANONYMOUS, "view": view}) for e in events]
        )
        removed["events_anonymized"] += len(events)
    else:
        removed["events"] += len(events)
    deliveries = b.deliveries.for_recipient(campaign_id, rid)
    removed["deliveries"] += b.deliveries.delete([d.key for d in deliveries])
    forget = getattr(b.queue, "forget", None)  # the local outbox (SQS keeps nothing to find)
    if forget is not None:
        removed["queued"] += forget(campaign_id, rid)
    removed["batch_rows"] += _erase_batch_rows(b, campaign_id, rid)
    tokens = b.recipients.erase_recipient(campaign_id, rid)
    removed["pages"] += len(tokens)
    removed["records"] += 1 if known is not None else 0


def _erase_stream(b: Backends, campaign_id: str, data: dict[str, Any]) -> int:
    """The personal chunks, stream posters and run segments of a record's stream."""
    from chalicelib.render import hls
    from chalicelib.render.cache import file_digest
    from chalicelib.render.engine import cache_context
    from chalicelib.render.profile import EncodingProfile
    from chalicelib.render.segments import plan_runs, run_key
    from chalicelib.services.streams import stream_plan

    try:
        template = templates.get_template(b, campaign_id)
        plan = stream_plan(b, campaign_id, template.version, data)
        stream = hls.plan_stream(plan, config=b.render)
    except ReelError:
        return 0  # the template changed under the record: nothing of it was made
    store = b.cache.store
    keys = set()
    context = cache_context(b.render)
    # The MP4's personal runs (what `render` cached for this record), full size and preview.
    for preview in (False, True):
        profile = EncodingProfile.for_canvas(plan.canvas, preview=preview, config=b.render)
        for run in plan_runs(plan, profile, split=True):
            if run.personal:
                keys.add(b.cache.segment_key(run_key(run, profile, file_digest, context)))
    for groups in stream.groups.values():
        for group in groups:
            if not group.personal:
                continue
            keys.add(b.cache.segment_key(run_key(group.run, group.profile, file_digest, context)))
            for chunk in group.chunks:
                keys.add(chunk.blob)
                keys |= {k for k, _ in store.list(f"posters/stream-{chunk.key[:32]}-")}
    gone = 0
    for key in sorted(keys):
        if store.exists(key):
            store.delete(key)
            gone += 1
    return gone


def _erase_batch_rows(b: Backends, campaign_id: str, rid: str) -> int:
    """Remove the recipient's rows from the sources and item lists kept for batches."""
    batches_of = getattr(b.jobs, "batches_of", None)
    if batches_of is None:
        return 0
    gone = 0
    done: set[str] = set()
    for batch in batches_of(campaign_id):
        if batch.source_key not in done:
            done.add(batch.source_key)
            gone += _rewrite_source(b, batch.source_key, batch.mapping, rid)
        gone += _rewrite_items(b, batch.items_key, batch.mapping, rid)
        b.results.scrub_results(batch.id, rid)
    return gone


def _replace(b: Backends, key: str, data: bytes) -> None:
    """Rewrite an object with no older version left behind (a versioned bucket keeps them)."""
    b.blobs.delete(key)
    b.blobs.put_bytes(key, data)


def _rewrite_source(b: Backends, key: str, mapping: FieldMapping | None, rid: str) -> int:
    try:
        raw = b.blobs.get_bytes(key)
    except KeyError:
        return 0
    text = raw.decode("utf-8-sig", errors="replace")
    if key.lower().endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        kept = [
            row
            for line, row in enumerate(body, start=2)
            if recipient_id(mapping, dict(zip(header, row, strict=False)), f"line-{line}") != rid
        ]
        if len(kept) == len(body):
            return 0
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator="\n").writerows([header, *kept])
        _replace(b, key, buffer.getvalue().encode("utf-8"))
        return len(body) - len(kept)
    lines = text.splitlines()
    kept_lines = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line) if line.strip() else None
        except ValueError:
            row = None
        if isinstance(row, dict) and recipient_id(mapping, row, f"line-{number}") == rid:
            continue
        kept_lines.append(line)
    if len(kept_lines) == len(lines):
        return 0
    _replace(b, key, "".join(line + "\n" for line in kept_lines).encode("utf-8"))
    return len(lines) - len(kept_lines)


def _rewrite_items(b: Backends, key: str, mapping: FieldMapping | None, rid: str) -> int:
    try:
        items = json.loads(b.blobs.get_bytes(key))
    except (KeyError, ValueError):
        return 0
    changed = 0
    for i, doc in enumerate(items):
        item = BatchItem.model_validate(doc)
        if item.fields is None:
            continue
        if recipient_id(mapping, item.fields, f"line-{item.line}") == rid:
            # The index stays (results are keyed by it); the row goes.
            items[i] = BatchItem(index=item.index, line=item.line, error="erased").model_dump()
            changed += 1
    if changed:
        _replace(b, key, json.dumps(items, ensure_ascii=False).encode("utf-8"))
    return changed


def audit_log(b: Backends) -> list[Erasure]:
    """Every erasure's audit entry, oldest first."""
    return [
        Erasure.model_validate_json(b.blobs.get_bytes(key)) for key, _ in b.blobs.list(AUDIT_PREFIX)
    ]


# ── export ─────────────────────────────────────────────────────────────────────────────────


def export(b: Backends, rid: str, campaign_id: str | None = None) -> RecipientExport:
    """One JSON document of what Reel holds about a recipient: their records, pages, every
    event, every CRM delivery made about them, their renders, and links to their media."""
    from chalicelib.services.recipients import page_url

    documents = []
    for campaign in _campaigns(b, rid, campaign_id):
        known = b.recipients.get_recipient(campaign, rid)
        pages = b.recipients.recipient_pages(campaign, rid)
        media = []
        for page in pages:
            links = {"page": page_url(b, page.token)}
            for name, key in (("video", page.video_key), ("poster", page.poster_key)):
                if b.blobs.exists(key):
                    links[name] = b.blobs.url(key)
            if b.blobs.exists(_gif_key(page)):
                links["email_gif"] = page_url(b, page.token) + "/email.gif"
            media.append(links)
        events = sorted(b.events.for_recipient(campaign, rid), key=lambda e: (e.ts, e.id))
        documents.append(
            {
                "campaign_id": campaign,
                "record": known.model_dump(mode="json") if known else None,
                "pages": [p.model_dump(mode="json") for p in pages],
                "media": media,
                "events": [e.model_dump(mode="json") for e in events],
                "deliveries": [
                    d.model_dump(mode="json") for d in b.deliveries.for_recipient(campaign, rid)
                ],
                "renders": [r.model_dump(mode="json") for r in _renders(b, campaign, rid)],
            }
        )
    return RecipientExport(recipient_id=rid, exported_at=time.time(), campaigns=documents)


# ── retention ──────────────────────────────────────────────────────────────────────────────


def sweep(b: Backends, now: float | None = None) -> SweepReport:
    """Apply every campaign's retention: events received, media made and records last
    updated longer ago than its periods are removed (a record: erased, as if asked)."""
    now = time.time() if now is None else now
    removed: Counter[str] = Counter()
    campaign_ids = getattr(b.templates, "template_ids", None)
    media_days: list[int] = []
    for campaign in campaign_ids() if campaign_ids is not None else []:
        template = _template(b, campaign)
        if template is None:
            continue
        keep = template.retention
        if (days := keep.days("events")) is not None:
            removed["events"] += b.events.delete_before(campaign, now - days * DAY)
        if (days := keep.days("records")) is not None:
            for rid in b.recipients.stale_recipients(campaign, now - days * DAY):
                entry = erase(b, rid, campaign, actor="retention", scrub=False)
                removed["records"] += entry.removed.get("records", 0)
        if (days := keep.days("media")) is not None:
            media_days.append(days)
            cutoff = now - days * DAY
            for page in b.recipients.campaign_pages(campaign):
                for key in (page.video_key, page.poster_key, _gif_key(page)):
                    if any(t < cutoff for _, t in b.blobs.list(key)):
                        b.blobs.delete(key)
                        removed["media"] += 1
    if media_days:
        # Personal chunks are not filed by campaign: the shortest media period applies to all.
        cutoff = now - min(media_days) * DAY
        store = b.cache.store
        for key, modified in store.list("hls/p/"):
            if modified < cutoff:
                store.delete(key)
                removed["stream_media"] += 1
    if any(removed.values()):
        _scrub(b)  # what the sweep deleted leaves no copy in the SQLite file either
        log.info("retention sweep: %s", {k: n for k, n in removed.items() if n})
    return SweepReport(at=now, removed={k: n for k, n in sorted(removed.items()) if n})


class SweepWorker(threading.Thread):
    """`reel serve`'s retention sweep: at start, then every `interval` seconds, until stopped."""

    def __init__(self, b: Backends, interval: float = 3600.0) -> None:
        super().__init__(name="reel-sweep", daemon=True)
        self.b = b
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sweep(self.b)
            except Exception:  # an entry point: log, and try again next round
                log.exception("retention sweep failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
