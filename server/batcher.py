"""The shared batcher: one engine thread per device, continuous batching.

Sentences from every session wait in one bounded queue. The engine thread
loops: admit what fits (priority class first, then round-robin across
sessions, dropping work whose deadline passed), start it (text encoder,
durations, a prefix of the flow), then run one decoder step over everything
running. A sentence that arrives mid-utterance joins at the next step instead
of waiting for a batch window to close.

The thread never touches sockets or protocol state: results go back to the
event loop through ``deliver`` (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.voice import AudioChunk, ItemStream, SynthesisRequest, Voice

__all__ = ["Batcher", "Job", "Overloaded", "Sink", "PRIORITIES"]

logger = logging.getLogger(__name__)

PRIORITIES: Final = {"realtime": 0, "normal": 1, "bulk": 2}
MAX_ACTIVE_PER_OWNER: Final = 2
"""Sentences of one utterance decoded at once (the current and the next)."""
ADMIT_BUDGET_IDS: Final = 800
"""Phoneme ids started per loop turn (≈ 4 sentences): bounds the pause that starting
new work puts between two decoder steps of the work already running."""

FinishStatus = Literal["completed", "expired", "failed"]


class Overloaded(Exception):
    """The queue is full; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"queue full, retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class Sink(Protocol):
    """Receives a job's results on the event loop thread."""

    def job_started(self, job: Job, queue_s: float) -> None: ...
    def job_chunk(self, job: Job, chunk: AudioChunk) -> None: ...
    def job_finished(self, job: Job, status: FinishStatus, reason: str | None) -> None: ...


@dataclass(eq=False, slots=True)
class Job:
    """One sentence of one utterance."""

    request: SynthesisRequest
    sink: Sink
    owner: Any
    """The utterance it belongs to (limits how many of its sentences run at once)."""
    session: str
    """Fairness key: sessions take turns."""
    priority: int = 1
    deadline: float | None = None
    """``time.monotonic()`` by which it must have started, else it expires."""
    context: Any = None
    """Whatever the sink needs back (e.g. the sentence's words)."""
    enqueued_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    """Set from the loop thread; the engine thread drops the job at its next look."""


class Batcher:
    """Continuous batching over one :class:`Voice`, in a thread of its own."""

    def __init__(
        self,
        voice: Voice,
        deliver: Callable[..., Any],
        *,
        max_active: int = 16,
        max_queued: int = 512,
        schedule: ChunkSchedule | None = None,
        step_budget_frames: int = 192,
    ) -> None:
        self.voice = voice
        self.deliver = deliver
        self.max_active = max_active
        self.max_queued = max_queued
        self.schedule = schedule or ChunkSchedule()
        self._cond = threading.Condition()
        self._queues: list[OrderedDict[str, deque[Job]]] = [OrderedDict() for _ in PRIORITIES]
        self._queued = 0
        self._active: list[ItemStream] = []
        self._running_per_owner: dict[int, int] = {}
        self._stopping = False
        self._abort = False
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.started_jobs = 0
        self.step_seconds = 0.0
        self.step_budget_frames = step_budget_frames
        self._clocks: weakref.WeakKeyDictionary[Any, list[float]] = weakref.WeakKeyDictionary()

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
                queue = self._queues[job.priority]
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
                self.deliver(job.sink.job_finished, job, "expired", "deadline passed")
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
                        ids_left -= len(job.request.ids)
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
        if _paused(job):
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
        try:
            items = self.voice.begin([j.request for j in jobs], self.schedule, tags=jobs)
        except Exception:
            if len(jobs) == 1:
                logger.error("synthesis failed to start", exc_info=True)
                self._finish(jobs[0], "failed", "synthesis failed")
                return
            for job in jobs:
                self._begin([job])
            return
        now = time.monotonic()
        for job in jobs:
            self.deliver(job.sink.job_started, job, now - job.enqueued_at)
        self.started_jobs += len(jobs)
        self._active.extend(items)

    def _drop_cancelled(self) -> None:
        keep = []
        for it in self._active:
            job: Job = it.tag  # type: ignore[assignment]
            if job.cancelled:
                self._release(job)
            else:
                keep.append(it)
        self._active = keep

    def _urgent(self, now: float) -> list[ItemStream]:
        """Items to decode this turn: new ones first, then those closest to running dry.

        An utterance's slack is the audio it has produced minus the time since
        its first chunk (what a real-time listener has already heard). Items
        are taken in order of slack until ``step_budget_frames`` is reached, so
        one turn stays short and newly admitted work is never stuck behind a
        long step.
        """

        def slack(it: ItemStream) -> float:
            if it.step == 0:
                return float("-inf")
            clock = self._clocks.get(it.tag.owner)  # type: ignore[attr-defined]
            return -1e9 if clock is None else clock[1] - (now - clock[0])

        chosen, frames = [], 0
        ready = [it for it in self._active if not _paused(it.tag)]
        for it in sorted(ready, key=slack):
            w = it.plan[it.step]
            if chosen and frames + (w.hi - w.lo) > self.step_budget_frames:
                break
            chosen.append(it)
            frames += w.hi - w.lo
        return chosen

    def _step(self) -> None:
        t0 = time.monotonic()
        chosen = self._urgent(t0)
        try:
            for chunk in self.voice.step(chosen):
                job: Job = chunk.tag  # type: ignore[assignment]
                if job.cancelled:
                    continue
                self._tick(job.owner, len(chunk.samples) / self.voice.sample_rate)
                self.deliver(job.sink.job_chunk, job, chunk)
                if chunk.is_last:
                    self._finish(job, "completed", None)
        except Exception:
            logger.error("decoder step failed; failing %d sentences", len(chosen), exc_info=True)
            for it in chosen:
                if not it.done:
                    self._finish(it.tag, "failed", "synthesis failed")  # type: ignore[arg-type]
            self._active = [it for it in self._active if it not in chosen]
            return
        finally:
            self.step_seconds += time.monotonic() - t0
        self._active = [it for it in self._active if not it.done]

    def _tick(self, owner: Any, seconds: float) -> None:
        clock = self._clocks.get(owner)
        if clock is None:
            self._clocks[owner] = [time.monotonic(), seconds]
        else:
            clock[1] += seconds

    def _finish(self, job: Job, status: FinishStatus, reason: str | None) -> None:
        self._release(job)
        self.deliver(job.sink.job_finished, job, status, reason)


def _paused(job: Any) -> bool:
    return bool(getattr(job.owner, "paused", False))


def _late(job: Job, now: float) -> bool:
    return job.deadline is not None and now > job.deadline
