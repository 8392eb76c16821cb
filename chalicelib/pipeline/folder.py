"""`reel batch`: a batch into a folder, run by the same engine as the API's batches (the local
orchestrator: plan, render each item on the worker processes, finalize), with results.jsonl as a
view of the batch's stored results.

The results are stored (SQLite under `out/.reel/`) as each recipient finishes, and results.jsonl
is appended as they are seen, so a crash — even SIGKILL — loses at most the recipients in flight;
their outputs never appear half-written (the BlobStore writes atomically, and a rerun first
removes what killed writers left), and a rerun skips every recipient whose output exists. When a
run completes, results.jsonl is rewritten with exactly one line per recipient, in input order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.backends import Backends
from chalicelib.data.mapping import FieldMapping
from chalicelib.errors import ReelError
from chalicelib.pipeline.jobs import JobState, RecipientResult
from chalicelib.pipeline.steps import finalize
from chalicelib.render.cache import file_digest
from chalicelib.services import batches, templates

RESULTS = "results.jsonl"
POLL_SECONDS = 0.1  # how often the results are looked at while the batch runs
Progress = Callable[[RecipientResult, int, int], None]


@dataclass(frozen=True)
class BatchSummary:
    counts: dict[str, int]
    results: list[RecipientResult]  # one per recipient, in input order
    results_path: Path
    out_dir: Path


def run_batch(
    b: Backends,
    template: Path,
    data: Path,
    out_dir: Path,
    *,
    mapping: FieldMapping | None = None,
    preview: bool = False,
    progress: Progress | None = None,
) -> BatchSummary:
    """Render one video per row of `data` into `out_dir` (the folder `b`'s blobs live in),
    resuming what a previous run did."""
    out_dir = out_dir.resolve()
    # Leftovers of writes a crash interrupted (never under a final key); live writers' stay.
    b.blobs.clean_partials()
    b.cache.store.clean_partials()
    record = templates.register_file(b, template, exclude=out_dir)
    source = f"sources/{file_digest(str(data))[:32]}{data.suffix.lower()}"
    if not b.blobs.exists(source):
        b.blobs.put_file(source, data)
    request = batches.BatchRequest(
        template_id=record.id, version=record.version, source=source, mapping=mapping,
        preview=preview,
    )  # fmt: skip
    batch = batches.create_batch(b, request, folder=True)
    log_path = out_dir / RESULTS
    seen: dict[int, RecipientResult] = {}
    contiguous = -1  # every index up to it is seen: results come in any order, but near it
    with log_path.open("a", encoding="utf-8") as log:
        while True:
            state = batches.get_batch(b, batch.id)
            for index, result in _results_after(b, batch.id, contiguous):
                if index in seen:
                    continue
                seen[index] = result
                log.write(result.model_dump_json() + "\n")
                log.flush()
                if progress:
                    progress(result, len(seen), state.total or len(seen))
            while contiguous + 1 in seen:
                contiguous += 1
            if state.state in (JobState.done, JobState.failed) and len(seen) >= (state.total or 0):
                break
            time.sleep(POLL_SECONDS)
    b.orchestrator.wait()
    if state.state is JobState.failed:
        raise ReelError(state.error or "the batch failed", field="--data")
    ordered = [seen[i] for i in sorted(seen)]
    tmp = log_path.with_name(f".{RESULTS}.{os.getpid()}.final.part")  # LocalBlobStore's form
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in ordered), encoding="utf-8")
    tmp.replace(log_path)
    return BatchSummary(finalize(ordered), ordered, log_path, out_dir)


def _results_after(b: Backends, batch_id: str, after: int) -> list[tuple[int, RecipientResult]]:
    """The batch's stored results with an index over `after`, in index order."""
    found = []
    while page := b.results.list_results(batch_id, after=after, limit=1000):
        found += page
        after = page[-1][0]
    return found


def read_results(path: Path) -> list[RecipientResult]:
    """The lines of a results.jsonl (a torn last line, from a crash, is skipped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(RecipientResult.model_validate(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out
