"""The shared batcher: one engine thread per device, continuous batching.

Sentences from every session wait in one bounded queue. The engine thread
loops: admit what fits (priority class first, then round-robin across
sessions, dropping work whose deadline passed), start it (text encoder,
durations, a prefix of the flow), then run one decoder step over everything
running. A sentence that arrives mid-utterance joins at the next step instead
of waiting for a batch window to close.

The thread never touches sockets or protocol state. It knows the engine only
by its interface (``voxlive.engine.interface.Engine``): requests in, progress
out. The audio goes from the engine side to each utterance's listener; what
the batcher itself has to say (started, expired, failed) goes back to the
event loop through ``deliver`` (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from voxlive.engine.interface import Engine, SentenceRequest, Stream
from voxlive.protocol.types import PRIORITIES, Priority

__all__ = [
    "BatchObserver",
    "Batcher",
    "FailStatus",
    "Job",
    "Overloaded",
    "Owner",
    "Scheduler",
    "Sink",
]

logger = logging.getLogger(__name__)

MAX_ACTIVE_PER_OWNER: Final = 2
"""Sentences of one utterance decoded at once (the current and the next)."""
ADMIT_BUDGET_IDS: Final = 800
"""Phoneme ids started per loop turn (≈ 4 sentences): bounds the pause that starting
new work puts between two decoder steps of the work already running."""
_RANK: Final[dict[Priority, int]] = {p: rank for rank, p in enumerate(PRIORITIES)}
"""Queue of each priority class (SPEC.md's order: realtime first)."""

FailStatus = Literal["expired", "failed", "overloaded", "unavailable"]
"""Why a job ended without audio: its deadline passed, synthesis failed, or (a gateway's
work queue, ``gateway.py``) the queue was full or out of reach: retry later."""


class Overloaded(Exception):
    """The queue is full; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"queue full, retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class Owner(Protocol):
    """The utterance a job belongs to (hashable: the batcher keeps a clock per owner)."""

    paused: bool
    """Set from the loop thread while its client lags: the batcher makes nothing for it."""


class Sink(Protocol):
    """Receives what the batcher knows of a job, on the event loop thread.

    The audio itself goes from the engine to the job's performance's listener.
    """

    def job_started(self, job: Job, queue_s: float) -> None: ...
    def job_failed(
        self, job: Job, status: FailStatus, reason: str, retry_after_s: float | None = None
    ) -> None: ...


class Scheduler(Protocol):
    """Where an utterance's sentences go: a :class:`Batcher`, or a gateway's work queue
    (``gateway.py``)."""

    def submit(self, jobs: list[Job]) -> None:
        """Queue sentences (in order).

        Raises:
            Overloaded: they cannot be queued now; none were.
        """


class BatchObserver(Protocol):
    """Told of every batch, on the engine thread (the server's metrics)."""

    def begun(self, waits_s: Sequence[float], seconds: float) -> None:
        """Sentences began together in ``seconds``, after these waits in the queue."""

    def stepped(self, streams: int, fill: float, seconds: float) -> None:
        """A decoder step over ``streams`` streams took ``seconds``; ``fill``: its work
        over ``step_budget_frames``."""


@dataclass(eq=False, slots=True)
class Job:
    """One sentence of one utterance."""

    request: SentenceRequest
    sink: Sink
    owner: Owner
    """The utterance it belongs to (limits how many of its sentences run at once)."""
    session: str
    """Fairness key: sessions take turns."""
    priority: Priority = "normal"
    deadline: float | None = None
    """``time.monotonic()`` by which it must have started, else it expires."""
    enqueued_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    """Set from the loop thread; the engine thread drops the job at its next look."""


@dataclass(eq=False, slots=True)
class _Running:
    job: Job
    stream: Stream


class Batcher:
    """Continuous batching over one :class:`~voxlive.engine.interface.Engine`, in a
    thread of its own."""

    def __init__(
        self,
        engine: Engine,
        deliver: Callable[..., object],
        *,
        max_active: int = 16,
        max_queued: int = 512,
        step_budget_frames: int = 192,
        observer: BatchObserver | None = None,
    ) -> None:
        self.engine = engine
        self.deliver = deliver
        """Runs a callback on the event loop thread (``loop.call_soon_threadsafe``)."""
        self.max_active = max_active
        self.max_queued = max_queued
        self._cond = threading.Condition()
        self._queues: list[OrderedDict[str, deque[Job]]] = [OrderedDict() for _ in PRIORITIES]
        self._queued = 0
        self._active: list[_Running] = []
        self._running_per_owner: dict[int, int] = {}
        self._stopping = False
        self._abort = False
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.started_jobs = 0
        """Sentences begun (counters like this one are read by ``/metrics``)."""
        self.begin_calls = 0
        self.begin_seconds = 0.0
        self.steps = 0
        self.streams_stepped = 0
        """Streams decoded, summed over steps: ÷ ``steps`` is the batch a step reached."""
        self.step_seconds = 0.0
        self.step_budget_frames = step_budget_frames
        """Work decoded per turn at most, in the engine's cost unit (:attr:`Stream.cost`)."""
        self.observer = observer
        """Told of each batch begun and step decoded (``/metrics``' histograms)."""
        self._clocks: weakref.WeakKeyDictionary[Owner, list[float]] = weakref.WeakKeyDictionary()

    # -- loop thread ---------------------------------------------------------------

    def start(self) -> None:
        """Run the engine loop in a thread of its own."""
        self._thread = threading.Thread(target=self.run, name="voxlive-engine", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Run the engine loop in the calling thread until :meth:`stop`.

        ``voxlive serve`` calls this on the main thread: with the OpenMP
        runtime torch ships, the same convolutions run 1.5–10x slower when
        first called from any other thread (measured on CPU).
        """
        self._running.set()
        try:
            self._run()
        finally:
            self._running.clear()

    def submit(self, jobs: list[Job]) -> None:
        """Queue sentences (in order).

        Raises:
            Overloaded: the queue cannot take them all; none were queued.
        """
        with self._cond:
            if self._stopping:
                raise Overloaded(1.0)
            if self._queued + len(jobs) > self.max_queued:
                per_item_s = self.step_seconds / max(1, self.started_jobs) or 0.2
                raise Overloaded(max(0.2, self._queued * per_item_s / self.max_active))
            for job in jobs:
                queue = self._queues[_RANK[job.priority]]
                queue.setdefault(job.session, deque()).append(job)
            self._queued += len(jobs)
            self._cond.notify()

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def alive(self) -> bool:
        return self._running.is_set() and not self._stopping

    def stop(self, abort: bool = False, timeout_s: float | None = None) -> None:
        """Stop the thread: after the queue drains, or (``abort``) after the current step."""
        with self._cond:
            self._stopping = True
            self._abort = abort
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    # -- engine thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queued and not self._active:
                    self._cond.wait()
                if self._abort or (self._stopping and not self._queued and not self._active):
                    return
                admitted, expired = self._pick(time.monotonic())
            for job in expired:
                self.deliver(job.sink.job_failed, job, "expired", "deadline passed")
            if admitted:
                self._begin(admitted)
            self._drop_cancelled()
            if self._active:
                self._step()
            else:
                time.sleep(0.005)  # only paused work left: wait for its client

    def _pick(self, now: float) -> tuple[list[Job], list[Job]]:
        """Jobs to start now: by priority class, sessions taking turns (lock held)."""
        admitted: list[Job] = []
        expired: list[Job] = []
        room = self.max_active - len(self._active)
        ids_left = ADMIT_BUDGET_IDS
        for queue in self._queues:
            progress = True
            while room > 0 and ids_left > 0 and queue and progress:
                progress = False
                for session in list(queue):
                    jobs = queue[session]
                    while jobs and (jobs[0].cancelled or _late(jobs[0], now)):
                        job = jobs.popleft()
                        self._queued -= 1
                        if not job.cancelled:
                            expired.append(job)
                    if jobs and room > 0 and ids_left > 0 and self._owner_has_room(jobs[0]):
                        job = jobs.popleft()
                        ids_left -= job.request.cost
                        self._queued -= 1
                        self._claim(job)
                        admitted.append(job)
                        room -= 1
                        progress = True
                        queue.move_to_end(session)  # the next session goes first next time
                    if not jobs:
                        del queue[session]
        return admitted, expired

    def _owner_has_room(self, job: Job) -> bool:
        if job.owner.paused:
            return False  # its client is not reading: make nothing more for it
        return self._running_per_owner.get(id(job.owner), 0) < MAX_ACTIVE_PER_OWNER

    def _claim(self, job: Job) -> None:
        key = id(job.owner)
        self._running_per_owner[key] = self._running_per_owner.get(key, 0) + 1

    def _release(self, job: Job) -> None:
        with self._cond:
            key = id(job.owner)
            left = self._running_per_owner.get(key, 1) - 1
            if left:
                self._running_per_owner[key] = left
            else:
                self._running_per_owner.pop(key, None)

    def _begin(self, jobs: list[Job]) -> None:
        """Start jobs together; if that fails, start each alone so one bad job fails alone."""
        t0 = time.monotonic()
        try:
            streams = self.engine.begin([j.request for j in jobs])
        except Exception:
            self.begin_seconds += time.monotonic() - t0
            if len(jobs) == 1:
                logger.error("synthesis failed to start", exc_info=True)
                self._fail(jobs[0], "synthesis failed")
                return
            for job in jobs:
                self._begin([job])
            return
        now = time.monotonic()
        self.begin_seconds += now - t0
        self.begin_calls += 1
        for job in jobs:
            self.deliver(job.sink.job_started, job, now - job.enqueued_at)
        self.started_jobs += len(jobs)
        if self.observer is not None:
            self.observer.begun([now - job.enqueued_at for job in jobs], now - t0)
        self._active.extend(_Running(job, stream) for job, stream in zip(jobs, streams))

    def _drop_cancelled(self) -> None:
        keep = []
        for running in self._active:
            if running.job.cancelled:
                self._release(running.job)
            else:
                keep.append(running)
        self._active = keep

    def _urgent(self, now: float) -> list[_Running]:
        """Streams to decode this turn: new ones first, then those closest to running dry.

        An utterance's slack is the audio it has produced minus the time since
        its first chunk (what a real-time listener has already heard). Streams
        are taken in order of slack until ``step_budget_frames`` is reached, so
        one turn stays short and newly admitted work is never stuck behind a
        long step.
        """

        def slack(running: _Running) -> float:
            if not running.stream.started:
                return float("-inf")
            clock = self._clocks.get(running.job.owner)
            return -1e9 if clock is None else clock[1] - (now - clock[0])

        chosen: list[_Running] = []
        cost = 0
        ready = [r for r in self._active if not r.job.owner.paused]
        for running in sorted(ready, key=slack):
            more = running.stream.cost
            if chosen and cost + more > self.step_budget_frames:
                break
            chosen.append(running)
            cost += more
        return chosen

    def _step(self) -> None:
        t0 = time.monotonic()
        chosen = self._urgent(t0)
        jobs = {id(r.stream): r.job for r in chosen}
        rate = self.engine.sample_rate
        self.steps += 1
        self.streams_stepped += len(chosen)
        cost = sum(r.stream.cost for r in chosen)
        try:
            for progress in self.engine.step([r.stream for r in chosen]):
                job = jobs[id(progress.stream)]
                if progress.is_last:
                    self._release(job)
                if not job.cancelled:
                    self._tick(job.owner, progress.samples / rate)
        except Exception:
            logger.error("decoder step failed; failing %d sentences", len(chosen), exc_info=True)
            for running in chosen:
                if not running.stream.done:
                    self._fail(running.job, "synthesis failed")
            self._active = [r for r in self._active if r not in chosen]
            return
        finally:
            self.step_seconds += time.monotonic() - t0
        self._active = [r for r in self._active if not r.stream.done]
        if self.observer is not None:
            fill = cost / self.step_budget_frames
            self.observer.stepped(len(chosen), fill, time.monotonic() - t0)

    def _tick(self, owner: Owner, seconds: float) -> None:
        clock = self._clocks.get(owner)
        if clock is None:
            self._clocks[owner] = [time.monotonic(), seconds]
        else:
            clock[1] += seconds

    def _fail(self, job: Job, reason: str) -> None:
        self._release(job)
        self.deliver(job.sink.job_failed, job, "failed", reason)


def _late(job: Job, now: float) -> bool:
    return job.deadline is not None and now > job.deadline
