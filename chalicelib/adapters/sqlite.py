"""JobStore, EventStore and the relay outbox on one SQLite file: the embedded default. WAL mode;
one connection per call, so the HTTP server's threads and the runner's threads share the file."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.adapters.records import job_model, merge_state
from chalicelib.connectors.base import Delivery, DeliveryStatus, Outgoing
from chalicelib.landing.pages import Page
from chalicelib.pipeline.jobs import (
    BatchRecord,
    JobState,
    RecipientData,
    RecipientResult,
    RenderRecord,
    Status,
    TemplateRecord,
)
from chalicelib.tracking.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    id TEXT NOT NULL, version TEXT NOT NULL, created_at REAL NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (id, version));
CREATE TABLE IF NOT EXISTS jobs (
    kind TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS results (
    batch_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx));
CREATE TABLE IF NOT EXISTS pages (
    token TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, recipient_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pages_by_recipient ON pages (campaign_id, recipient_id);
CREATE TABLE IF NOT EXISTS recipients (
    campaign_id TEXT NOT NULL, recipient_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (campaign_id, recipient_id));
CREATE TABLE IF NOT EXISTS events (
    key TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_campaign ON events (campaign_id);
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, next_at REAL NOT NULL, updated_at REAL NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS disabled_connectors (
    connector TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS erased_pages (token TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires_at);
"""


class _Sqlite:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            # What is deleted is overwritten with zeros, not left in free pages (erasure).
            db.execute("PRAGMA secure_delete=ON")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction, begun IMMEDIATE so that what it reads cannot change
        before it writes: committed when the block ends, rolled back if it raises."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def scrub(self) -> None:
        """After an erasure: no copy of deleted rows left in the write-ahead log or in free
        pages (the file is rewritten)."""
        with self._db() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class SqliteJobStore(_Sqlite):
    # ── templates ──────────────────────────────────────────────────────────────────────

    def put_template(self, record: TemplateRecord) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?)",
                (record.id, record.version, record.created_at, record.model_dump_json()),
            )

    def get_template(self, template_id: str, version: str | None = None) -> TemplateRecord | None:
        with self._db() as db:
            if version is None:
                row = db.execute(
                    "SELECT doc FROM templates WHERE id = ? ORDER BY created_at DESC, rowid DESC",
                    (template_id,),
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT doc FROM templates WHERE id = ? AND version = ?",
                    (template_id, version),
                ).fetchone()
        return TemplateRecord.model_validate_json(row[0]) if row else None

    def template_ids(self) -> list[str]:
        """Every registered template (campaign) id."""
        with self._db() as db:
            rows = db.execute("SELECT DISTINCT id FROM templates ORDER BY id").fetchall()
        return [r[0] for r in rows]

    # ── renders and batches ────────────────────────────────────────────────────────────

    def _create(self, kind: str, job_id: str, state: JobState, doc: str) -> None:
        with self._db() as db:
            try:
                db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?)", (kind, job_id, state, doc))
            except sqlite3.IntegrityError:
                raise ValueError(f"{kind} {job_id} exists") from None

    def _get(self, kind: str, job_id: str) -> str | None:
        with self._db() as db:
            row = db.execute(
                "SELECT doc FROM jobs WHERE kind = ? AND id = ?", (kind, job_id)
            ).fetchone()
        return row[0] if row else None

    def create_render(self, record: RenderRecord) -> None:
        self._create("render", record.id, record.state, record.model_dump_json())

    def get_render(self, render_id: str) -> RenderRecord | None:
        doc = self._get("render", render_id)
        return RenderRecord.model_validate_json(doc) if doc else None

    def create_batch(self, record: BatchRecord) -> None:
        self._create("batch", record.id, record.state, record.model_dump_json())

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        doc = self._get("batch", batch_id)
        return BatchRecord.model_validate_json(doc) if doc else None

    def set_state(
        self,
        kind: str,
        job_id: str,
        state: JobState,
        *,
        expect: tuple[JobState, ...],
        **fields: Any,
    ) -> bool:
        model = job_model(kind)
        with self._transaction() as db:  # read-check-write under one write lock
            row = db.execute(
                "SELECT state, doc FROM jobs WHERE kind = ? AND id = ?", (kind, job_id)
            ).fetchone()
            if row is None or row[0] not in expect:
                return False
            db.execute(
                "UPDATE jobs SET state = ?, doc = ? WHERE kind = ? AND id = ?",
                (state, merge_state(model, row[1], state, fields), kind, job_id),
            )
            return True

    def unfinished(self, kind: str) -> list[str]:
        """Ids of renders or batches still queued or running (to resume after a restart)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE kind = ? AND state IN (?, ?) ORDER BY rowid",
                (kind, JobState.queued, JobState.running),
            ).fetchall()
        return [r[0] for r in rows]

    # ── batch results ──────────────────────────────────────────────────────────────────

    def put_result(self, batch_id: str, index: int, result: RecipientResult) -> bool:
        with self._db() as db:
            batch = db.execute(
                "SELECT 1 FROM jobs WHERE kind = 'batch' AND id = ?", (batch_id,)
            ).fetchone()
            if batch is None:
                raise KeyError(f"no batch {batch_id!r}")
            cur = db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?)",
                (batch_id, index, result.status, result.model_dump_json()),
            )
            return cur.rowcount == 1

    def list_results(
        self, batch_id: str, *, after: int = -1, limit: int = 100
    ) -> list[tuple[int, RecipientResult]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT idx, doc FROM results WHERE batch_id = ? AND idx > ? ORDER BY idx LIMIT ?",
                (batch_id, after, limit),
            ).fetchall()
        return [(idx, RecipientResult.model_validate(json.loads(doc))) for idx, doc in rows]

    def count_results(self, batch_id: str) -> dict[str, int]:
        with self._db() as db:
            rows = dict(
                db.execute(
                    "SELECT status, COUNT(*) FROM results WHERE batch_id = ? GROUP BY status",
                    (batch_id,),
                ).fetchall()
            )
        return {s.value: int(rows.get(s.value, 0)) for s in Status}

    # ── landing pages ──────────────────────────────────────────────────────────────────

    def put_page(self, page: Page) -> None:
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO pages VALUES (?, ?, ?, ?)",
                    (page.token, page.campaign_id, page.recipient_id, page.model_dump_json()),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"page {page.token} exists") from None

    def get_page(self, token: str) -> Page | None:
        with self._db() as db:
            row = db.execute("SELECT doc FROM pages WHERE token = ?", (token,)).fetchone()
        return Page.model_validate_json(row[0]) if row else None

    def campaign_pages(self, campaign_id: str) -> list[Page]:
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM pages WHERE rowid IN (SELECT MAX(rowid) FROM pages "
                "WHERE campaign_id = ? GROUP BY recipient_id) ORDER BY rowid",
                (campaign_id,),
            ).fetchall()
        return [Page.model_validate_json(r[0]) for r in rows]

    def put_recipient(self, record: RecipientData) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO recipients VALUES (?, ?, ?)",
                (record.campaign_id, record.recipient_id, record.model_dump_json()),
            )

    def get_recipient(self, campaign_id: str, recipient_id: str) -> RecipientData | None:
        with self._db() as db:
            row = db.execute(
                "SELECT doc FROM recipients WHERE campaign_id = ? AND recipient_id = ?",
                (campaign_id, recipient_id),
            ).fetchone()
        return RecipientData.model_validate_json(row[0]) if row else None

    # ── privacy: erasure, export, retention ───────────────────────────────────────────

    def recipient_campaigns(self, recipient_id: str) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT campaign_id FROM recipients WHERE recipient_id = ? UNION "
                "SELECT campaign_id FROM pages WHERE recipient_id = ? ORDER BY 1",
                (recipient_id, recipient_id),
            ).fetchall()
        return [r[0] for r in rows]

    def recipient_pages(self, campaign_id: str, recipient_id: str) -> list[Page]:
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM pages WHERE campaign_id = ? AND recipient_id = ? ORDER BY rowid",
                (campaign_id, recipient_id),
            ).fetchall()
        return [Page.model_validate_json(r[0]) for r in rows]

    def erase_recipient(self, campaign_id: str, recipient_id: str) -> list[str]:
        now = time.time()
        with self._transaction() as db:
            tokens = [
                r[0]
                for r in db.execute(
                    "SELECT token FROM pages WHERE campaign_id = ? AND recipient_id = ?",
                    (campaign_id, recipient_id),
                ).fetchall()
            ]
            db.executemany(
                "INSERT OR IGNORE INTO erased_pages VALUES (?, ?)", [(t, now) for t in tokens]
            )
            db.execute(
                "DELETE FROM pages WHERE campaign_id = ? AND recipient_id = ?",
                (campaign_id, recipient_id),
            )
            db.execute(
                "DELETE FROM recipients WHERE campaign_id = ? AND recipient_id = ?",
                (campaign_id, recipient_id),
            )
        return tokens

    def erased(self, token: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT 1 FROM erased_pages WHERE token = ?", (token,)).fetchone()
        return row is not None

    def stale_recipients(self, campaign_id: str, before: float) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT recipient_id, doc FROM recipients WHERE campaign_id = ?", (campaign_id,)
            ).fetchall()
        return [
            rid for rid, doc in rows if RecipientData.model_validate_json(doc).updated_at < before
        ]

    def batches_of(self, template_id: str) -> list[BatchRecord]:
        """The campaign's batches (erasure rewrites their sources)."""
        with self._db() as db:
            rows = db.execute("SELECT doc FROM jobs WHERE kind = 'batch' ORDER BY rowid").fetchall()
        found = [BatchRecord.model_validate_json(r[0]) for r in rows]
        return [batch for batch in found if batch.template_id == template_id]

    def renders_of(self, template_id: str) -> list[RenderRecord]:
        """The campaign's single renders (each holds its record)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM jobs WHERE kind = 'render' ORDER BY rowid"
            ).fetchall()
        found = [RenderRecord.model_validate_json(r[0]) for r in rows]
        return [render for render in found if render.template_id == template_id]

    def delete_render(self, render_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM jobs WHERE kind = 'render' AND id = ?", (render_id,))

    def scrub_results(self, batch_id: str, recipient_id: str) -> int:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT idx, doc FROM results WHERE batch_id = ?", (batch_id,)
            ).fetchall()
            changed = 0
            for idx, doc in rows:
                result = RecipientResult.model_validate_json(doc)
                if result.recipient_id != recipient_id:
                    continue
                blank = RecipientResult(
                    recipient_id="(erased)", line=result.line, status=result.status
                )
                db.execute(
                    "UPDATE results SET doc = ? WHERE batch_id = ? AND idx = ?",
                    (blank.model_dump_json(), batch_id, idx),
                )
                changed += 1
        return changed

    # ── claims (replay protection of inbound hooks) ────────────────────────────────────

    def claim(self, key: str, expires_at: float) -> bool:
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE expires_at <= ?", (time.time(),))
            cur = db.execute("INSERT OR IGNORE INTO claims VALUES (?, ?)", (key, float(expires_at)))
        return cur.rowcount == 1


class SqliteEventStore(_Sqlite):
    def add(self, events: list[Event]) -> list[Event]:
        stored = []
        with self._transaction() as db:
            for event in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?)",
                    (event.key, event.campaign_id, event.model_dump_json()),
                )
                if cur.rowcount == 1:
                    stored.append(event)
        return stored

    def for_campaign(self, campaign_id: str) -> list[Event]:
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM events WHERE campaign_id = ? ORDER BY rowid", (campaign_id,)
            ).fetchall()
        return [Event.model_validate_json(r[0]) for r in rows]

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Event]:
        # Keys are JSON [campaign, recipient, id]: one recipient's are a range of the key index.
        prefix = json.dumps([campaign_id, recipient_id])[:-1] + ", "
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM events WHERE key >= ? AND key < ? ORDER BY rowid",
                (prefix, prefix + "\U0010ffff"),
            ).fetchall()
        return [Event.model_validate_json(r[0]) for r in rows]

    def delete_recipient(self, campaign_id: str, recipient_id: str) -> int:
        prefix = json.dumps([campaign_id, recipient_id])[:-1] + ", "
        with self._db() as db:
            cur = db.execute(
                "DELETE FROM events WHERE key >= ? AND key < ?", (prefix, prefix + "\U0010ffff")
            )
        return cur.rowcount

    def delete_before(self, campaign_id: str, before: float) -> int:
        with self._db() as db:
            cur = db.execute(
                "DELETE FROM events WHERE campaign_id = ? AND "
                "json_extract(doc, '$.received_at') < ?",
                (campaign_id, before),
            )
        return cur.rowcount


class SqliteOutbox(_Sqlite):
    """The relay queue on the local backend: rows the relay worker takes in order."""

    def put(self, messages: list[dict[str, Any]]) -> None:
        now = time.time()
        with self._db() as db:
            db.executemany(
                "INSERT INTO outbox (created_at, body) VALUES (?, ?)",
                [(now, json.dumps(m, separators=(",", ":"))) for m in messages],
            )

    def pending(self) -> list[dict[str, Any]]:
        """Every message not yet taken by the relay."""
        return [m for _, m in self.take(limit=1_000_000)]

    def take(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """The oldest messages with their ids; they stay until `ack`ed (at least once)."""
        with self._db() as db:
            rows = db.execute("SELECT id, body FROM outbox ORDER BY id LIMIT ?", (limit,))
            return [(r[0], json.loads(r[1])) for r in rows.fetchall()]

    def forget(self, campaign_id: str, recipient_id: str) -> int:
        """Drop the messages about a recipient not yet taken (erasure)."""
        with self._db() as db:
            rows = db.execute("SELECT id, body FROM outbox").fetchall()
            gone = []
            for message_id, body in rows:
                message = json.loads(body)
                about = message.get("event") or message
                if (about.get("campaign_id"), about.get("recipient_id")) == (
                    campaign_id,
                    recipient_id,
                ):
                    gone.append((message_id,))
            db.executemany("DELETE FROM outbox WHERE id = ?", gone)
        return len(gone)

    def ack(self, ids: list[int]) -> None:
        """Forget messages the relay has taken in hand."""
        with self._db() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])


class SqliteDeliveryStore(_Sqlite):
    def add(self, outgoing: list[Outgoing], now: float) -> int:
        added = 0
        with self._transaction() as db:
            for out in outgoing:
                d = Delivery(out=out, next_at=now, created_at=now, updated_at=now)
                cur = db.execute(
                    "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?)",
                    (d.key, d.status, d.next_at, d.updated_at, d.model_dump_json()),
                )
                added += cur.rowcount
        return added

    def get(self, key: str) -> Delivery | None:
        with self._db() as db:
            row = db.execute("SELECT doc FROM deliveries WHERE key = ?", (key,)).fetchone()
        return Delivery.model_validate_json(row[0]) if row else None

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM deliveries WHERE status = ? AND next_at <= ? "
                "ORDER BY next_at LIMIT ?",
                (DeliveryStatus.pending, now, limit),
            ).fetchall()
        return [Delivery.model_validate_json(r[0]) for r in rows]

    def save(self, delivery: Delivery) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, next_at = ?, updated_at = ?, doc = ? "
                "WHERE key = ?",
                (
                    delivery.status,
                    delivery.next_at,
                    delivery.updated_at,
                    delivery.model_dump_json(),
                    delivery.key,
                ),
            )

    def by_status(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        with self._db() as db:
            if status is None:
                rows = db.execute(
                    "SELECT doc FROM deliveries ORDER BY updated_at DESC LIMIT ?", (limit,)
                )
            else:
                rows = db.execute(
                    "SELECT doc FROM deliveries WHERE status = ? ORDER BY updated_at DESC LIMIT ?",
                    (status, limit),
                )
            return [Delivery.model_validate_json(r[0]) for r in rows.fetchall()]

    def disable(self, connector: str, reason: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO disabled_connectors VALUES (?, ?, ?)",
                (connector, reason, time.time()),
            )

    def enable(self, connector: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM disabled_connectors WHERE connector = ?", (connector,))

    def disabled(self) -> dict[str, str]:
        with self._db() as db:
            rows = db.execute("SELECT connector, reason FROM disabled_connectors").fetchall()
        return {r[0]: r[1] for r in rows}

    def for_recipient(self, campaign_id: str, recipient_id: str) -> list[Delivery]:
        with self._db() as db:
            rows = db.execute(
                "SELECT doc FROM deliveries WHERE json_extract(doc, '$.out.campaign_id') = ? "
                "AND json_extract(doc, '$.out.recipient_id') = ? ORDER BY rowid",
                (campaign_id, recipient_id),
            ).fetchall()
        return [Delivery.model_validate_json(r[0]) for r in rows]

    def delete(self, keys: list[str]) -> int:
        with self._db() as db:
            cur = db.executemany("DELETE FROM deliveries WHERE key = ?", [(k,) for k in keys])
        return cur.rowcount
