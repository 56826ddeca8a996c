"""One utterance of the VITS engine: its sentences in order, their marks, its stage.

Sentences of one utterance are decoded in batches with other utterances'
work and may finish out of order (the batcher runs the next sentence while
the current one still decodes). A :class:`VitsPerformance` puts their chunks
back in order, computes each sentence's marks from its durations (the id
layout, ``engine/layout.py``), and passes the audio on: straight to the
listener when the utterance needs no stage (neutral speech in the bundled
voice: the engine's samples, bit for bit), else through the utterance's
stage on the engine's stage thread (:class:`StageThread`), whose single worker
runs every utterance's stage work in submission order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .expression import Expression, Stage
from .interface import FinalChunk, Listener, Sentence, SentenceMarks
from .layout import phrase_span, sentence_marks
from .streaming import AudioChunk, SynthesisParams, SynthesisRequest

__all__ = ["OrderedPerformance", "StageThread", "VitsPerformance"]

logger = logging.getLogger(__name__)


class StageThread:
    """The engine's expressive/voice stage thread: one worker, jobs in submission order.

    Off the engine thread, so stage work never delays a decoder step.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="voxlive-stage")

    def submit(self, job: Callable[[], None]) -> None:
        self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class OrderedPerformance:
    """One utterance's sentences put back in order (the engine-independent part).

    Thread-safe: fed by the engine thread, ended and cancelled by the caller. A
    subclass says what happens to each chunk in order (``_pass_on``) and after the
    last sentence (``_close``), both with the lock held.
    """

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._lock = threading.Lock()
        self._next = 0  # the sentence whose chunks go out now
        self._held: dict[int, list[tuple[Sentence, AudioChunk]]] = {}
        self._samples = 0  # engine samples passed on so far
        self._count: int | None = None  # sentences in the utterance, once known
        self._ended = False
        self.cancelled = False

    # -- caller's thread ---------------------------------------------------------------

    def end(self, sentences: int) -> None:
        with self._lock:
            self._count = sentences
            self._maybe_end()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            self._held.clear()

    # -- engine thread -----------------------------------------------------------------

    def feed(self, index: int, sentence: Sentence, chunk: AudioChunk) -> None:
        """A decoded chunk of sentence ``index``; passed on once the sentences before are."""
        with self._lock:
            if self.cancelled:
                return
            self._held.setdefault(index, []).append((sentence, chunk))
            while self._next in self._held:
                pending = self._held.pop(self._next)
                for s, c in pending:
                    self._pass_on(self._next, s, c)
                if not pending or not pending[-1][1].is_last:
                    self._held[self._next] = []
                    break
                self._next += 1
            self._maybe_end()

    def _maybe_end(self) -> None:
        """After the last sentence: the closing chunk (lock held)."""
        if self._ended or self.cancelled or self._count is None or self._next < self._count:
            return
        self._ended = True
        self._close()

    def _pass_on(self, index: int, sentence: Sentence, chunk: AudioChunk) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        self.listener.audio(FinalChunk(np.zeros(0, np.float32), None, True, end=True))


class VitsPerformance(OrderedPerformance):
    """See module docstring."""

    def __init__(
        self,
        expression: Expression,
        params: SynthesisParams,
        sample_rate: int,
        listener: Listener,
        stages: StageThread,
    ) -> None:
        super().__init__(listener)
        self.expression = expression
        self.params = params
        """The utterance's engine controls; sentence ``i`` uses ``params.offset_seed(i)``."""
        self.stage: Stage | None = expression.stage(sample_rate)
        """The expressive stage (emotion and voice in one pass); None: engine output as is."""
        self._stages = stages

    def request(self, index: int, sentence: Sentence) -> SynthesisRequest:
        """Sentence ``index``'s engine request (pause scales and seed included)."""
        return self.expression.request(
            sentence.ids, sentence.phonemes, self.params.offset_seed(index)
        )

    def _pass_on(self, index: int, sentence: Sentence, chunk: AudioChunk) -> None:
        """Marks, phrase span and samples of one chunk, in utterance order (lock held)."""
        marks: SentenceMarks | None = None
        phrase: tuple[int, int] | None = None
        durations = chunk.phoneme_samples
        if durations is not None:  # the sentence's first chunk
            at = self._samples
            marks = sentence_marks(sentence.phonemes, sentence.words, durations, at)
            start, end = phrase_span(sentence.phonemes, durations)
            phrase = (at + start, at + end)
        self._samples += len(chunk.samples)
        if self.stage is None:
            self.listener.audio(FinalChunk(chunk.samples, index, chunk.is_last, marks))
        else:
            stage, samples, last = self.stage, chunk.samples, chunk.is_last
            self._stages.submit(lambda: self._staged(stage, index, samples, phrase, marks, last))

    def _close(self) -> None:
        if self.stage is None:
            super()._close()
        else:
            stage = self.stage
            self._stages.submit(lambda: self._flushed(stage))

    # -- stage thread ------------------------------------------------------------------

    def _staged(
        self,
        stage: Stage,
        index: int,
        samples: np.ndarray,
        phrase: tuple[int, int] | None,
        marks: SentenceMarks | None,
        is_last: bool,
    ) -> None:
        if self.cancelled:
            return
        try:
            if phrase is not None:
                stage.phrase(*phrase)
            out = stage.process(samples)
        except Exception:
            self._stage_failed()
            return
        self.listener.audio(FinalChunk(out, index, is_last, marks))

    def _flushed(self, stage: Stage) -> None:
        if self.cancelled:
            return
        try:
            tail = stage.flush()
        except Exception:
            self._stage_failed()
            return
        self.listener.audio(FinalChunk(tail, None, True, end=True))

    def _stage_failed(self) -> None:
        logger.error("the emotion/voice stage failed", exc_info=True)
        self.cancelled = True
        self.listener.failed("the emotion/voice stage failed")
