"""The service layer: what the HTTP API, the local runner and the Lambda handlers call.

Every function takes its backends explicitly (built once by `bootstrap.backends()`), so the
same code runs on a directory + SQLite + process pool and on S3 + DynamoDB + Step Functions.
A batch is three steps, the same everywhere: `plan_batch` (normalize the source into an item
list, warm the static segments), `render_item` once per item, `finalize_batch`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from chalicelib.data.mapping import FieldMapping, recipient_id
from chalicelib.data.readers import Row, read_rows
from chalicelib.delivery.pages import Page, make_page
from chalicelib.errors import DataError, NotFoundError, ReelError, TemplateError
from chalicelib.pipeline.jobs import (
    BatchItem,
    BatchRecord,
    JobState,
    RecipientData,
    RecipientJob,
    RecipientResult,
    RenderRecord,
    Status,
    TemplateRecord,
    Urls,
)
from chalicelib.pipeline.steps import failed, make_job, plan_recipient, render_recipient
from chalicelib.ports import BlobStore, DeliveryStore, EventStore, JobStore, Orchestrator, Queue
from chalicelib.render.cache import SegmentCache
from chalicelib.settings import get_settings
from chalicelib.template.library import (
    LoadedTemplate,
    check_template,
    load_template,
    pydantic_problems,
)
from chalicelib.template.model import Strict
from chalicelib.template.plan import RenderPlan

if TYPE_CHECKING:
    from chalicelib.tracking.analytics import CampaignReport

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_BUNDLE_FILES = 10_000
_INCOMING = re.compile(r"^incoming/([A-Za-z0-9_-]+)/[^/]+\.(csv|jsonl|ndjson)$")


@dataclass(frozen=True)
class Backends:
    """The adapters one process works with (see bootstrap.backends)."""

    blobs: BlobStore
    jobs: JobStore
    cache: SegmentCache
    orchestrator: Orchestrator
    scratch: Path  # where template bundles are unpacked and sources downloaded
    events: EventStore
    queue: Queue  # the relay queue toward the CRM connectors
    secret: str  # the tracking HMAC key
    deliveries: DeliveryStore  # the relay's deliveries to the connectors


# ── request models (the API's bodies) ─────────────────────────────────────────────────────


class TemplateUpload(Strict):
    """POST /templates as JSON or YAML: the template document, its files as a bundle, or both
    (then the document replaces the bundle's template file)."""

    template: dict[str, Any] | None = None
    bundle: str | None = Field(None, description="blob key of a zip: template, scenes/, assets/")

    @model_validator(mode="after")
    def _one(self) -> TemplateUpload:
        if self.template is None and self.bundle is None:
            raise ValueError("give `template` (the document), `bundle` (a blob key), or both")
        return self


class RenderRequest(Strict):
    template_id: str
    version: str | None = Field(None, description="a registered version; default: the latest")
    data: dict[str, Any] = Field(description="the recipient's record: template variables")
    preview: bool = False


class RecipientDataRequest(Strict):
    """PUT /recipients/{id}/data."""

    campaign_id: str = Field(description="the campaign (its template id)")
    data: dict[str, Any] = Field(description="the recipient's new record: template variables")


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


# ── templates ─────────────────────────────────────────────────────────────────────────────


def _safe_extract(data: bytes, dest: Path) -> None:
    """Unzip a bundle, refusing absolute paths, `..`, symlinks and oversized archives."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise TemplateError(f"the bundle is not a zip file: {exc}", field="bundle") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_FILES:
            raise TemplateError(f"the bundle has over {MAX_BUNDLE_FILES} files", field="bundle")
        if sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
            raise TemplateError("the bundle unpacks to over 512 MB", field="bundle")
        for info in infos:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise TemplateError(f"unsafe path in the bundle: {info.filename!r}", "bundle")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise TemplateError(f"symlink in the bundle: {info.filename!r}", "bundle")
            if info.is_dir():
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)


def _bundle_root(folder: Path) -> Path:
    """The folder holding the template file (the zip's root, or its single top folder)."""
    if any((folder / n).is_file() for n in TEMPLATE_NAMES):
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(("__MACOSX", "."))]
    if len(children) == 1 and children[0].is_dir():
        return _bundle_root(children[0])
    raise TemplateError("the bundle has no template.yaml (or .yml, .json) at its root", "bundle")


def _template_file(root: Path) -> Path:
    return next(root / n for n in TEMPLATE_NAMES if (root / n).is_file())


def pack(folder: Path) -> bytes:
    """A deterministic zip of a campaign folder: same files → same bytes → same version."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
                continue
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def register_folder(b: Backends, folder: Path) -> TemplateRecord:
    """Register the campaign folder holding a template file (what `reel serve` does at start)."""
    return _register(b, _bundle_root(folder))


def register_template(
    b: Backends, upload: TemplateUpload | None = None, *, bundle: bytes | None = None
) -> TemplateRecord:
    """Register a template version from an upload (document and/or bundle key) or zip bytes."""
    with tempfile.TemporaryDirectory(prefix="reel-register-", dir=_scratch(b)) as tmp:
        folder = Path(tmp)
        key = upload.bundle if upload else None
        if key is not None:
            try:
                bundle = b.blobs.get_bytes(key)
            except (KeyError, ValueError):
                raise NotFoundError(f"no blob under {key!r}", field="bundle") from None
        if bundle is not None:
            _safe_extract(bundle, folder)
        root = folder
        if upload is not None and upload.template is not None:
            for name in TEMPLATE_NAMES:
                (folder / name).unlink(missing_ok=True)
            (folder / "template.json").write_text(json.dumps(upload.template), encoding="utf-8")
        else:
            root = _bundle_root(folder)
        return _register(b, root)


def _register(b: Backends, root: Path) -> TemplateRecord:
    from chalicelib.connectors.rules import find_rules

    lt = load_template(_template_file(root))
    problems = check_template(lt)
    if problems:
        raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
    find_rules(root)  # a bad rules.yaml is refused with the template, naming its path
    campaign_mapping_file(root)  # and so is a bad mapping.yaml
    data = pack(root)
    version = hashlib.sha256(data).hexdigest()[:16]
    template_id = lt.template.id
    existing = b.jobs.get_template(template_id, version)
    if existing is not None:
        return existing
    bundle_key = f"templates/{template_id}/{version}.zip"
    b.blobs.put_bytes(bundle_key, data)
    record = TemplateRecord(
        id=template_id,
        version=version,
        bundle_key=bundle_key,
        created_at=time.time(),
        variables=sorted(lt.template.variables),
    )
    b.jobs.put_template(record)
    return record


def get_template(b: Backends, template_id: str, version: str | None = None) -> TemplateRecord:
    record = b.jobs.get_template(template_id, version)
    if record is None:
        what = f"template {template_id!r}" + (f" version {version!r}" if version else "")
        raise NotFoundError(f"no {what}", field="template_id")
    return record


def _scratch(b: Backends) -> Path:
    b.scratch.mkdir(parents=True, exist_ok=True)
    return b.scratch


def materialize(b: Backends, record: TemplateRecord) -> LoadedTemplate:
    """The registered version, unpacked into the scratch directory (once per process)."""
    dest = _scratch(b) / "templates" / record.id / record.version
    loaded = _LOADED.get(dest)
    if loaded is None:
        if not dest.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=f".{record.version}.", dir=_mkdir(dest.parent)))
            try:
                _safe_extract(b.blobs.get_bytes(record.bundle_key), tmp)
                os.replace(tmp, dest)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
                if not dest.is_dir():
                    raise
        loaded = _LOADED[dest] = load_template(_template_file(dest))
    return loaded


_LOADED: dict[Path, LoadedTemplate] = {}  # a version's bundle never changes: cache freely


MAPPING_NAMES = ("mapping.yaml", "mapping.yml", "mapping.json")


def campaign_mapping(b: Backends, record: TemplateRecord) -> FieldMapping | None:
    """The field mapping shipped in the campaign's bundle (mapping.yaml beside the template),
    used for records that arrive from a CRM; None when there is none."""
    return campaign_mapping_file(materialize(b, record).root)


def campaign_mapping_file(root: Path) -> FieldMapping | None:
    """The mapping file of a campaign folder, checked (TemplateError), or None."""
    from chalicelib.data.mapping import load_mapping

    found = next((root / n for n in MAPPING_NAMES if (root / n).is_file()), None)
    return load_mapping(found) if found else None


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ── single renders ────────────────────────────────────────────────────────────────────────


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def create_render(b: Backends, req: RenderRequest) -> RenderRecord:
    """Check the record against the template (DataError names each bad field) and queue it."""
    template = get_template(b, req.template_id, req.version)
    lt = materialize(b, template)
    rid = recipient_id(None, req.data, "api")
    job = make_job(lt, req.data, rid, 0, preview=req.preview, named=False)
    _page(lt, job, template.id)  # its CTA and title bind too, or the request is refused now
    now = time.time()
    record = RenderRecord(
        id=new_id("r"),
        template_id=template.id,
        version=template.version,
        data=req.data,
        state=JobState.queued,
        created_at=now,
        updated_at=now,
        output_key=job.output_key,
        poster_key=job.poster_key,
        preview=req.preview,
    )
    b.jobs.create_render(record)
    b.orchestrator.start_render(record.id)
    return record


def get_render(b: Backends, render_id: str) -> RenderRecord:
    record = b.jobs.get_render(render_id)
    if record is None:
        raise NotFoundError(f"no render {render_id!r}", field="render_id")
    return record


def run_render(b: Backends, render_id: str) -> RenderRecord:
    """Render a queued RenderRecord (idempotent: a finished render is returned as it is)."""
    record = get_render(b, render_id)
    if record.state in (JobState.done, JobState.failed):
        return record
    b.jobs.set_state("render", render_id, JobState.running, expect=(JobState.queued,))
    lt = materialize(b, get_template(b, record.template_id, record.version))
    rid = recipient_id(None, record.data, "api")
    token = None
    try:
        job = make_job(lt, record.data, rid, 0, preview=record.preview, named=False)
        keys = {"output_key": record.output_key, "poster_key": record.poster_key}
        job = job.model_copy(update=keys)
        result = render_recipient(job, b.blobs, b.cache)
        if result.status != Status.failed:
            token = publish(b, lt, job, record.template_id)
            result = result.model_copy(update={"page": page_url(token)})
    except ReelError as exc:  # the template changed under a stored record, an asset vanished…
        result = failed(rid, 0, exc)
    state = JobState.failed if result.status == Status.failed else JobState.done
    b.jobs.set_state(
        "render",
        render_id,
        state,
        expect=(JobState.queued, JobState.running),
        result=result.model_dump(),
        page_token=token,
        updated_at=time.time(),
    )
    done = get_render(b, render_id)
    urls = render_urls(b, done).model_dump()
    _completed(b, "render", done.id, done.template_id, state.value, rid, urls=urls)
    return done


def _completed(
    b: Backends,
    kind: str,
    job_id: str,
    campaign_id: str,
    status: str,
    recipient: str | None = None,
    **details: Any,
) -> None:
    """Queue the completion notice of a render or a batch (the relay sends it as a signed
    webhook when one is configured)."""
    message: dict[str, Any] = {"type": "completion", "kind": kind, "id": job_id}
    message |= {"campaign_id": campaign_id, "status": status, "recipient_id": recipient}
    b.queue.put([message | details])


def render_urls(b: Backends, record: RenderRecord) -> Urls:
    page = page_url(record.page_token) if record.page_token else None
    return Urls(
        video=b.blobs.url(record.output_key), poster=b.blobs.url(record.poster_key), page=page
    )


# ── landing pages ─────────────────────────────────────────────────────────────────────────


def page_url(token: str) -> str:
    """Where a recipient's page is: the API's public URL (no personal data in it)."""
    return f"{get_settings().public_url.rstrip('/')}/v/{token}"


def _page(lt: LoadedTemplate, job: RecipientJob, campaign_id: str) -> Page:
    return make_page(
        lt,
        job.plan,
        campaign_id=campaign_id,
        recipient_id=job.recipient_id,
        video_key=job.output_key,
        poster_key=job.poster_key,
    )


def publish(b: Backends, lt: LoadedTemplate, job: RecipientJob, campaign_id: str) -> str:
    """Give a rendered recipient a landing page (a new token); the campaign is the template.
    Their record becomes their current one (what their stream shows). The same render published
    again (a step rerun after a crash between publishing and recording) keeps its page."""
    known = b.jobs.get_recipient(campaign_id, job.recipient_id)
    current = b.jobs.get_page(known.token) if known else None
    if current is not None and current.video_key == job.output_key:
        token = current.token
    else:
        page = _page(lt, job, campaign_id)
        b.jobs.put_page(page)
        token = page.token
    _remember(b, campaign_id, job.recipient_id, dict(job.plan.record), token)
    return token


def data_hash(data: dict[str, Any]) -> str:
    """A short content hash of a record (canonical JSON)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _remember(
    b: Backends, campaign_id: str, rid: str, data: dict[str, Any], token: str
) -> RecipientData:
    record = RecipientData(
        campaign_id=campaign_id,
        recipient_id=rid,
        data=data,
        data_hash=data_hash(data),
        token=token,
        updated_at=time.time(),
    )
    b.jobs.put_recipient(record)
    return record


def set_recipient_data(
    b: Backends, campaign_id: str, rid: str, data: dict[str, Any]
) -> RecipientData:
    """Replace a recipient's record (PUT /recipients/{id}/data, CRM hooks). It is checked
    against the template first (DataError names each bad field). A recipient never seen gets a
    landing page; one already known keeps theirs: the same link now shows the new data."""
    template = get_template(b, campaign_id)
    lt = materialize(b, template)
    job = make_job(lt, data, rid, 0, named=False)
    page = _page(lt, job, campaign_id)  # its texts bind too, or the data is refused now
    known = b.jobs.get_recipient(campaign_id, rid)
    if known is None:
        b.jobs.put_page(page)
        token = page.token
    else:
        token = known.token
    return _remember(b, campaign_id, rid, dict(job.plan.record), token)


def _gif_key(page: Page) -> str:
    return f"thumbnails/{PurePosixPath(page.video_key).stem}.gif"


def email_gif(b: Backends, token: str) -> bytes:
    """The stored GIF of a page's email snippet (`reel email-snippet` makes it)."""
    page = get_page(b, token)
    try:
        return b.blobs.get_bytes(_gif_key(page))
    except KeyError:
        raise NotFoundError("no email GIF yet: reel email-snippet makes it") from None


def email_snippet(b: Backends, page: Page) -> str:
    """The email HTML of a page: its animated GIF (made once, stored beside the video) linking
    to it. The GIF starts a second before the poster frame: the personal moment."""
    from PIL import Image

    from chalicelib.delivery.snippet import gif_thumbnail, snippet_html

    key = _gif_key(page)
    if not b.blobs.exists(key):
        with tempfile.TemporaryDirectory(prefix="reel-gif-", dir=_scratch(b)) as tmp:
            video = b.blobs.fetch(page.video_key, Path(tmp))
            gif = gif_thumbnail(video, Path(tmp) / "thumb.gif", start=max(0, page.poster_time - 1))
            b.blobs.put_file(key, gif.path)
    with Image.open(io.BytesIO(b.blobs.get_bytes(key))) as image:
        width, height = image.size
    return snippet_html(
        page_url=page_url(page.token),
        # A stable link (emails outlive signed media URLs): the route serves the stored GIF.
        gif_url=page_url(page.token) + "/email.gif",
        title=page.title,
        alt=f"{page.title}: play the video",
        width=width,
        height=height,
    )


def campaign_analytics(b: Backends, campaign_id: str) -> CampaignReport:
    """The campaign's funnel, retention and per-recipient stats, from its stored events."""
    from chalicelib.tracking.analytics import campaign_report

    pages = b.jobs.campaign_pages(campaign_id)
    if not pages and b.jobs.get_template(campaign_id) is None:
        raise NotFoundError(f"no campaign {campaign_id!r}", field="campaign_id")
    return campaign_report(campaign_id, pages, b.events.for_campaign(campaign_id), time.time())


def get_page(b: Backends, token: str) -> Page:
    page = b.jobs.get_page(token) if 10 <= len(token) <= 100 else None
    if page is None:
        raise NotFoundError("no such page", field="token")
    return page


# ── batches ───────────────────────────────────────────────────────────────────────────────


def create_batch(b: Backends, req: BatchRequest, *, batch_id: str | None = None) -> BatchRecord:
    """Store a batch (inline records are written as a JSONL source) and start it."""
    template = get_template(b, req.template_id, req.version)
    batch_id = batch_id or new_id("b")
    if req.records is not None:
        limit = get_settings().max_inline_records
        if len(req.records) > limit:
            raise DataError(
                f"{len(req.records)} inline records; at most {limit} (upload a file and pass "
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


def _items(rows: Iterator[Row]) -> Iterator[BatchItem]:
    for index, row in enumerate(rows):
        if row.fields is None:
            assert row.error is not None
            yield BatchItem(
                index=index, line=row.line, error=row.error.message, field=row.error.field or None
            )
        else:
            yield BatchItem(index=index, line=row.line, fields=row.fields)


def plan_batch(b: Backends, batch_id: str) -> BatchRecord:
    """Step 1: read the source into the item list (a JSON array the Map reads) and render the
    static segments every recipient shares. Returns the batch, now with its total. Idempotent."""
    batch = get_batch(b, batch_id)
    lt = materialize(b, get_template(b, batch.template_id, batch.version))
    with tempfile.TemporaryDirectory(prefix="reel-plan-", dir=_scratch(b)) as tmp:
        source = b.blobs.fetch(batch.source_key, Path(tmp))
        items = Path(tmp) / "items.json"
        total = 0
        first_job = None
        with items.open("w", encoding="utf-8") as out:
            out.write("[")
            for item in _items(read_rows(source)):
                out.write(("," if total else "") + item.model_dump_json(exclude_none=True))
                total += 1
                if first_job is None and item.fields is not None:
                    planned = plan_recipient(lt, batch.mapping, Row(item.line, item.fields))
                    if not isinstance(planned, RecipientResult):
                        first_job = planned
            out.write("]")
        b.blobs.put_file(batch.items_key, items)
    if first_job is not None:
        from chalicelib.render.engine import warm

        warm(first_job.plan, b.cache, preview=batch.preview)
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
    planned = plan_recipient(lt, batch.mapping, row, preview=batch.preview, named=False)
    if isinstance(planned, RecipientResult):
        result = planned
    else:
        result = render_recipient(planned, b.blobs, b.cache)
        if result.status != Status.failed:
            try:
                token = publish(b, lt, planned, batch.template_id)
            except ReelError as exc:
                result = failed(planned.recipient_id, planned.line, exc)
            else:
                result = result.model_copy(update={"page": page_url(token)})
    b.jobs.put_result(batch_id, item.index, result)
    return result


def record_failure(
    b: Backends, batch_id: str, item: BatchItem, reason: str, code: str = "render_failed"
) -> RecipientResult:
    """Step 2's fallback (the Map's Catch): the recipient is recorded failed, the batch goes on."""
    fields = item.fields or {}
    result = RecipientResult(
        recipient_id=recipient_id(get_batch(b, batch_id).mapping, fields, f"line-{item.line}"),
        line=item.line,
        status=Status.failed,
        reason=reason[:2000],
        code=code,
    )
    b.jobs.put_result(batch_id, item.index, result)
    return result


def finalize_batch(b: Backends, batch_id: str) -> dict[str, int]:
    """Step 3: aggregate the results and close the batch. Returns counts by status."""
    counts = b.jobs.count_results(batch_id)
    closed = b.jobs.set_state(
        "batch",
        batch_id,
        JobState.done,
        expect=(JobState.queued, JobState.running),
        updated_at=time.time(),
    )
    if closed:  # once, however often Finalize runs
        batch = get_batch(b, batch_id)
        _completed(b, "batch", batch_id, batch.template_id, "done", counts=counts)
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


# ── streams (HLS rendered just in time) ───────────────────────────────────────────────────


@dataclass(frozen=True)
class StreamSource:
    """What a recipient's stream shows: their current record, in the campaign's latest
    template version. (campaign_id, version, data_hash) names the stream's content."""

    token: str
    campaign_id: str
    recipient_id: str
    version: str
    data_hash: str
    data: dict[str, Any]


def stream_source(b: Backends, token: str) -> StreamSource:
    """The stream behind a page token (three lookups, no rendering); NotFoundError when the
    page is unknown or its recipient has no current record."""
    page = get_page(b, token)
    current = b.jobs.get_recipient(page.campaign_id, page.recipient_id)
    if current is None:
        raise NotFoundError("this page has no stream", field="token")
    template = get_template(b, page.campaign_id)
    return StreamSource(
        token=token,
        campaign_id=page.campaign_id,
        recipient_id=page.recipient_id,
        version=template.version,
        data_hash=current.data_hash,
        data=dict(current.data),
    )


def stream_plan(b: Backends, source: StreamSource) -> RenderPlan:
    """Bind a stream's record into its render plan (milliseconds: no rendering)."""
    from chalicelib.template.bind import bind

    lt = materialize(b, get_template(b, source.campaign_id, source.version))
    return bind(lt, source.data)
