"""Orchestrator on this machine: the embedded default. Renders run in worker processes (spawned,
so a crash or a leak stays in its process); a batch is driven by a thread through the same three
steps Step Functions runs: plan, render each item, finalize.

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

from chalicelib import bootstrap
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.adapters.sqlite import SqliteJobStore
from chalicelib.data.mapping import recipient_id
from chalicelib.errors import ReelError
from chalicelib.pipeline import service
from chalicelib.pipeline.jobs import BatchItem, JobState, RecipientResult, Status

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


def _worker_init(env: dict[str, str] | None) -> None:
    """In a new worker process: follow the parent's fate, and (for the server) take the
    settings of the orchestrator that made it, whatever the environment became since."""
    _exit_with_parent()
    if env is not None:
        for name in [n for n in os.environ if n.startswith("REEL_")]:
            del os.environ[name]
        os.environ.update(env)
        bootstrap.reset()


class _Slot:
    """One worker process (a ProcessPoolExecutor of one), made again after it dies."""

    def __init__(self, env: dict[str, str] | None) -> None:
        self._env = env
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
                        initargs=(self._env,),
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
        env: dict[str, str] | None = None,
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        self._all = [_Slot(env) for _ in range(max(1, size))]
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
    return service.run_render(bootstrap.backends(), render_id).state.value


def _item_job(batch_id: str, item_json: str) -> str:
    """In a worker: one batch item."""
    item = BatchItem.model_validate_json(item_json)
    return service.render_item(bootstrap.backends(), batch_id, item).model_dump_json()


def clean_partials(b: service.Backends) -> int:
    """Remove what killed writers left in the local stores (blobs and segment cache)."""
    stores = {id(s): s for s in (b.blobs, b.cache.store) if isinstance(s, LocalBlobStore)}
    return sum(store.clean_partials() for store in stores.values())


class LocalOrchestrator:
    def __init__(self, workers: int = 1):
        self.workers = workers
        self._env = {k: v for k, v in os.environ.items() if k.startswith("REEL_")}
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
                    self.workers, env=self._env, on_crash=lambda: self._cleanup()
                )
            return self._slots

    def _cleanup(self) -> None:
        try:
            clean_partials(bootstrap.backends())
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
            jobs = bootstrap.backends().jobs
            record = jobs.get_render(render_id)
            result = RecipientResult(
                recipient_id=recipient_id(None, record.data, "api") if record else "api",
                line=0,
                status=Status.failed,
                reason=f"internal error: {exc}"[:2000],
                code="internal_error",
            )
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
        todo = [item for item in items if item.index not in done]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="reel-item") as threads:
            outcomes = list(threads.map(lambda item: self._run_item(b, batch_id, item), todo))
        if all(outcomes):  # else the server is stopping: the next start resumes the batch
            service.finalize_batch(b, batch_id)

    def _run_item(self, b: service.Backends, batch_id: str, item: BatchItem) -> bool:
        """Render one item in a worker; False when the workers were shut down first."""
        try:
            self._workers().run(_item_job, batch_id, item.model_dump_json())
        except Stopped:
            return False
        except Exception as crash:  # like the state machine's Catch: the recipient alone fails
            reason = f"internal error: {type(crash).__name__}: {crash}"
            service.record_failure(b, batch_id, item, reason, code="internal_error")
        return True

    def resume(self, jobs: SqliteJobStore) -> int:
        """Start again what a stopped or crashed server left queued or running: every step is
        idempotent, so finished outputs and recorded results are kept, and what killed writers
        left half-written is removed first. Returns how many jobs."""
        self._cleanup()
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
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, None
        if slots is not None:
            slots.close()
        self._batches.shutdown(wait=False, cancel_futures=True)
        self._renders.shutdown(wait=False, cancel_futures=True)


def _recorded(b: service.Backends, batch_id: str) -> set[int]:
    """Items a previous run of this batch already recorded (a restarted batch skips them)."""
    seen: set[int] = set()
    after = -1
    while page := b.jobs.list_results(batch_id, after=after, limit=1000):
        seen.update(index for index, _ in page)
        after = page[-1][0]
    return seen
