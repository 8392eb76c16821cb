"""The local batch runner: a process pool over the steps, results.jsonl, resumable reruns.

results.jsonl is appended (and flushed) as each recipient finishes, so a crash — even SIGKILL —
loses at most the recipients in flight; their outputs never appear half-written (the BlobStore
writes atomically, and a rerun first removes what killed writers left), and a rerun skips every
recipient whose output exists. A render process that dies mid-run costs only its recipient a
second try (see adapters/local_runner.WorkerSlots). When a run completes, results.jsonl is
rewritten with exactly one line per recipient, in input order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from chalicelib import bootstrap
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.adapters.local_runner import WorkerSlots
from chalicelib.data.mapping import FieldMapping
from chalicelib.data.readers import read_rows
from chalicelib.pipeline.jobs import RecipientJob, RecipientResult, Status
from chalicelib.pipeline.steps import finalize, plan_recipient, render_recipient
from chalicelib.settings import get_settings
from chalicelib.template.library import LoadedTemplate

RESULTS = "results.jsonl"
Progress = Callable[[RecipientResult, int, int], None]


@dataclass(frozen=True)
class BatchSummary:
    counts: dict[str, int]
    results: list[RecipientResult]  # one per recipient, in input order
    results_path: Path
    out_dir: Path


def _worker(job_json: str, out_dir: Path, cache_dir: Path) -> str:
    """Runs in a pool process: render one job (JSON in, JSON out: cheap to pickle)."""
    job = RecipientJob.model_validate_json(job_json)
    return render_recipient(
        job, bootstrap.output_store(out_dir), bootstrap.segment_cache(cache_dir)
    ).model_dump_json()


def _collect(future: Future[str], job: RecipientJob) -> RecipientResult:
    # The pool is an entry point: a worker that died or hit a bug fails its recipient alone.
    try:
        return RecipientResult.model_validate_json(future.result())
    except Exception as exc:
        return RecipientResult(
            recipient_id=job.recipient_id,
            line=job.line,
            status=Status.failed,
            reason=f"internal error: {type(exc).__name__}: {exc}",
            code="internal_error",
        )


def run_batch(
    lt: LoadedTemplate,
    data: Path,
    out_dir: Path,
    *,
    mapping: FieldMapping | None = None,
    workers: int = 1,
    preview: bool = False,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Render one video per row of `data` into `out_dir`, resuming what a previous run did."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_root = (cache_dir or get_settings().cache_dir).resolve()
    outputs = bootstrap.output_store(out_dir)
    cache = bootstrap.segment_cache(cache_root)
    # Leftovers of writes a crash interrupted (never under a final key); live writers' stay.
    outputs.clean_partials()
    if isinstance(cache.store, LocalBlobStore):
        cache.store.clean_partials()

    planned = [plan_recipient(lt, mapping, row, preview=preview) for row in read_rows(data)]
    total = len(planned)
    results: dict[int, RecipientResult] = {}
    log_path = out_dir / RESULTS
    with log_path.open("a", encoding="utf-8") as log:

        def record(index: int, result: RecipientResult) -> None:
            results[index] = result
            log.write(result.model_dump_json() + "\n")
            log.flush()
            if progress:
                progress(result, len(results), total)

        pending: list[tuple[int, RecipientJob]] = []
        for index, item in enumerate(planned):
            if isinstance(item, RecipientResult):
                record(index, item)
            else:
                pending.append((index, item))
        # The first render fills the cache with the static segments the others will share,
        # so the pool does not render them once per worker.
        if pending:
            index, job = pending.pop(0)
            record(index, render_recipient(job, outputs, cache))
        if pending and workers > 1:
            slots = WorkerSlots(workers)
            try:
                with ThreadPoolExecutor(workers, thread_name_prefix="reel-job") as threads:
                    pending_jobs = dict(pending)
                    futures: dict[Future[str], int] = {
                        threads.submit(
                            slots.run, _worker, job.model_dump_json(), out_dir, cache_root
                        ): index
                        for index, job in pending
                    }
                    while futures:
                        done, _ = wait(futures, return_when=FIRST_COMPLETED)
                        for future in done:
                            index = futures.pop(future)
                            record(index, _collect(future, pending_jobs[index]))
            finally:
                slots.close()
        else:
            for index, job in pending:
                record(index, render_recipient(job, outputs, cache))

    ordered = [results[i] for i in sorted(results)]
    tmp = log_path.with_name(f".{RESULTS}.{os.getpid()}.final.part")  # LocalBlobStore's form
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in ordered), encoding="utf-8")
    tmp.replace(log_path)
    return BatchSummary(finalize(ordered), ordered, log_path, out_dir)


def read_results(path: Path) -> list[RecipientResult]:
    """The lines of a results.jsonl (a torn last line, from a crash, is skipped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(RecipientResult.model_validate(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out
