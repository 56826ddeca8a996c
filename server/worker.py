"""A worker's side of the scale-out (``voxlive serve --role worker``; docs/scale-out.md).

A worker runs the engine and its batcher as ``--role all`` does, but its sentences come
from the Redis work streams instead of sockets: it pulls only as many as its batcher has
room for, performs each alone (the same samples it has inside its utterance,
``engine.interface.alone``), and writes every chunk of final audio to the result stream
of the gateway that asked, tagged (utterance, sentence, chunk, attempt) so that the
gateway can drop what a retry repeats. A sentence is acknowledged once its last chunk is
written: a worker that dies before that leaves it pending, and another worker takes it
over (XAUTOCLAIM) once it has been idle ``claim_idle_s``. While a sentence runs, its
claim is refreshed every ``claim_idle_s / 4``, so a long one is not taken away from a
live worker; as often, it looks for sentences other workers left idle.

Threads: the engine thread runs the batcher; the engine side calls the listeners on
threads of its own; everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from voxlive.engine.interface import (
    Engine,
    FinalChunk,
    Performance,
    SentenceRequest,
    alone,
)
from voxlive.protocol.types import PRIORITIES, Priority

from .batcher import Batcher, FailStatus, Job
from .streams import (
    GROUP,
    REDIS_RETRY_S,
    CancelFeed,
    Pulled,
    QueueDepth,
    ResultWriter,
    StreamsUnavailable,
    WorkItem,
    WorkQueue,
    watch_depth,
    work_key,
)
from .streams.jobs import (
    SentenceJob,
    Status,
    chunk_fields,
    read_job,
    started_fields,
    status_fields,
)

__all__ = ["Worker"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Owner:
    """One utterance on this worker (the batcher runs two of its sentences at once)."""

    paused: bool = False


@dataclass(eq=False)
class _Item:
    """A sentence this worker holds (pulled or reclaimed, not yet acked)."""

    work: WorkItem
    job: SentenceJob | None
    owner: _Owner | None = None
    batch_job: Job | None = None
    performance: Performance | None = None
    chunks: int = 0
    """Results written or queued for it."""
    done: bool = False
    """Its last result is queued: nothing more is written for it."""
    started_at: float = field(default_factory=time.monotonic)


class Worker:
    """Pulls sentences for ``batcher`` and writes their audio back (module docstring).

    Args:
        engine: the engine ``batcher`` drives (a marked one: every output is marked).
        batcher: running on its own thread (``Batcher.run``).
        redis: from :func:`~.streams.connect`.
        consumer: this worker's name in the consumer group (unique per process).
        claim_idle_s: a sentence idle this long at a worker is taken over by another.
        capacity: sentences held at once (default: the batcher's ``max_active``).
    """

    def __init__(
        self,
        engine: Engine,
        batcher: Batcher,
        redis: aioredis.Redis,
        consumer: str,
        *,
        claim_idle_s: float = 2.0,
        capacity: int | None = None,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.redis = redis
        self.consumer = consumer
        self.claim_idle_s = claim_idle_s
        self.capacity = capacity or batcher.max_active
        self.work = WorkQueue(redis)
        self.results = ResultWriter(redis)
        self.cancels = CancelFeed(redis)
        self._voices = frozenset(v.name for v in engine.voices)
        self.items: dict[str, _Item] = {}
        """What this worker holds, by work entry id."""
        self._owners: weakref.WeakValueDictionary[str, _Owner] = weakref.WeakValueDictionary()
        self._outbox: asyncio.Queue[tuple[_Item, int, dict[str, bytes], bool]] = asyncio.Queue()
        self._room = asyncio.Event()
        self._draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.up = True
        """Redis answered the last call (readiness)."""
        self.depth: dict[Priority, QueueDepth] = {p: QueueDepth(0, 0) for p in PRIORITIES}
        self.pulled = 0
        self.reclaimed = 0
        """Sentences taken over from a worker that stopped answering."""
        self.completed = 0
        self.failed = 0
        self.chunks_sent = 0

    # -- life ------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pull(), name="voxlive-worker-pull"),
            loop.create_task(self._send(), name="voxlive-worker-send"),
            loop.create_task(self._keep(), name="voxlive-worker-claims"),
            loop.create_task(self._watch_cancels(), name="voxlive-worker-cancels"),
            loop.create_task(watch_depth(self.work, self._depth_read), name="voxlive-worker-depth"),
        ]
        logger.info("worker %s pulling up to %d sentences", self.consumer, self.capacity)

    async def drain(self, timeout_s: float) -> int:
        """Stop taking work and finish what is held, for up to ``timeout_s``.

        Returns:
            Sentences still held (left pending: another worker takes them over).
        """
        self._draining = True
        self._room.set()
        end = time.monotonic() + timeout_s
        while self.items and time.monotonic() < end:
            await asyncio.sleep(0.05)
        return len(self.items)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if not self.items:  # nothing pending under this name: leave the group tidy
            with contextlib.suppress(Exception):
                for priority in PRIORITIES:
                    await self.redis.xgroup_delconsumer(work_key(priority), GROUP, self.consumer)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    @property
    def ready(self) -> bool:
        return self.up and not self._draining and self.batcher.alive

    # -- taking work -----------------------------------------------------------------

    async def _pull(self) -> None:
        while not self._draining:
            room = self.capacity - len(self.items)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                pulled = await self.work.pull(self.consumer, room, block_ms=1000)
            except StreamsUnavailable:
                self._down()
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            self.up = True
            self.pulled += len(pulled.items)
            self._take(pulled)

    async def _keep(self) -> None:
        """Refresh the claims on what runs here; take over what others left idle."""
        every = self.claim_idle_s / 4
        while True:
            await asyncio.sleep(every)
            try:
                await self._refresh()
                room = self.capacity - len(self.items)
                if room > 0 and not self._draining:
                    idle_ms = int(self.claim_idle_s * 1000)
                    pulled = await self.work.reclaim(self.consumer, idle_ms, room)
                    taken = [w for w in pulled.items if w.id not in self.items]
                    if taken:
                        logger.warning(
                            "took over %d sentences from a worker that stopped answering",
                            len(taken),
                        )
                    self.reclaimed += len(taken)
                    self._take(pulled)
            except StreamsUnavailable:
                self._down()

    async def _refresh(self) -> None:
        held = [i.work.id for i in self.items.values() if not i.done]
        if not held:
            return
        kept = set(await self.work.refresh(self.consumer, held))
        for entry in held:
            item = self.items.get(entry)
            if item is not None and entry not in kept and not item.done:
                logger.warning("sentence %s was taken over by another worker: stopped", entry)
                self._stop(item)
                del self.items[entry]
                self._room.set()

    def _take(self, pulled: Pulled) -> None:
        # An entry this worker holds already comes back from a reclaim after Redis was
        # away for longer than claim_idle_s (its refreshes failed): it runs here still.
        for work in pulled.expired:
            if work.id not in self.items:
                self._hold(work, "expired", "deadline passed")
        for work in pulled.dead:
            if work.id not in self.items:
                self._hold(work, "failed", "synthesis failed on every worker that tried it")
        for work in pulled.items:
            if work.id not in self.items:
                self._hold(work)

    def _hold(self, work: WorkItem, status: Status | None = None, reason: str = "") -> None:
        try:
            job = read_job(work.fields)
        except ValueError as exc:
            logger.error("work entry %s dropped: %s", work.id, exc)
            self.items[work.id] = item = _Item(work, None)
            self._end(item)
            return
        item = self.items[work.id] = _Item(work, job)
        if status is not None:
            self._finish(item, status, reason)
        elif self.cancels.is_cancelled(job.utterance):
            self._end(item)
        elif job.sample_rate != self.engine.sample_rate:
            rates = f"{job.sample_rate} Hz asked, {self.engine.sample_rate} Hz here"
            self._finish(item, "failed", f"the worker runs another voice ({rates})")
        elif job.sentence.voice and job.sentence.voice not in self._voices:
            self._finish(item, "failed", f"the worker does not speak voice {job.sentence.voice}")
        else:
            self._start(item, job)

    def _start(self, item: _Item, job: SentenceJob) -> None:
        assert self._loop is not None
        try:
            performance = self.engine.perform(
                alone(job.controls, job.index), _Listener(self._loop, self, item)
            )
        except ValueError as exc:
            self._finish(item, "failed", str(exc))
            return
        owner = self._owners.get(job.utterance)
        if owner is None:
            owner = self._owners[job.utterance] = _Owner()
        deadline = item.work.deadline
        item.owner, item.performance = owner, performance
        item.batch_job = Job(
            request=SentenceRequest(performance, 0, job.sentence),
            sink=_Sink(self, item),
            owner=owner,
            session=job.session,
            priority=item.work.priority,
            deadline=None if deadline is None else time.monotonic() + deadline - time.time(),
        )
        performance.end(1)
        try:
            self.batcher.submit([item.batch_job])
        except Exception as exc:  # Overloaded: more pulled than the batcher takes
            self._finish(item, "failed", f"the worker could not queue it: {exc}")

    # -- results ---------------------------------------------------------------------

    def on_started(self, item: _Item) -> None:
        """The batcher began the sentence: its chunk 0 tells the gateway (loop thread)."""
        if not item.done and item.chunks == 0:
            self._outbox.put_nowait((item, 0, started_fields(), False))
            item.chunks = 1

    def on_audio(self, item: _Item, chunk: FinalChunk) -> None:
        """A chunk of the sentence's final audio (loop thread)."""
        if item.done:
            return
        last = chunk.end
        self._outbox.put_nowait((item, item.chunks, chunk_fields(chunk.samples, chunk.marks), last))
        item.chunks += 1
        if last:
            item.done = True
            self.completed += 1

    def _finish(self, item: _Item, status: Status, reason: str) -> None:
        """End the sentence without (more) audio; the gateway fails its utterance."""
        if item.done:
            return
        self._stop(item)
        self.failed += 1
        self._outbox.put_nowait((item, item.chunks, status_fields(status, reason), True))
        item.chunks += 1

    def _stop(self, item: _Item) -> None:
        item.done = True
        if item.batch_job is not None:
            item.batch_job.cancelled = True
        if item.performance is not None:
            item.performance.cancel()

    def _end(self, item: _Item) -> None:
        """Give the sentence up without a word (cancelled, unreadable): ack it."""
        self._stop(item)
        self._outbox.put_nowait((item, -1, {}, True))

    async def _send(self) -> None:
        """Results in order; a sentence's entry is acked after its last one."""
        while True:
            item, index, fields, last = await self._outbox.get()
            while True:
                try:
                    if index >= 0 and item.job is not None and self.items.get(item.work.id) is item:
                        job = item.job
                        await self.results.send(
                            job.gateway,
                            job.utterance,
                            job.index,
                            index,
                            fields,
                            last=last,
                            attempt=item.work.attempt,
                        )
                        self.chunks_sent += 1
                    if last and self.items.get(item.work.id) is item:
                        # (an entry taken over by another worker is that worker's to ack)
                        await self.work.ack([item.work.id])
                        del self.items[item.work.id]
                        self._room.set()
                    self.up = True
                    break
                except StreamsUnavailable:
                    # Results wait for Redis (the gateway fails its utterances meanwhile;
                    # a late result for them is dropped there).
                    self._down()
                    await asyncio.sleep(REDIS_RETRY_S)

    async def _watch_cancels(self) -> None:
        while True:
            try:
                cancelled = await self.cancels.poll(block_ms=1000)
            except StreamsUnavailable:
                self._down()
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            for utterance in cancelled:
                for item in list(self.items.values()):
                    if item.job is not None and item.job.utterance == utterance and not item.done:
                        self._end(item)

    def _depth_read(self, depth: dict[Priority, QueueDepth] | None) -> None:
        if depth is None:
            self._down()
        else:
            self.depth = depth

    def _down(self) -> None:
        if self.up:
            logger.warning("Redis is out of reach: waiting for it")
        self.up = False


class _Listener:
    """A sentence's performance listener: engine-side calls hop onto the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, worker: Worker, item: _Item) -> None:
        self._loop = loop
        self._worker = worker
        self._item = item

    def audio(self, chunk: FinalChunk) -> None:
        self._loop.call_soon_threadsafe(self._worker.on_audio, self._item, chunk)

    def failed(self, reason: str) -> None:
        self._loop.call_soon_threadsafe(self._worker._finish, self._item, "failed", reason)


class _Sink:
    """What the batcher says of a sentence (on the loop thread)."""

    def __init__(self, worker: Worker, item: _Item) -> None:
        self._worker = worker
        self._item = item

    def job_started(self, job: Job, queue_s: float) -> None:
        self._worker.on_started(self._item)

    def job_failed(
        self, job: Job, status: FailStatus, reason: str, retry_after_s: float | None = None
    ) -> None:
        self._worker._finish(self._item, "expired" if status == "expired" else "failed", reason)
