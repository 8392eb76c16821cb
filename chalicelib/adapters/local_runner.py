"""Orchestrator on this machine: the embedded default. Renders run in a pool of processes
(spawned, so a crash or a leak stays in its process); a batch is driven by a thread through the
same three steps Step Functions runs: plan, render each item, finalize."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed

from chalicelib import bootstrap
from chalicelib.adapters.sqlite import SqliteJobStore
from chalicelib.errors import ReelError
from chalicelib.pipeline import service
from chalicelib.pipeline.jobs import BatchItem, JobState

log = logging.getLogger(__name__)


def _init_worker(env: dict[str, str]) -> None:
    """In a new pool process: the settings of the orchestrator that made the pool, whatever
    the environment became since (a server's, or a test's, settings are fixed at start)."""
    for name in [n for n in os.environ if n.startswith("REEL_")]:
        del os.environ[name]
    os.environ.update(env)
    bootstrap.reset()


def _render_job(render_id: str) -> str:
    """In a pool process: one API render."""
    return service.run_render(bootstrap.backends(), render_id).state.value


def _item_job(batch_id: str, item_json: str) -> str:
    """In a pool process: one batch item."""
    item = BatchItem.model_validate_json(item_json)
    return service.render_item(bootstrap.backends(), batch_id, item).model_dump_json()


class LocalOrchestrator:
    def __init__(self, workers: int = 1):
        self.workers = workers
        self._env = {k: v for k, v in os.environ.items() if k.startswith("REEL_")}
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._batches = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reel-batch")
        self._pending: set[Future[object]] = set()

    def _processes(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=ctx,
                    initializer=_init_worker,
                    initargs=(self._env,),
                )
            return self._pool

    def _track(self, future: Future[object]) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def start_render(self, render_id: str) -> None:
        future: Future[object] = self._processes().submit(_render_job, render_id)
        future.add_done_callback(lambda f: self._render_done(f, render_id))
        self._track(future)

    def _render_done(self, future: Future[object], render_id: str) -> None:
        exc = future.exception()
        if exc is not None:  # the worker died or hit a bug: the render fails, nothing else
            log.error("render %s: %s: %s", render_id, type(exc).__name__, exc)
            bootstrap.backends().jobs.set_state(
                "render",
                render_id,
                JobState.failed,
                expect=(JobState.queued, JobState.running),
            )

    def start_batch(self, batch_id: str) -> None:
        self._track(self._batches.submit(self._run_batch, batch_id))

    def _run_batch(self, batch_id: str) -> None:
        b = bootstrap.backends()
        try:
            batch = service.plan_batch(b, batch_id)
            items = service.read_items(b, batch)
        except ReelError as exc:
            service.fail_batch(b, batch_id, str(exc))
            return
        except Exception as exc:  # an entry point: the batch fails, the server goes on
            log.exception("batch %s could not be planned", batch_id)
            service.fail_batch(b, batch_id, f"internal error: {type(exc).__name__}: {exc}")
            return
        done = _recorded(b, batch_id)
        pool = self._processes()
        futures = {
            pool.submit(_item_job, batch_id, item.model_dump_json()): item
            for item in items
            if item.index not in done
        }
        for future in as_completed(futures):
            crash = future.exception()
            if crash is not None:  # like the state machine's Catch: the recipient alone fails
                item = futures[future]
                reason = f"internal error: {type(crash).__name__}: {crash}"
                service.record_failure(b, batch_id, item, reason, code="internal_error")
        service.finalize_batch(b, batch_id)

    def resume(self, jobs: SqliteJobStore) -> int:
        """Start again what a stopped or crashed server left queued or running: every step is
        idempotent, so finished outputs and recorded results are kept. Returns how many."""
        renders, batches = jobs.unfinished("render"), jobs.unfinished("batch")
        for render_id in renders:
            self.start_render(render_id)
        for batch_id in batches:
            self.start_batch(batch_id)
        return len(renders) + len(batches)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the work started so far is finished (tests, and `reel serve` exit)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        self._batches.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def _recorded(b: service.Backends, batch_id: str) -> set[int]:
    """Items a previous run of this batch already recorded (a restarted batch skips them)."""
    seen: set[int] = set()
    after = -1
    while page := b.jobs.list_results(batch_id, after=after, limit=1000):
        seen.update(index for index, _ in page)
        after = page[-1][0]
    return seen
