"""Personal HLS streams rendered just in time: playlists at once, missing chunks in playback order.

A playlist request binds the recipient's current record and plans their stream (milliseconds),
answers with the playlist, and starts the groups (a run in one rendition, or the audio track)
whose chunks are not stored yet, earliest deadline first: the deadline of a group is the
request's time plus its start on the timeline. Static groups are normally stored already (the
first request for a template renders them, shared by everyone after). A chunk requested before
it is ready waits for its group (bounded), then is answered 503 with Retry-After.

How missing groups get made is the one place the two backends differ (`Renders`):

- `ThreadRenders` (`reel serve`, one long-lived process): a single-flight scheduler feeds a few
  worker threads that render here with the ffmpeg runner (`GroupRenderer`); a chunk request
  waits on its group's future.
- `LambdaRenders` (AWS): Lambda freezes a container as soon as it has answered, so nothing may
  run after the response. Each missing group is handed to the render Lambda by an asynchronous
  invocation (`InvocationType=Event`), in deadline order, and the request answers at once.
  Asynchronous invocations rather than a queue: each group starts in its own container at once
  (an SQS event source polls and scales up gradually), there is no queue to provision, and
  Lambda's own retries and on-failure destination (a dead-letter queue) handle a crashed
  render. A chunk request that finds its chunk missing checks the store a few times with
  growing pauses (about 2 s in all, never a tight loop) and then answers 503 with Retry-After:
  the player retries, no Lambda waits on another. The renderer claims its group with a
  conditional write (a lease), so a group dispatched twice is rendered once; a dispatch is
  itself marked for a lease, so a render that crashed or froze is dispatched again by the next
  chunk request after it.
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
from collections.abc import Callable, Sequence
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
WAIT_SECONDS = 25.0  # local: a chunk request waits this long for its group, then 503
LEASE_SECONDS = 15.0  # AWS: a render claim, and a dispatch, hold this long
FIRST_CHECK = 0.1  # AWS: the first pause between two looks at the store (doubling after)
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
    index: int  # the group's place in its rendition (or the audio track)
    plan: RenderPlan
    group: ChunkGroup | AudioGroup


class GroupRenderer:
    """Renders a group's chunks (and a poster frame) in this process through the ffmpeg
    runner: behind `reel serve`'s worker threads, and inside the render Lambda."""

    def __init__(self, cache: SegmentCache, config: RenderConfig = DEFAULT):
        self.cache = cache
        self.config = config

    def render(self, job: RenderJob) -> None:
        work = Path(tempfile.mkdtemp(prefix="reel-hls-", dir=self.config.scratch()))
        # The lease holds the cached runs the group is cut from until its chunks are stored.
        try:
            with self.cache.lease():
                if isinstance(job.group, AudioGroup):
                    hls.render_audio(job.plan, job.group, self.cache, work, self.config)
                else:
                    hls.render_group(job.group, self.cache, work, self.config)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def still(self, chunk_blob: str, init_blob: str, frame: int, out_blob: str) -> None:
        """Store frame number `frame` of a stored chunk as a JPEG under `out_blob` (the chunk
        decodes after its initialization segment)."""
        store = self.cache.store
        with tempfile.TemporaryDirectory(prefix="reel-still-") as tmp:
            out, source = Path(tmp) / "still.jpg", Path(tmp) / "chunk.mp4"
            source.write_bytes(store.get_bytes(init_blob) + store.get_bytes(chunk_blob))
            ff.run(frame_args(str(source), frame, str(out)), config=self.config)
            store.put_file(out_blob, out)


class Renders(Protocol):
    """How a stream's missing groups get made: started (never waited for), then waited for
    briefly by the request that needs one."""

    def start(self, jobs: Sequence[tuple[float, RenderJob]]) -> None:
        """Start making the groups of (deadline, job) pairs not stored yet: earliest first."""
        ...

    def wait(self, job: RenderJob, timeout: float) -> bool:
        """Whether `job`'s group is stored within `timeout` seconds (started already)."""
        ...

    def still(
        self, chunk_blob: str, init_blob: str, frame: int, out_blob: str, timeout: float
    ) -> bool:
        """Make a poster frame of a stored chunk; whether it is stored within `timeout`."""
        ...


class ThreadRenders:
    """The local backend: groups rendered on this process's worker threads (`Scheduler`)."""

    def __init__(
        self,
        renderer: GroupRenderer,
        store: BlobStore,
        workers: int = WORKERS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.renderer = renderer
        self.clock = clock
        self.scheduler = Scheduler(renderer, store, workers)

    def start(self, jobs: Sequence[tuple[float, RenderJob]]) -> None:
        for deadline, job in jobs:
            self.scheduler.ensure(job, deadline)

    def wait(self, job: RenderJob, timeout: float) -> bool:
        try:
            self.scheduler.ensure(job, self.clock()).result(timeout=timeout)
        except FutureTimeout:
            return False
        return True

    def still(
        self, chunk_blob: str, init_blob: str, frame: int, out_blob: str, timeout: float
    ) -> bool:
        self.renderer.still(chunk_blob, init_blob, frame, out_blob)
        return True


class LambdaRenders:
    """AWS: missing groups handed to the render Lambda by asynchronous invocations (see the
    module docstring); nothing runs in this container once it has answered."""

    def __init__(
        self,
        client: LambdaClient,
        function_name: str,
        *,
        claims: ClaimStore,
        store: BlobStore,
        lease: float = LEASE_SECONDS,
        first_check: float = FIRST_CHECK,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.function_name = function_name
        self.claims = claims
        self.store = store
        self.lease = lease
        self.first_check = first_check
        self.clock = clock
        self.sleep = sleep
        self.invoked: Counter[str] = Counter()  # asynchronous invocations per action

    def start(self, jobs: Sequence[tuple[float, RenderJob]]) -> None:
        for _, job in sorted(jobs, key=lambda pair: pair[0]):
            # One dispatch per lease: the requests of every viewer and container in the
            # meantime start nothing more; after it (a crashed or frozen render), the next
            # request for the group dispatches it again.
            if not self.claims.claim(f"hls-sent:{job.key}", self.clock() + self.lease):
                continue
            payload = {
                "action": "hls_group",
                "campaign_id": job.source.campaign_id,
                "version": job.source.version,
                "data": job.source.data,
                "rendition": job.rendition,
                "index": job.index,
                "key": job.key,
            }
            self._invoke(payload)

    def wait(self, job: RenderJob, timeout: float) -> bool:
        return self._appears(job.marker, timeout)

    def still(
        self, chunk_blob: str, init_blob: str, frame: int, out_blob: str, timeout: float
    ) -> bool:
        if self.claims.claim(f"hls-still:{out_blob}", self.clock() + self.lease):
            payload = {
                "action": "hls_still",
                "chunk": chunk_blob,
                "init": init_blob,
                "frame": frame,
                "out": out_blob,
            }
            self._invoke(payload)
        return self._appears(out_blob, timeout)

    def _invoke(self, payload: dict[str, Any]) -> None:
        # Event: Lambda queues it and answers 202 at once; its retries and on-failure
        # destination take over from there (nobody waits for the render).
        self.client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )
        self.invoked[str(payload["action"])] += 1

    def _appears(self, blob: str, timeout: float) -> bool:
        """Whether `blob` is stored within `timeout`: a few looks with doubling pauses."""
        waited, pause = 0.0, self.first_check
        while not self.store.exists(blob):
            if waited >= timeout:
                return False
            step = min(pause, timeout - waited)
            self.sleep(step)
            waited, pause = waited + step, pause * 2
        return True


def render_group_event(
    b: Backends,
    *,
    campaign_id: str,
    version: str,
    data: dict[str, Any],
    rendition: str | None,
    index: int,
    key: str,
    lease: float = LEASE_SECONDS,
) -> str:
    """The render Lambda's side of `LambdaRenders`: make one group's chunks exist in the chunk
    store (idempotent: the same content lands under the same keys). The group is claimed for
    `lease` seconds first: "skipped" if another render holds it, "stored" if it is there
    already, "done" once rendered."""
    plan = stream_plan(b, campaign_id, version, data)
    planned = hls.plan_stream(plan, config=b.render)
    group: ChunkGroup | AudioGroup = (
        planned.audio[index] if rendition is None else planned.groups[rendition][index]
    )
    if group.key != key:  # the template or the engine changed under the request
        raise RenderError(f"group {key[:16]} is not in this stream any more")
    marker = group.chunks[-1].blob
    if b.cache.store.exists(marker):
        return "stored"
    if not b.claims.claim(f"hls:{key}", time.time() + lease):
        return "skipped"
    GroupRenderer(b.cache, b.render).render(
        RenderJob(key, marker, _NO_SOURCE, rendition, index, plan, group)
    )
    return "done"


_NO_SOURCE = StreamSource(
    token="", campaign_id="", recipient_id="", version="", data_hash="", data={}
)


class Scheduler:
    """Single-flight, earliest-deadline-first rendering of groups on a few worker threads."""

    def __init__(self, backend: GroupRenderer, store: BlobStore, workers: int = WORKERS):
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


@dataclass(frozen=True)
class _Part:
    """A chunk or an initialization segment this process has planned, and the group that
    stores it."""

    blob: str
    personal: bool
    job: RenderJob


class Streams:
    """The stream service of one process: playlists, chunks, and the renders behind them."""

    def __init__(
        self,
        b: Backends,
        renders: Renders,
        *,
        wait: float = WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        cdn: bool = False,
    ):
        self.b = b
        self.renders = renders
        self.wait = wait
        # With a CDN in front of the store (AWS: CloudFront), a static chunk already stored is
        # listed by its signed CDN URL: shared, cached at the edge, never through the API.
        # One not stored yet is listed under the token, so that whichever API container
        # answers can plan it (it may never have seen this stream).
        self.cdn = cdn
        self.clock = clock
        self._plans: Lru[tuple[str, str, str], tuple[RenderPlan, StreamPlan]] = Lru(PLANS_KEPT)
        self._parts: Lru[str, _Part] = Lru(CHUNKS_KEPT)
        self._stored: Lru[str, bool] = Lru(CHUNKS_KEPT)  # blobs seen stored (immutable)

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
        groups: Sequence[ChunkGroup | AudioGroup] = (
            sp.audio if rendition is None else sp.groups[rendition]
        )
        return [
            RenderJob(g.key, g.chunks[-1].blob, opened.source, rendition, i, opened.plan, g)
            for i, g in enumerate(groups)
        ]

    def _remember(self, opened: _Open) -> None:
        for name in [*(r.name for r in opened.stream.renditions), None]:
            jobs = self._jobs(opened, name)
            for job in jobs:
                for chunk in job.group.chunks:
                    self._parts.put(chunk.key, _Part(chunk.blob, chunk.personal, job))
            init = opened.stream.inits[name]
            maker = next(j for j in jobs if j.key == init.group)
            self._parts.put(init.key, _Part(init.blob, False, maker))

    def _has(self, blob: str) -> bool:
        if self._stored.get(blob):
            return True
        if self.b.cache.store.exists(blob):
            self._stored.put(blob, True)
            return True
        return False

    def schedule(self, opened: _Open, rendition: str | None) -> None:
        """Start the missing groups of a rendition (or the audio), in playback order."""
        now = self.clock()
        jobs = self._jobs(opened, rendition)
        self.renders.start(
            [(now + job.group.chunks[0].start, job) for job in jobs if not self._has(job.marker)]
        )

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
        return self._playlist(opened, rendition)

    def audio(self, token: str) -> str:
        """The audio rendition's playlist (shared chunks)."""
        opened = self.open(token)
        self.schedule(opened, None)
        return self._playlist(opened, None)

    def _playlist(self, opened: _Open, rendition: str | None) -> str:
        entries = []
        for job in self._jobs(opened, rendition):
            shared = self.cdn and not job.group.chunks[0].personal and self._has(job.marker)
            for c in job.group.chunks:
                uri = self.b.cache.store.url(c.blob) if shared else self._uri(c.key, c.personal)
                entries.append((c.duration, uri))
        init = opened.stream.inits[rendition]
        if self.cdn and self._has(init.blob):
            init_uri = self.b.cache.store.url(init.blob)
        else:
            init_uri = self._uri(init.key, False, "mp4")
        return hls.media_playlist(entries, init_uri)

    def _uri(self, key: str, personal: bool, ext: str = "m4s") -> str:
        """A part's URL relative to its playlist (/hls/{token}/…): personal ones under the
        token; shared ones under /hls/s/ (locally), or under the token until they are stored
        (with a CDN, see __init__)."""
        if personal:
            return f"p/{key}.{ext}"
        return f"s/{key}.{ext}" if self.cdn else f"../s/{key}.{ext}"

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
        first = opened.stream.renditions[0].name
        jobs = self._jobs(opened, first)
        init = opened.stream.inits[first]
        # The chunk decodes after its rendition's initialization segment, which the
        # rendition's first group stores.
        needed = [jobs[index], *(j for j in jobs if j.key == init.group and j is not jobs[index])]
        self.renders.start([(self.clock(), job) for job in needed])
        if not all(self.renders.wait(job, self.wait) for job in needed):
            raise NotReady(chunk.key)
        fps = opened.stream.fps
        frame = max(0, min(round(offset * fps), round(chunk.duration * fps) - 1))
        if not self.renders.still(chunk.blob, init.blob, frame, blob, self.wait):
            raise NotReady(chunk.key)
        return self.b.cache.store.get_bytes(blob)

    # ── chunks ──

    def chunk(self, key: str, *, personal: bool, token: str | None = None) -> bytes:
        """A chunk's bytes, waiting (bounded) for its group when it is not stored yet.

        Static chunks (`personal=False`) are looked up by key alone; personal ones need the
        recipient's token, and a key this process does not know is looked up by planning it.
        """
        return self._part(key, hls.chunk_blob(key, personal), personal, token)

    def init(self, key: str, *, token: str | None = None) -> bytes:
        """An initialization segment's bytes (shared), waiting like a chunk."""
        return self._part(key, hls.init_blob(key), False, token)

    def _part(self, key: str, blob: str, personal: bool, token: str | None) -> bytes:
        try:
            return self.b.cache.store.get_bytes(blob)
        except (KeyError, ValueError):
            pass
        known = self._parts.get(key)
        if known is None and token is not None:
            self.open(token)  # a restarted process, or a playlist served by another one
            known = self._parts.get(key)
        if known is None or known.personal != personal or known.blob != blob:
            raise NotFoundError("no such chunk", field="key")
        job = known.job
        self.renders.start([(self.clock(), job)])  # someone is waiting: now
        if not self.renders.wait(job, self.wait):
            raise NotReady(key)
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
    """A chunk's URL relative to its playlist (/hls/{token}/…), locally: shared ones under
    /hls/s/."""
    return f"p/{chunk.key}.m4s" if chunk.personal else f"../s/{chunk.key}.m4s"
