"""Orchestrator on this machine: the embedded default. Renders run in worker processes (spawned,
so a crash or a leak stays in its process); a batch is driven by a thread through the batch
engine (services/batches.run_batch: the same three steps Step Functions runs: plan, render each
item, finalize), for `reel serve` and `reel batch` alike.

Each worker process is a pool of its own (a slot), so a worker that dies — the OOM killer, a
codec's segfault, a SIGKILL — takes down the one job it was running and no other. That job runs
again on a fresh process; a job whose process dies CRASH_ATTEMPTS times fails alone (as a
recipient whose Lambda crashed is caught and recorded failed on AWS). What a dead process was
writing is cleaned away (LocalBlobStore.clean_partials), and a worker exits when the process
that started it dies, so a killed server leaves no renders running behind it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from chalicelib.adapters.sqlite import SqliteJobStore
from chalicelib.backends import Backends
from chalicelib.data.mapping import recipient_id
from chalicelib.pipeline.jobs import BatchItem, JobState
from chalicelib.pipeline.steps import internal_error, internal_reason
from chalicelib.services import batches, renders

log = logging.getLogger(__name__)

CRASH_ATTEMPTS = 2  # runs of a job whose worker process died, before the job fails
T = TypeVar("T")


class WorkerCrashed(Exception):
    """A job's worker process died under it CRASH_ATTEMPTS times in a row."""


class Stopped(Exception):
    """The worker slots were shut down: no more jobs run."""


def _exit_with_parent() -> None:
    """In a worker: exit as soon as the process that started it is gone (a killed server)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(1)  # the job in hand is redone by whoever resumes its batch

    threading.Thread(target=watch, name="reel-parent-watch", daemon=True).start()


#: How a worker process gets its backends: a function (picklable: module level) and its
#: argument, given by whoever wires the orchestrator (bootstrap), so that a worker renders with
#: the settings of the process that started it, not whatever its environment says.
WorkerSetup = tuple[Callable[[Any], Backends], Any]
_worker_backends: Backends | None = None


def _worker_init(setup: WorkerSetup | None) -> None:
    """In a new worker process: follow the parent's fate, and build its backends."""
    global _worker_backends
    _exit_with_parent()
    if setup is not None:
        make, arg = setup
        _worker_backends = make(arg)


def _backends() -> Backends:
    assert _worker_backends is not None, "a job ran in a worker started without its setup"
    return _worker_backends


class _Slot:
    """One worker process (a ProcessPoolExecutor of one), made again after it dies."""

    def __init__(self, setup: WorkerSetup | None) -> None:
        self._setup = setup
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            for _ in range(2):
                if self._closed:
                    raise Stopped("the worker processes were shut down")
                if self._pool is None:
                    ctx = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(
                        max_workers=1,
                        mp_context=ctx,
                        initializer=_worker_init,
                        initargs=(self._setup,),
                    )
                try:
                    return self._pool.submit(fn, *args)
                except BrokenProcessPool:  # it died idle: not this job's doing
                    self._drop()
            raise BrokenProcessPool("a new worker process died at once")

    def reset(self) -> None:
        """Forget a dead process: the next job starts a new one."""
        with self._lock:
            self._drop()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

    def _drop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class WorkerSlots:
    """`size` worker processes, started on first use, shared by every job of this process."""

    def __init__(
        self,
        size: int,
        *,
        setup: WorkerSetup | None = None,
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        self._all = [_Slot(setup) for _ in range(max(1, size))]
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for slot in self._all:
            self._free.put(slot)
        self._on_crash = on_crash
        self._closed = threading.Event()

    def _take(self) -> _Slot:
        while not self._closed.is_set():
            try:
                return self._free.get(timeout=0.2)
            except queue.Empty:
                continue
        raise Stopped("the worker processes were shut down")

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker process (waiting for a free one): its result, or its
        exception; WorkerCrashed when its process died CRASH_ATTEMPTS times; Stopped after
        `close`."""
        for attempt in range(1, CRASH_ATTEMPTS + 1):
            slot = self._take()
            try:
                future = slot.submit(fn, *args)
                try:
                    return future.result()
                except BrokenProcessPool as exc:
                    if self._closed.is_set():
                        raise Stopped(str(exc)) from exc
                    slot.reset()
                    log.warning("a worker process died (attempt %d of a job): %s", attempt, exc)
                    if self._on_crash is not None:
                        self._on_crash()
                    if attempt == CRASH_ATTEMPTS:
                        raise WorkerCrashed(
                            f"its render process died {CRASH_ATTEMPTS} times (killed, or out "
                            "of memory)"
                        ) from exc
            finally:
                self._free.put(slot)
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        """Stop every worker (jobs running finish in their process; queued ones are refused)."""
        self._closed.set()
        for slot in self._all:
            slot.close()


def _render_job(render_id: str) -> str:
    """In a worker: one API render."""
    return renders.run_render(_backends(), render_id).state.value


def _item_job(batch_id: str, item_json: str) -> str:
    """In a worker: one batch item."""
    item = BatchItem.model_validate_json(item_json)
    return batches.render_item(_backends(), batch_id, item).model_dump_json()


def clean_partials(b: Backends) -> int:
    """Remove what killed writers left in the stores (blobs and segment cache)."""
    stores = {id(s): s for s in (b.blobs, b.cache.store)}
    return sum(store.clean_partials() for store in stores.values())


class LocalOrchestrator:
    """Renders and batches on this machine's worker processes. `jobs` is where they are
    recorded (what `resume` looks in); `backends` gives this process's backends (the ones this
    orchestrator belongs to); `worker` how a worker process builds its own."""

    def __init__(
        self,
        workers: int,
        *,
        jobs: SqliteJobStore,
        backends: Callable[[], Backends],
        worker: WorkerSetup | None = None,
    ):
        self.workers = workers
        self._jobs = jobs
        self._b = backends
        self._setup = worker
        self._lock = threading.Lock()
        self._slots: WorkerSlots | None = None
        self._batches = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reel-batch")
        self._renders = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reel-render")
        self._pending: set[Future[Any]] = set()
        self._closed = False

    def _workers(self) -> WorkerSlots:
        with self._lock:
            if self._closed:
                raise Stopped("the orchestrator was shut down")
            if self._slots is None:
                self._slots = WorkerSlots(
                    self.workers, setup=self._setup, on_crash=lambda: self._cleanup()
                )
            return self._slots

    def _cleanup(self) -> None:
        try:
            clean_partials(self._b())
        except OSError as exc:  # cleaning is a courtesy: the next start tries again
            log.warning("could not clean partial writes: %s", exc)

    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def start_render(self, render_id: str) -> None:
        self._track(self._renders.submit(self._run_render, render_id))

    def _run_render(self, render_id: str) -> None:
        try:
            self._workers().run(_render_job, render_id)
        except Stopped:
            return  # resumed at the next start
        except Exception as exc:  # an entry point: the worker died or hit a bug; it alone fails
            log.error("render %s: %s: %s", render_id, type(exc).__name__, exc)
            jobs = self._jobs
            record = jobs.get_render(render_id)
            rid = recipient_id(None, record.data, "api") if record else "api"
            result = internal_error(rid, 0, exc)
            jobs.set_state(
                "render",
                render_id,
                JobState.failed,
                expect=(JobState.queued, JobState.running),
                result=result.model_dump(),
                updated_at=time.time(),
            )

    def start_batch(self, batch_id: str) -> None:
        self._track(self._batches.submit(self._run_batch, batch_id))

    def _run_batch(self, batch_id: str) -> None:
        b = self._b()

        def render_items(items: list[BatchItem]) -> bool:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="reel-item") as threads:
                return all(list(threads.map(lambda item: self._run_item(b, batch_id, item), items)))

        try:
            batches.run_batch(b, batch_id, render_items)
        except Exception as exc:  # an entry point: the batch fails, the server goes on
            log.exception("batch %s could not run", batch_id)
            batches.fail_batch(b, batch_id, internal_reason(exc))

    def _run_item(self, b: Backends, batch_id: str, item: BatchItem) -> bool:
        """Render one item in a worker; False when the workers were shut down first."""
        try:
            self._workers().run(_item_job, batch_id, item.model_dump_json())
        except Stopped:
            return False
        except Exception as crash:  # like the state machine's Catch: the recipient alone fails
            reason = internal_reason(crash)
            batches.record_failure(b, batch_id, item, reason, code="internal_error")
        return True

    def resume(self) -> int:
        """Start again what a stopped or crashed server left queued or running: every step is
        idempotent, so finished outputs and recorded results are kept, and what killed writers
        left half-written is removed first. Returns how many jobs."""
        self._cleanup()
        render_ids = self._jobs.unfinished("render")
        batch_ids = self._jobs.unfinished("batch")
        for render_id in render_ids:
            self.start_render(render_id)
        for batch_id in batch_ids:
            self.start_batch(batch_id)
        return len(render_ids) + len(batch_ids)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the work started so far is finished (tests, and `reel serve` exit)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, None
        if slots is not None:
            slots.close()
        self._batches.shutdown(wait=False, cancel_futures=True)
        self._renders.shutdown(wait=False, cancel_futures=True)
