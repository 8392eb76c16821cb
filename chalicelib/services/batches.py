"""Batches: the one engine — plan, render each item, finalize — that the local orchestrator
and Step Functions both run, and the ways a batch starts (POST /batches, an upload)."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from chalicelib.backends import Backends
from chalicelib.data.mapping import FieldMapping, recipient_id
from chalicelib.data.readers import Row, read_rows
from chalicelib.errors import DataError, GoneError, NotFoundError, ReelError, TemplateError
from chalicelib.pipeline.jobs import (
    BatchItem,
    BatchRecord,
    JobState,
    RecipientResult,
    Status,
    new_id,
)
from chalicelib.pipeline.statemachine import MAX_ITEM_BYTES
from chalicelib.pipeline.steps import failed, internal_error, plan_recipient, render_recipient
from chalicelib.services.notices import notify_completion
from chalicelib.services.recipients import page_url, publish
from chalicelib.services.templates import get_template, materialize, scratch
from chalicelib.template.library import LoadedTemplate, pydantic_problems
from chalicelib.template.model import Strict

#: Inline records POST /batches takes by default (REEL_MAX_INLINE_RECORDS).
MAX_INLINE_RECORDS = 1000

_INCOMING = re.compile(r"^incoming/([A-Za-z0-9_-]+)/[^/]+\.(csv|jsonl|ndjson)$")


class BatchRequest(Strict):
    template_id: str
    version: str | None = None
    records: list[dict[str, Any]] | None = Field(None, description="inline records (≤ 1,000)")
    source: str | None = Field(None, description="blob key of a CSV or JSONL file")
    mapping: FieldMapping | None = None
    preview: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> BatchRequest:
        if (self.records is None) == (self.source is None):
            raise ValueError("give exactly one of `records` (inline) or `source` (a blob key)")
        if self.records is not None and not self.records:
            raise ValueError("`records` is empty")
        return self


def create_batch(
    b: Backends,
    req: BatchRequest,
    *,
    batch_id: str | None = None,
    max_inline: int = MAX_INLINE_RECORDS,
    folder: bool = False,
) -> BatchRecord:
    """Store a batch (inline records are written as a JSONL source) and start it. A `folder`
    batch (`reel batch`) names its outputs after its recipients and publishes no pages."""
    template = get_template(b, req.template_id, req.version)
    batch_id = batch_id or new_id("b")
    if req.records is not None:
        if len(req.records) > max_inline:
            raise DataError(
                f"{len(req.records)} inline records; at most {max_inline} (upload a file and pass "
                "its key as `source` for more)",
                field="records",
            )
        source = f"batches/{batch_id}/source.jsonl"
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in req.records)
        b.blobs.put_bytes(source, lines.encode("utf-8"))
    else:
        assert req.source is not None
        source = req.source
        if not source.lower().endswith((".csv", ".jsonl", ".ndjson")):
            raise DataError("a source is a .csv or .jsonl object", field="source")
        try:
            found = b.blobs.exists(source)
        except ValueError:
            found = False
        if not found:
            raise NotFoundError(f"no blob under {source!r}", field="source")
    now = time.time()
    record = BatchRecord(
        id=batch_id,
        template_id=template.id,
        version=template.version,
        source_key=source,
        items_key=f"batches/{batch_id}/items.json",
        mapping=req.mapping,
        preview=req.preview,
        folder=folder,
        state=JobState.queued,
        created_at=now,
        updated_at=now,
    )
    b.jobs.create_batch(record)
    b.orchestrator.start_batch(batch_id)
    return record


def batch_from_upload(b: Backends, key: str, etag: str = "") -> BatchRecord | None:
    """Start the batch an upload under incoming/{template_id}/ asks for (S3 trigger).

    The batch id is derived from the key and the object's ETag, so a notification delivered
    twice starts one batch. A mapping stored as incoming/{template_id}/mapping.yaml applies.
    """
    match = _INCOMING.match(key)
    if not match:
        return None
    if not b.blobs.exists(key):
        # Deleted before this notification was handled: raised, not refused, so that Lambda's
        # on-failure queue keeps it (`reel failures`) and it can be retried once uploaded again.
        raise GoneError(f"{key}: the upload was deleted before its batch could start", "source")
    template_id = match.group(1)
    batch_id = "b_" + hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()[:32]
    if b.jobs.get_batch(batch_id) is not None:
        return None
    mapping = None
    mapping_key = f"incoming/{template_id}/mapping.yaml"
    if b.blobs.exists(mapping_key):
        from chalicelib.template.documents import DocumentError, decode
        from chalicelib.template.library import parse_document

        try:
            text = decode(b.blobs.get_bytes(mapping_key))
        except DocumentError as exc:
            raise TemplateError(f"{mapping_key}: {exc.message}", field="mapping") from None
        doc = parse_document(text, ".yaml", "mapping")
        try:
            mapping = FieldMapping.model_validate(doc)
        except ValidationError as exc:
            problems = pydantic_problems(exc)
            raise TemplateError(f"{mapping_key}: invalid mapping", problems=problems) from exc
    req = BatchRequest(template_id=template_id, source=key, mapping=mapping)
    try:
        return create_batch(b, req, batch_id=batch_id)
    except ValueError:  # created by a concurrent duplicate notification
        return None


def get_batch(b: Backends, batch_id: str) -> BatchRecord:
    record = b.jobs.get_batch(batch_id)
    if record is None:
        raise NotFoundError(f"no batch {batch_id!r}", field="batch_id")
    return record


def _items(rows: Iterator[Row]) -> Iterator[tuple[BatchItem, str]]:
    """Each row as an item and its JSON; a row too large for the state machine fails alone."""
    for index, row in enumerate(rows):
        if row.fields is None:
            assert row.error is not None
            item = BatchItem(
                index=index, line=row.line, error=row.error.message, field=row.error.field or None
            )
        else:
            item = BatchItem(index=index, line=row.line, fields=row.fields)
        text = item.model_dump_json(exclude_none=True)
        if len(text.encode()) > MAX_ITEM_BYTES:
            item = BatchItem(
                index=index,
                line=row.line,
                error=f"line {row.line}: the row is {len(text.encode()):,} bytes as JSON; "
                f"a batch row is at most {MAX_ITEM_BYTES:,}",
            )
            text = item.model_dump_json(exclude_none=True)
        yield item, text


def plan_batch(b: Backends, batch_id: str) -> BatchRecord:
    """Step 1: read the source into the item list (a JSON array the Map reads) and render the
    static segments every recipient shares. Returns the batch, now with its total. Idempotent."""
    batch = get_batch(b, batch_id)
    lt = materialize(b, get_template(b, batch.template_id, batch.version))
    with tempfile.TemporaryDirectory(prefix="reel-plan-", dir=scratch(b)) as tmp:
        try:
            source = b.blobs.fetch(batch.source_key, Path(tmp))
        except KeyError:  # deleted (or expired) between the batch's start and its plan
            raise DataError(
                f"the source {batch.source_key} is gone: it was deleted before the batch read it",
                field="source",
            ) from None
        items = Path(tmp) / "items.json"
        total = 0
        first_job = None
        with items.open("w", encoding="utf-8") as out:
            out.write("[")
            for item, text in _items(read_rows(source)):
                out.write(("," if total else "") + text)
                total += 1
                if first_job is None and item.fields is not None:
                    row = Row(item.line, item.fields)
                    planned = plan_recipient(
                        lt, batch.mapping, row, fetcher=b.fetcher, config=b.render
                    )
                    if not isinstance(planned, RecipientResult):
                        first_job = planned
            out.write("]")
        b.blobs.put_file(batch.items_key, items)
    if first_job is not None:
        from chalicelib.render.engine import warm

        warm(first_job.plan, b.cache, preview=batch.preview, config=b.render)
    b.jobs.set_state(
        "batch",
        batch_id,
        JobState.running,
        expect=(JobState.queued, JobState.running),
        total=total,
        updated_at=time.time(),
    )
    return get_batch(b, batch_id)


def read_items(b: Backends, batch: BatchRecord) -> list[BatchItem]:
    """The item list `plan_batch` wrote."""
    return [BatchItem.model_validate(i) for i in json.loads(b.blobs.get_bytes(batch.items_key))]


def render_item(b: Backends, batch_id: str, item: BatchItem) -> RecipientResult:
    """Step 2, once per item: map, bind, render, store the outputs and record the result."""
    batch = get_batch(b, batch_id)
    lt = materialize(b, get_template(b, batch.template_id, batch.version))
    error = DataError(item.error, field=item.field or "") if item.error else None
    row = Row(item.line, item.fields, error)
    with b.cache.lease():  # the assets it fetches are held until its render is done
        return _render_item(b, batch_id, batch, lt, item, row)


def _render_item(
    b: Backends,
    batch_id: str,
    batch: BatchRecord,
    lt: LoadedTemplate,
    item: BatchItem,
    row: Row,
) -> RecipientResult:
    planned = plan_recipient(
        lt,
        batch.mapping,
        row,
        preview=batch.preview,
        named=batch.folder,
        fetcher=b.fetcher,
        config=b.render,
    )
    if isinstance(planned, RecipientResult):
        result = planned
    else:
        result = render_recipient(planned, b.blobs, b.cache, b.render, speech=b.speech)
        if result.status != Status.failed and not batch.folder:
            try:
                token = publish(b, lt, planned, batch.template_id)
            except ReelError as exc:
                result = failed(planned.recipient_id, planned.line, exc)
            else:
                result = result.model_copy(update={"page": page_url(b, token)})
    b.results.put_result(batch_id, item.index, result)
    return result


def record_failure(
    b: Backends, batch_id: str, item: BatchItem, reason: str, code: str = "render_failed"
) -> RecipientResult:
    """Step 2's fallback (the Map's Catch): the recipient is recorded failed, the batch goes on."""
    fields = item.fields or {}
    rid = recipient_id(get_batch(b, batch_id).mapping, fields, f"line-{item.line}")
    result = internal_error(rid, item.line, reason, code=code)
    if not b.results.put_result(batch_id, item.index, result):
        # Recorded already (the first result wins): say what it is, not this failure.
        page = b.results.list_results(batch_id, after=item.index - 1, limit=1)
        if page and page[0][0] == item.index:
            return page[0][1]
    return result


def finalize_batch(b: Backends, batch_id: str) -> dict[str, int]:
    """Step 3: aggregate the results and close the batch. Returns counts by status."""
    counts = b.results.count_results(batch_id)
    closed = b.jobs.set_state(
        "batch",
        batch_id,
        JobState.done,
        expect=(JobState.queued, JobState.running),
        updated_at=time.time(),
    )
    if closed:  # once, however often Finalize runs
        batch = get_batch(b, batch_id)
        notify_completion(b, "batch", batch_id, batch.template_id, "done", counts=counts)
    return counts


def fail_batch(b: Backends, batch_id: str, reason: str) -> None:
    """The batch could not run at all (its source unreadable, say)."""
    b.jobs.set_state(
        "batch",
        batch_id,
        JobState.failed,
        expect=(JobState.queued, JobState.running),
        error=reason[:2000],
        updated_at=time.time(),
    )


def recorded(b: Backends, batch_id: str) -> set[int]:
    """Items a previous run of this batch already recorded (a resumed batch skips them)."""
    seen: set[int] = set()
    after = -1
    while page := b.results.list_results(batch_id, after=after, limit=1000):
        seen.update(index for index, _ in page)
        after = page[-1][0]
    return seen


def run_batch(b: Backends, batch_id: str, render_items: Callable[[list[BatchItem]], bool]) -> None:
    """The batch engine as one process drives it (the local orchestrator; Step Functions runs
    the same steps as states): plan, render each item not yet recorded through `render_items`
    (which records every item's result, and returns False when it was stopped before the end:
    the batch is then resumed later), finalize. A batch that cannot be planned fails."""
    try:
        batch = plan_batch(b, batch_id)
        items = read_items(b, batch)
    except ReelError as exc:
        fail_batch(b, batch_id, str(exc))
        return
    done = recorded(b, batch_id)
    if render_items([item for item in items if item.index not in done]):
        finalize_batch(b, batch_id)
