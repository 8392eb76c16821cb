"""Personal HLS streams rendered just in time: playlists at once, missing chunks in playback order.

A playlist request binds the recipient's current record and plans their stream (milliseconds),
answers with the playlist, and schedules the groups (a run in one rendition, or the audio
track) whose chunks are not stored yet, earliest deadline first: the deadline of a group is
the request's time plus its start on the timeline. Static groups are normally stored already
(the first request for a template renders them, shared by everyone after). A chunk requested
before it is ready waits for its group (bounded) instead of failing.

Rendering goes through a `RenderBackend`. Single flight: one render per group key at a time
in this process (a dict of futures under a lock, fed to a few worker threads), however many
viewers ask for it. Locally the backend renders in this process with the ffmpeg runner; on
AWS the same scheduler would invoke the render Lambda once per group (see `LambdaBackend`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError, NotReadyError, RenderError
from chalicelib.lru import Lru
from chalicelib.ports import BlobStore, ClaimStore
from chalicelib.render import ffmpeg as ff
from chalicelib.render import hls
from chalicelib.render.cache import SegmentCache
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.graph import frame_args
from chalicelib.render.hls import AudioGroup, Chunk, ChunkGroup, StreamPlan
from chalicelib.services.streams import StreamSource, stream_plan, stream_source
from chalicelib.template.plan import RenderPlan

WORKERS = 2  # groups rendered at once (each ffmpeg uses every core already)
WAIT_SECONDS = 25.0  # a chunk request waits this long for its group, then 503 (API Gateway: 29 s)
PLANS_KEPT = 1024
CHUNKS_KEPT = 200_000

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class NotReady(NotReadyError):
    """A chunk's group did not finish within the wait: the client should retry (503)."""

    def __init__(self, key: str):
        super().__init__(f"chunk {key[:16]} is still rendering", field="key")


@dataclass(frozen=True)
class RenderJob:
    """One group to make. `key` is the single-flight key (the group's content key); `marker`
    is the blob whose presence says the group is stored (its last chunk, written last)."""

    key: str
    marker: str
    source: StreamSource  # whose record (the AWS backend sends campaign, version and data)
    rendition: str | None  # None: the audio track
    index: int  # the group's place in its rendition
    plan: RenderPlan
    group: ChunkGroup | AudioGroup


class RenderBackend(Protocol):
    """Makes a group's chunks exist in the chunk store (returns when they are stored)."""

    def render(self, job: RenderJob) -> None: ...

    def still(self, chunk_blob: str, frame: int, out_blob: str) -> None:
        """Store frame number `frame` of a stored chunk as a JPEG under `out_blob`."""
        ...


class LocalBackend:
    """Renders in this process through the ffmpeg runner (`reel serve`, the local backend)."""

    def __init__(self, cache: SegmentCache, config: RenderConfig = DEFAULT):
        self.cache = cache
        self.config = config

    def render(self, job: RenderJob) -> None:
        work = Path(tempfile.mkdtemp(prefix="reel-hls-", dir=self.config.scratch()))
        try:
            if isinstance(job.group, AudioGroup):
                hls.render_audio(job.plan, job.group, self.cache, work, self.config)
            else:
                hls.render_group(job.group, self.cache, work, self.config)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def still(self, chunk_blob: str, frame: int, out_blob: str) -> None:
        store = self.cache.store
        with tempfile.TemporaryDirectory(prefix="reel-still-") as tmp:
            out = Path(tmp) / "still.jpg"
            source = str(store.fetch(chunk_blob, Path(tmp)))
            ff.run(frame_args(source, frame, str(out)), config=self.config)
            store.put_file(out_blob, out)


class LambdaBackend:
    """AWS: invoke the render Lambda synchronously for one group; the worker rebinds the
    record, plans the stream and renders the group into S3 (`render_group_event`), where
    CloudFront serves the chunks. The payload names the group by its place, never media."""

    def __init__(
        self,
        client: LambdaClient,
        function_name: str,
        *,
        claims: ClaimStore | None = None,
        store: BlobStore | None = None,
        lease: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.client = client
        self.function_name = function_name
        # Single flight across API instances: the first to claim a group renders it, the
        # others watch for its marker (the claim lapses after `lease`, if the first died).
        self.claims = claims
        self.store = store
        self.lease = lease
        self.clock = clock

    def render(self, job: RenderJob) -> None:
        claims, lease_key = self.claims, f"hls:{job.key}"
        if claims is not None and not claims.claim(lease_key, self.clock() + self.lease):
            self._await(job)
            return
        payload = {
            "action": "hls_group",
            "campaign_id": job.source.campaign_id,
            "version": job.source.version,
            "data": job.source.data,
            "rendition": job.rendition,
            "index": job.index,
            "key": job.key,
        }
        self._invoke(payload, f"group {job.key[:16]}")

    def still(self, chunk_blob: str, frame: int, out_blob: str) -> None:
        payload = {"action": "hls_still", "chunk": chunk_blob, "frame": frame, "out": out_blob}
        self._invoke(payload, f"still of {chunk_blob}")

    def _invoke(self, payload: dict[str, Any], what: str) -> None:
        resp = self.client.invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        if resp.get("FunctionError"):
            detail = resp["Payload"].read().decode("utf-8", "replace")[:2000]
            raise RenderError(f"the render Lambda failed on the {what}: {detail}")

    def _await(self, job: RenderJob) -> None:
        """Another instance renders this group: wait for its last chunk to be stored."""
        assert self.store is not None
        deadline = time.monotonic() + self.lease
        while not self.store.exists(job.marker):
            if time.monotonic() > deadline:
                raise RenderError(f"group {job.key[:16]} was not rendered by its claimant")
            time.sleep(0.2)


def render_group_event(
    b: Backends,
    *,
    campaign_id: str,
    version: str,
    data: dict[str, Any],
    rendition: str | None,
    index: int,
    key: str,
) -> None:
    """The render Lambda's side of `LambdaBackend`: make one group's chunks exist in the chunk
    store (idempotent: the same content lands under the same keys)."""
    plan = stream_plan(b, campaign_id, version, data)
    planned = hls.plan_stream(plan, config=b.render)
    group: ChunkGroup | AudioGroup = (
        planned.audio if rendition is None else planned.groups[rendition][index]
    )
    if group.key != key:  # the template or the engine changed under the request
        raise RenderError(f"group {key[:16]} is not in this stream any more")
    LocalBackend(b.cache, b.render).render(
        RenderJob(key, group.chunks[-1].blob, _NO_SOURCE, rendition, index, plan, group)
    )


_NO_SOURCE = StreamSource(
    token="", campaign_id="", recipient_id="", version="", data_hash="", data={}
)


class Scheduler:
    """Single-flight, earliest-deadline-first rendering of groups on a few worker threads."""

    def __init__(self, backend: RenderBackend, store: BlobStore, workers: int = WORKERS):
        self.backend = backend
        self.store = store
        self.renders: Counter[str] = Counter()  # renders per group key (tests, metrics)
        self._lock = threading.Condition()
        self._futures: dict[str, Future[None]] = {}
        self._jobs: dict[str, RenderJob] = {}
        self._started: set[str] = set()
        self._stored: set[str] = set()
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"reel-hls-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def stored(self, job: RenderJob) -> bool:
        if job.key in self._stored:
            return True
        if self.store.exists(job.marker):
            with self._lock:
                self._stored.add(job.key)
            return True
        return False

    def ensure(self, job: RenderJob, deadline: float) -> Future[None]:
        """The future of `job`'s group being stored; queued (again, if the new deadline is
        earlier) unless it is stored or already rendering."""
        if self.stored(job):
            done: Future[None] = Future()
            done.set_result(None)
            return done
        with self._lock:
            future = self._futures.get(job.key)
            if future is None:
                future = self._futures[job.key] = Future()
                self._jobs[job.key] = job
            if job.key not in self._started:
                # A job queued twice runs once: the worker skips entries already started.
                heapq.heappush(self._heap, (deadline, next(self._seq), job.key))
                self._lock.notify()
            return future

    def _next(self) -> tuple[RenderJob, Future[None]]:
        with self._lock:
            while True:
                while not self._heap:
                    self._lock.wait()
                _, _, key = heapq.heappop(self._heap)
                if key in self._started or key not in self._futures:
                    continue
                self._started.add(key)
                return self._jobs[key], self._futures[key]

    def _work(self) -> None:
        while True:
            job, future = self._next()
            error: BaseException | None = None
            rendered = False
            try:
                if not self.stored(job):
                    self.backend.render(job)
                    rendered = True
            except Exception as exc:  # the thread's entry point: the error goes to the waiters
                error = exc
            with self._lock:
                self._futures.pop(job.key, None)
                self._jobs.pop(job.key, None)
                self._started.discard(job.key)
                if error is None:
                    self._stored.add(job.key)
                if rendered:
                    self.renders[job.key] += 1
            if error is None:
                future.set_result(None)
            else:  # the next request for it tries again
                future.set_exception(error)


@dataclass(frozen=True)
class _Open:
    source: StreamSource
    plan: RenderPlan
    stream: StreamPlan


class Streams:
    """The stream service of one process: playlists, chunks, and the scheduler behind them."""

    def __init__(
        self,
        b: Backends,
        backend: RenderBackend,
        *,
        workers: int = WORKERS,
        wait: float = WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        cdn: bool = False,
    ):
        self.b = b
        self.wait = wait
        # With a CDN in front of the store (AWS: CloudFront), a static chunk already stored is
        # listed by its signed CDN URL: shared, cached at the edge, never through the API.
        self.cdn = cdn
        self.clock = clock
        self.scheduler = Scheduler(backend, b.cache.store, workers)
        self._plans: Lru[tuple[str, str, str], tuple[RenderPlan, StreamPlan]] = Lru(PLANS_KEPT)
        self._chunks: Lru[str, tuple[Chunk, RenderJob]] = Lru(CHUNKS_KEPT)

    # ── planning ──

    def open(self, token: str) -> _Open:
        """Bind and plan a recipient's stream (memoized by template version and data hash)."""
        source = stream_source(self.b, token)
        memo = (source.campaign_id, source.version, source.data_hash)
        found = self._plans.get(memo)
        if found is None:
            # URLs from data fetched once per (version, data): the plan keeps the local copies
            # its groups and audio are rendered from.
            plan = stream_plan(self.b, source.campaign_id, source.version, source.data)
            found = (plan, hls.plan_stream(plan, config=self.b.render))
            self._plans.put(memo, found)
        opened = _Open(source, *found)
        self._remember(opened)
        return opened

    def _jobs(self, opened: _Open, rendition: str | None) -> list[RenderJob]:
        sp = opened.stream
        if rendition is None:
            audio = sp.audio
            return [
                RenderJob(
                    audio.key, audio.chunks[-1].blob, opened.source, None, 0, opened.plan, audio
                )
            ]
        return [
            RenderJob(g.key, g.chunks[-1].blob, opened.source, rendition, i, opened.plan, g)
            for i, g in enumerate(sp.groups[rendition])
        ]

    def _remember(self, opened: _Open) -> None:
        for name in [*(r.name for r in opened.stream.renditions), None]:
            for job in self._jobs(opened, name):
                for chunk in job.group.chunks:
                    self._chunks.put(chunk.key, (chunk, job))

    def schedule(self, opened: _Open, rendition: str | None) -> list[Future[None]]:
        """Queue the missing groups of a rendition (or the audio), in playback order."""
        now = self.clock()
        return [
            self.scheduler.ensure(job, now + job.group.chunks[0].start)
            for job in self._jobs(opened, rendition)
        ]

    # ── playlists ──

    def master(self, token: str) -> str:
        """The master playlist; starts making the first rendition and the audio."""
        opened = self.open(token)
        self.schedule(opened, None)
        self.schedule(opened, opened.stream.renditions[0].name)
        return hls.master_playlist(opened.stream.renditions, "audio.m3u8")

    def media(self, token: str, rendition: str) -> str:
        """A rendition's media playlist; starts making its missing chunks."""
        opened = self.open(token)
        if opened.stream.rendition(rendition) is None:
            raise NotFoundError(f"no rendition {rendition!r}", field="rendition")
        self.schedule(opened, rendition)
        return self._playlist(self._jobs(opened, rendition))

    def audio(self, token: str) -> str:
        """The audio rendition's playlist (shared chunks)."""
        opened = self.open(token)
        self.schedule(opened, None)
        return self._playlist(self._jobs(opened, None))

    def _playlist(self, jobs: list[RenderJob]) -> str:
        entries = []
        for job in jobs:
            on_cdn = self.cdn and not job.group.chunks[0].personal and self.scheduler.stored(job)
            for c in job.group.chunks:
                uri = self.b.cache.store.url(c.blob) if on_cdn else _uri(c)
                entries.append((c.duration, uri))
        return hls.media_playlist(entries)

    # ── the poster ──

    def poster(self, token: str) -> bytes:
        """The recipient's poster for their current data: the frame at the template's poster
        time, taken from the stream's chunk (rendered just in time like any other), kept under
        a key of that chunk and time. Works for someone never rendered."""
        opened = self.open(token)
        at = opened.plan.poster_time
        index, chunk = _poster_chunk(opened.stream, at)
        offset = max(0.0, at - chunk.start)
        blob = f"posters/stream-{chunk.key[:32]}-{round(offset * 1000)}.jpg"
        try:
            return self.b.cache.store.get_bytes(blob)
        except KeyError:
            pass
        job = self._jobs(opened, opened.stream.renditions[0].name)[index]
        try:
            self.scheduler.ensure(job, self.clock()).result(timeout=self.wait)
        except FutureTimeout:
            raise NotReady(chunk.key) from None
        fps = opened.stream.fps
        frame = max(0, min(round(offset * fps), round(chunk.duration * fps) - 1))
        self.scheduler.backend.still(chunk.blob, frame, blob)  # (on AWS: in the render Lambda)
        return self.b.cache.store.get_bytes(blob)

    # ── chunks ──

    def chunk(self, key: str, *, personal: bool, token: str | None = None) -> bytes:
        """A chunk's bytes, waiting (bounded) for its group when it is not stored yet.

        Static chunks (`personal=False`) are looked up by key alone; personal ones need the
        recipient's token, and a key this process does not know is looked up by planning it.
        """
        blob = hls.chunk_blob(key, personal)
        try:
            return self.b.cache.store.get_bytes(blob)
        except (KeyError, ValueError):
            pass
        known = self._chunks.get(key)
        if known is None and token is not None:
            self.open(token)  # a restarted process, or a playlist served by another one
            known = self._chunks.get(key)
        if known is None or known[0].personal != personal:
            raise NotFoundError("no such chunk", field="key")
        job = known[1]
        future = self.scheduler.ensure(job, self.clock())  # someone is waiting: now
        try:
            future.result(timeout=self.wait)
        except FutureTimeout:
            raise NotReady(key) from None
        return self.b.cache.store.get_bytes(blob)


def _poster_chunk(stream: StreamPlan, at: float) -> tuple[int, Chunk]:
    """The first rendition's group index and chunk that show the frame at `at` seconds."""
    name = stream.renditions[0].name
    for index, group in enumerate(stream.groups[name]):
        for chunk in group.chunks:
            if chunk.start <= at < chunk.start + chunk.duration:
                return index, chunk
    last = stream.groups[name][-1]
    return len(stream.groups[name]) - 1, last.chunks[-1]


def _uri(chunk: Chunk) -> str:
    """A chunk's URL relative to its playlist (/hls/{token}/…): shared ones under /hls/s/."""
    return f"p/{chunk.key}.ts" if chunk.personal else f"../s/{chunk.key}.ts"
