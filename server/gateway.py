"""A gateway's side of the scale-out (``voxlive serve --role gateway``; docs/scale-out.md).

The gateway runs everything of ``--role all`` up to the batcher: sockets, protocol,
sessions, the front end, the audio cache, voice registration. Where ``--role all``
hands sentences to its own batcher, a gateway hands them to :class:`RemoteBatcher`,
which puts each on a Redis work stream; workers perform them and send the audio back
to this gateway's result stream. :class:`RemoteEngine` is the engine the gateway's
utterances see: its front end is the local engine's, its performances
(:class:`RemotePerformance`) put the sentences that come back in order and move their
marks into place, so an utterance cannot tell a gateway from ``--role all`` (with an
expressive stage, the samples of its later sentences differ: docs/scale-out.md).

Everything here runs on the event loop thread.

Failures (SPEC.md §6): a full work stream refuses the utterance with a retryable
``overloaded``; Redis out of reach refuses new work, and fails the utterances in flight,
with a retryable ``unavailable`` (their sentences may be gone with it); the gateway
keeps its sockets and takes work again as soon as Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final

import numpy as np
import redis.asyncio as aioredis

from voxlive.engine.interface import (
    Controls,
    Decoded,
    Engine,
    EngineWrapper,
    FinalChunk,
    Listener,
    SentenceRequest,
    Stream,
    own,
)
from voxlive.protocol.types import PRIORITIES, Priority

from .batcher import FailStatus, Job
from .marks import shift_marks
from .streams import (
    REDIS_RETRY_S,
    CancelFeed,
    Overloaded,
    QueueDepth,
    Result,
    ResultReader,
    StreamsUnavailable,
    WorkQueue,
    watch_depth,
)
from .streams.jobs import SentenceJob, job_fields, read_chunk

__all__ = ["RemoteBatcher", "RemoteEngine", "RemotePerformance"]

logger = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 1.0
"""``retry_after_ms`` of an ``unavailable`` while Redis is out of reach."""


class RemotePerformance:
    """One utterance whose sentences workers perform (see module docstring).

    Results arrive deduplicated and in order within each sentence
    (:class:`~.streams.ResultReader`); sentences may arrive interleaved. Chunks of
    sentence *i* go on once sentences *0 … i-1* have ended; each sentence's marks move
    by the samples passed on before it.
    """

    def __init__(
        self, batcher: RemoteBatcher, key: str, controls: Controls, listener: Listener
    ) -> None:
        self.batcher = batcher
        self.key = key
        self.controls = controls
        self.listener = listener
        self.jobs: dict[int, Job] = {}
        """Sentences submitted, by index (their sinks hear of failures)."""
        self._next = 0
        self._held: dict[int, list[tuple[Result, FinalChunk]]] = {}
        self._samples = 0
        self._count: int | None = None
        self.finished = False

    # -- the utterance's side --------------------------------------------------------

    def end(self, sentences: int) -> None:
        self._count = sentences
        self._maybe_close()

    def cancel(self) -> None:
        if not self.finished:
            self.finished = True
            self.batcher.cancelled(self)

    # -- results ---------------------------------------------------------------------

    def result(self, result: Result) -> None:
        """A chunk (or a status) of one of its sentences, from a worker."""
        if self.finished:
            return
        try:
            chunk = read_chunk(result.fields)
        except ValueError as exc:
            logger.error("malformed result for %s: %s", self.key, exc)
            self.fail("failed", "a worker sent a malformed result")
            return
        if chunk.status is not None:
            self.fail(chunk.status, chunk.reason, result.sentence)
            return
        if chunk.started:  # a worker began the sentence: ``started`` goes out
            job = self.jobs.get(result.sentence)
            if job is not None:
                job.sink.job_started(job, 0.0)
            return
        final = FinalChunk(chunk.samples, result.sentence, result.last, chunk.marks)
        self._held.setdefault(result.sentence, []).append((result, final))
        while self._next in self._held and not self.finished:
            pending = self._held.pop(self._next)
            for r, c in pending:
                self._pass_on(c)
            if not pending or not pending[-1][0].last:
                self._held[self._next] = []
                break
            self._next += 1
        self._maybe_close()

    def fail(self, status: FailStatus, reason: str, sentence: int | None = None) -> None:
        """End the utterance with ``status`` (its sink sends the error and ``done``)."""
        if self.finished:
            return
        job = self.jobs.get(sentence) if sentence is not None else None
        job = job or next(iter(self.jobs.values()), None)
        self.finished = True
        self.batcher.cancelled(self)
        if job is not None:
            job.sink.job_failed(job, status, reason)
        else:
            self.listener.failed(reason)

    @property
    def waiting(self) -> bool:
        """Sentences were submitted whose audio has not all come back."""
        return not self.finished and any(i >= self._next for i in self.jobs)

    def _pass_on(self, chunk: FinalChunk) -> None:
        if chunk.marks is not None:
            chunk = replace(chunk, marks=shift_marks(chunk.marks, self._samples))
        self._samples += len(chunk.samples)
        self.listener.audio(chunk)

    def _maybe_close(self) -> None:
        if self.finished or self._count is None or self._next < self._count:
            return
        self.finished = True
        self.batcher.completed(self)
        self.listener.audio(FinalChunk(np.zeros(0, np.float32), None, True, end=True))


class RemoteEngine(EngineWrapper):
    """The engine a gateway's utterances see: ``engine``'s front end and voices, the
    workers' synthesis (module docstring)."""

    def __init__(self, engine: Engine, batcher: RemoteBatcher) -> None:
        super().__init__(engine)
        self.batcher = batcher

    def perform(self, controls: Controls, listener: Listener) -> RemotePerformance:
        """Raises: ValueError: the local engine refuses ``controls``."""
        self.engine.perform(controls, _Nobody()).cancel()  # the same checks as --role all
        return self.batcher.performance(controls, listener)

    def begin(self, requests: Sequence[SentenceRequest]) -> Sequence[Stream]:
        raise ValueError("a gateway's engine runs nothing itself: workers do")

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        raise ValueError("a gateway's engine runs nothing itself: workers do")


class RemoteBatcher:
    """The batcher of a gateway: sentences onto the work streams, results back in.

    Args:
        redis: from :func:`~.streams.connect`.
        gateway: this gateway's id (names its result stream; unique per process).
        sample_rate: the engine's rate (workers check theirs against it).
        cap: entries a work stream may hold before ``overloaded``.
    """

    def __init__(
        self, redis: aioredis.Redis, gateway: str, sample_rate: int, *, cap: int = 2048
    ) -> None:
        self.redis = redis
        self.gateway = gateway
        self.sample_rate = sample_rate
        self.work = WorkQueue(redis, cap=cap, retry_after_s=RETRY_AFTER_S)
        self.reader = ResultReader(redis, gateway)
        self.cancels = CancelFeed(redis)
        self._keys = itertools.count(1)
        self._performances: dict[str, RemotePerformance] = {}
        self._outbox: asyncio.Queue[list[Job]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.up = True
        """Redis answered the last call."""
        self._unsent_cancels: list[str] = []
        """Utterances ended while Redis was away, to cancel once it is back (their
        sentences may still be on the work streams)."""
        self.depth: dict[Priority, QueueDepth] = {p: QueueDepth(0, 0) for p in PRIORITIES}
        """Each work stream's depth, as last read."""
        self.submitted = 0
        """Sentences put on the work streams (``/metrics``)."""
        self.refused = 0
        """Sentences refused: stream full or Redis out of reach."""
        self.lost = 0
        """Utterances failed because Redis went away while they were in flight."""

    # -- the app's side --------------------------------------------------------------

    async def open(self) -> None:
        """Start reading results, sending sentences and watching the queue."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._send(), name="voxlive-gateway-send"),
            loop.create_task(self._pump(), name="voxlive-gateway-results"),
            loop.create_task(
                watch_depth(self.work, self._depth_read),
                name="voxlive-gateway-depth",
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def run(self) -> None:
        """Nothing runs on the engine thread of a gateway: return at once (the process's
        main thread then waits for the event loop)."""

    def start(self) -> None:
        pass

    def stop(self, abort: bool = False, timeout_s: float | None = None) -> None:
        pass

    @property
    def alive(self) -> bool:
        return self.up

    @property
    def queued(self) -> int:
        """Sentences waiting on the work streams, every gateway's (as last read)."""
        return sum(d.waiting for d in self.depth.values())

    @property
    def active(self) -> int:
        return sum(d.pending for d in self.depth.values())

    @property
    def inflight(self) -> int:
        """This gateway's utterances waiting for workers."""
        return len(self._performances)

    def performance(self, controls: Controls, listener: Listener) -> RemotePerformance:
        key = f"{self.gateway}:{next(self._keys)}"
        performance = RemotePerformance(self, key, controls, listener)
        self._performances[key] = performance
        return performance

    def submit(self, jobs: list[Job]) -> None:
        """Queue sentences for the work streams (sent in order by one task).

        Raises:
            batcher.Overloaded: never here; a full stream fails the job's utterance with
                ``overloaded`` once the send finds it (``Sink.job_failed``).
        """
        for job in jobs:
            performance = own(job.request.performance, RemotePerformance, "performance")
            performance.jobs[job.request.index] = job
        if not self.up:  # known to be away: no need to wait for the send to find out
            self._refuse(jobs, "unavailable", "the work queue is out of reach; retry")
            return
        self._outbox.put_nowait(jobs)

    # -- from performances -----------------------------------------------------------

    def completed(self, performance: RemotePerformance) -> None:
        self._performances.pop(performance.key, None)
        self.reader.forget(performance.key)

    def cancelled(self, performance: RemotePerformance) -> None:
        """Stop its sentences wherever they are (workers read the cancel stream)."""
        self.completed(performance)
        if not performance.jobs:
            return
        if not self.up:  # sent once Redis answers: its sentences may have survived
            self._unsent_cancels.append(performance.key)
            return
        task = asyncio.get_running_loop().create_task(self._cancel([performance.key]))
        task.add_done_callback(_log_failure)

    async def _cancel(self, keys: list[str]) -> None:
        for i, key in enumerate(keys):
            try:
                await self.cancels.cancel(key)
            except StreamsUnavailable:
                self._unsent_cancels.extend(keys[i:])
                return

    def _back(self) -> None:
        """Redis answered: send the cancels of what failed while it was away."""
        if not self.up:
            logger.info("Redis answers again: taking work")
        self.up = True
        if self._unsent_cancels:
            keys, self._unsent_cancels = self._unsent_cancels, []
            task = asyncio.get_running_loop().create_task(self._cancel(keys))
            task.add_done_callback(_log_failure)

    # -- tasks -----------------------------------------------------------------------

    async def _send(self) -> None:
        while True:
            jobs = await self._outbox.get()
            for i, job in enumerate(jobs):
                if job.cancelled:
                    continue
                performance = own(job.request.performance, RemotePerformance, "performance")
                try:
                    await self.work.submit(
                        job_fields(self._job(performance, job)),
                        job.priority,
                        _unix(job.deadline),
                    )
                except Overloaded as exc:
                    self._refuse(jobs[i:], "overloaded", f"{exc}", exc.retry_after_s)
                    break
                except StreamsUnavailable:
                    self._down()
                    self._refuse(jobs[i:], "unavailable", "the work queue is out of reach; retry")
                    break
                self._back()
                self.submitted += 1

    async def _pump(self) -> None:
        """Results to their performances; Redis out of reach fails those in flight."""
        while True:
            try:
                results = await self.reader.read(block_ms=1000)
            except StreamsUnavailable:
                self._down()
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            self._back()
            for result in results:
                performance = self._performances.get(result.utterance)
                if performance is None:
                    self.reader.forget(result.utterance)  # finished or cancelled: drop
                else:
                    performance.result(result)

    def _depth_read(self, depth: dict[Priority, QueueDepth] | None) -> None:
        if depth is None:
            self._down()
        else:
            self._back()
            self.depth = depth

    # -- helpers ---------------------------------------------------------------------

    def _job(self, performance: RemotePerformance, job: Job) -> SentenceJob:
        return SentenceJob(
            gateway=self.gateway,
            utterance=performance.key,
            index=job.request.index,
            session=job.session,
            sentence=job.request.sentence,
            controls=performance.controls,
            sample_rate=self.sample_rate,
        )

    def _refuse(
        self, jobs: list[Job], status: FailStatus, reason: str, retry_after_s: float = RETRY_AFTER_S
    ) -> None:
        """Fail the utterances of ``jobs`` (once each) with a retryable ``status``."""
        seen: set[int] = set()
        for job in jobs:
            if job.cancelled or id(job.sink) in seen:
                continue
            seen.add(id(job.sink))
            self.refused += 1
            job.sink.job_failed(job, status, reason, retry_after_s)

    def _down(self) -> None:
        """Redis is out of reach: what is in flight may be lost with it, fail it now."""
        if self.up:
            logger.warning("Redis is out of reach: refusing new work until it answers")
        self.up = False
        for performance in list(self._performances.values()):
            if performance.waiting:
                self.lost += 1
                performance.fail("unavailable", "lost the work queue mid-utterance; retry")


def _unix(deadline: float | None) -> float | None:
    """A ``time.monotonic()`` deadline as Unix time (workers run on other clocks)."""
    return None if deadline is None else time.time() + (deadline - time.monotonic())


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("cancel failed", exc_info=task.exception())


class _Nobody:
    """A listener for a performance that is cancelled at once (a controls check)."""

    def audio(self, chunk: FinalChunk) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass
