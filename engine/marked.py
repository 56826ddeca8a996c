"""Every engine's output watermarked while it streams (``watermark.py`` is the mark itself).

A :class:`Watermarker` holds one PerthNet. Each utterance gets a
:class:`~.watermark.MarkStream`; its chunks queue, and whoever marks takes the oldest
chunk of every stream waiting, runs their encoder blocks as one batch, and hands each
utterance its marked samples in order. The engine's own thread marks what its step
made, right after the step (its cores, no third thread beside its two); the
watermarker's thread marks what arrives between steps (a stage's chunks, an idle
engine). A :class:`MarkedEngine` wraps any :class:`~.interface.Engine` so that its
listeners receive marked audio: the batcher, the server and ``speak_many`` never learn
the mark is there.

Each sentence is a segment of its own (a chunk with ``is_last`` closes it): the end
of a sentence is never held back waiting for the next one, which a streamed text
may not send for a while.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .interface import (
    Controls,
    Decoded,
    Engine,
    EngineWrapper,
    FinalChunk,
    Listener,
    Performance,
    SentenceRequest,
    Stream,
)
from .watermark import (
    FIRST_LOOKAHEAD,
    LOOKAHEAD,
    STRENGTH,
    Block,
    MarkStream,
    PerthNet,
    embed_many,
    load_perthnet,
)

__all__ = ["MARKING_THREADS", "MarkedEngine", "Watermarker", "marking_thread"]

logger = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05
"""How long the marking thread leaves a chunk to a stepping engine's thread at most."""
MARKING_THREADS = 1
"""torch threads of the marking thread (its blocks are small; the engine has the rest)."""


def marking_thread() -> None:
    """Set the calling thread up for marking or detection: :data:`MARKING_THREADS` torch
    threads (OpenMP keeps the setting per thread), beside the engine's own."""
    torch.set_num_threads(MARKING_THREADS)


_nets: dict[str, PerthNet] = {}
_nets_lock = threading.Lock()


def _shared_net(device: str) -> PerthNet:
    """One PerthNet per device and process (inference only, so shared freely)."""
    with _nets_lock:
        if device not in _nets:
            _nets[device] = load_perthnet(device)
        return _nets[device]


@dataclass(eq=False, slots=True)
class _Job:
    stream: MarkStream
    samples: np.ndarray | None  # None: a call in the stream's order
    final: bool = False
    deliver: Callable[[np.ndarray], None] | None = None
    call: Callable[[], None] | None = None
    failed: Callable[[str], None] | None = field(default=None)


class Watermarker:
    """One PerthNet and the thread that marks every stream (module docstring).

    Args:
        device: where the network runs (``cpu``, ``cuda:0``).
        all_output: mark every utterance; False marks only those spoken in a
            registered voice, which are always marked (:meth:`marks`).
        lookahead: frames of right context a streamed frame is encoded with
            (``first_lookahead`` in a sentence's first block).
        strength: the share of the network's mark added (``watermark.STRENGTH``).
        max_batch: most streams' blocks in one encoder run.
    """

    def __init__(
        self,
        device: str = "cpu",
        *,
        all_output: bool = True,
        lookahead: int = LOOKAHEAD,
        strength: float = STRENGTH,
        max_batch: int = 64,
        first_lookahead: int = FIRST_LOOKAHEAD,
    ) -> None:
        self.device = device
        self.all_output = all_output
        self.lookahead = lookahead
        self.first_lookahead = first_lookahead
        self.strength = strength
        self.max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._marking = threading.Lock()  # one marker at a time keeps each stream in order
        self._idle = threading.Event()
        self._idle.set()

    @property
    def net(self) -> PerthNet:
        """The network (loaded on first use).

        Raises:
            ModelMissing: ``resemble-perth`` is not installed.
        """
        return _shared_net(self.device)

    def marks(self, voice: object | None) -> bool:
        """Whether an utterance in ``voice`` (a registered voice's transform, or None for a
        built-in voice) is marked."""
        return self.all_output or voice is not None

    def stream(self, rate: int) -> MarkStream:
        """A new stream at ``rate`` Hz."""
        return MarkStream(rate, self.lookahead, self.strength, self.first_lookahead)

    def mark(self, audios: Sequence[np.ndarray], rate: int) -> list[np.ndarray]:
        """Whole clips marked in the caller's thread, one batch."""
        return embed_many(self.net, audios, rate, self.strength)

    # -- streaming: any thread ---------------------------------------------------------

    def submit(
        self,
        stream: MarkStream,
        samples: np.ndarray,
        final: bool,
        deliver: Callable[[np.ndarray], None],
        failed: Callable[[str], None],
    ) -> None:
        """Mark ``samples`` of ``stream``; ``deliver`` gets what is final, on the marking
        thread, in the order submitted (``failed`` instead if marking fails)."""
        self._put(_Job(stream, samples, final, deliver, failed=failed))

    def call(self, stream: MarkStream, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the marking thread after everything submitted for ``stream``."""
        self._put(_Job(stream, None, call=fn))

    def close(self) -> None:
        """Stop the thread (what is queued is dropped)."""
        with self._wake:
            self._closed = True
            self._queue.clear()
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _put(self, job: _Job) -> None:
        with self._wake:
            if self._closed:
                return
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="voxlive-watermark", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    # -- who marks: the engine's thread between steps, else the marking thread ----------

    def engine_stepping(self, stepping: bool) -> None:
        """The engine's thread is in (True) or out of (False) a step: while it steps, the
        marking thread leaves the chunks to it (:meth:`mark_pending`, after the step)."""
        if stepping:
            self._idle.clear()
        else:
            self._idle.set()

    def mark_pending(self) -> None:
        """Mark everything queued, on the calling thread (the engine's, after a step)."""
        with self._marking:
            while batch := self._take():
                self._mark(batch)

    def _take(self) -> list[_Job]:
        """The oldest queued job of each stream (at most ``max_batch``)."""
        with self._wake:
            batch: list[_Job] = []
            later: list[_Job] = []
            seen: set[int] = set()
            while self._queue and len(batch) < self.max_batch:
                job = self._queue.popleft()
                if id(job.stream) in seen:
                    later.append(job)  # after this stream's earlier job
                else:
                    seen.add(id(job.stream))
                    batch.append(job)
            self._queue.extendleft(reversed(later))
            return batch

    def _run(self) -> None:
        marking_thread()
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
            # A chunk made inside an engine step is marked by the engine's thread right
            # after it (its cores, no third thread beside its two); this thread marks
            # what arrives between steps (a stage's chunks, an idle engine).
            self._idle.wait(IDLE_WAIT_S)
            self.mark_pending()

    def _mark(self, batch: list[_Job]) -> None:
        audio = [job for job in batch if job.samples is not None]
        blocks = []
        for job in audio:
            assert job.samples is not None
            try:
                blocks.append(job.stream.feed(job.samples, job.final))
            except Exception:
                logger.exception("watermark: a chunk could not be analysed")
                blocks.append(None)
                job.deliver = None
        residuals = self.encode([b for b in blocks if b is not None])
        for job, block in zip(audio, blocks):
            residual = residuals.pop(0) if block is not None else None
            if job.deliver is None:
                if job.failed is not None:
                    job.failed("the watermark stage failed")
                continue
            try:
                out = job.stream.take(residual)
            except Exception:
                logger.exception("watermark: a chunk could not be marked")
                if job.failed is not None:
                    job.failed("the watermark stage failed")
                continue
            job.deliver(out)
        for job in batch:
            if job.call is not None:
                job.call()

    def encode(self, items: list[Block]) -> list[torch.Tensor]:
        """The residuals of several streams' blocks (each cut to its ``keep``), one batch."""
        if not items:
            return []
        residuals = self.net.residuals([b.sub for b in items], [b.mask for b in items])
        return [r[:, b.keep] for r, b in zip(residuals, items)]


class _MarkedListener:
    """Passes a performance's chunks through its mark stream, in order."""

    def __init__(self, listener: Listener, marker: Watermarker, rate: int) -> None:
        self.listener = listener
        self.marker = marker
        self.stream = marker.stream(rate)
        self.cancelled = False
        self._failed = False

    def audio(self, chunk: FinalChunk) -> None:
        final = chunk.is_last or chunk.end

        def deliver(samples: np.ndarray) -> None:
            if not (self.cancelled or self._failed):
                self.listener.audio(replace(chunk, samples=samples))

        self.marker.submit(self.stream, chunk.samples, final, deliver, self._fail)

    def failed(self, reason: str) -> None:
        self.marker.call(self.stream, lambda: self._fail(reason))

    def _fail(self, reason: str) -> None:
        if not (self.cancelled or self._failed):
            self._failed = True
            self.listener.failed(reason)


@dataclass(eq=False, slots=True)
class _MarkedPerformance:
    inner: Performance
    listener: _MarkedListener

    def end(self, sentences: int) -> None:
        self.inner.end(sentences)

    def cancel(self) -> None:
        self.listener.cancelled = True
        self.inner.cancel()


class MarkedEngine(EngineWrapper):
    """``engine`` with its output watermarked as ``marker`` says (module docstring)."""

    def __init__(self, engine: Engine, marker: Watermarker) -> None:
        super().__init__(engine)
        self.marker = marker

    def perform(self, controls: Controls, listener: Listener) -> Performance:
        if not self.marker.marks(controls.voice):
            return self.engine.perform(controls, listener)
        marked = _MarkedListener(listener, self.marker, self.engine.sample_rate)
        return _MarkedPerformance(self.engine.perform(controls, marked), marked)

    def begin(self, requests: Sequence[SentenceRequest]) -> Sequence[Stream]:
        inner = [
            replace(r, performance=r.performance.inner)
            if isinstance(r.performance, _MarkedPerformance)
            else r
            for r in requests
        ]
        return self.engine.begin(inner)

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        """The wrapped engine's step; the chunks it made are marked right after it, on
        this thread."""
        self.marker.engine_stepping(True)
        try:
            yield from self.engine.step(streams)
        finally:
            self.marker.engine_stepping(False)
        self.marker.mark_pending()
