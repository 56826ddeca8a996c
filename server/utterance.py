"""One utterance on the server: text in (whole or streamed), ordered frames out.

Lives on the event loop thread. It turns text into sentence jobs for the
batcher, receives their chunks (``Sink``), puts sentences back in order,
resamples, cuts frames, and reports ``started`` / ``marks`` / ``done``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import numpy as np

from voxlive.engine.expression import Expression, phrase_span
from voxlive.engine.frontend import FrontendResult, Sentence, TextError
from voxlive.engine.resample import StreamResampler
from voxlive.engine.voice import AudioChunk, SynthesisParams, SynthesisRequest
from voxlive.engine.world import StreamAdapter, VoiceTransform
from voxlive.protocol.messages import AudioFrame, Done, Error, Marks, Phoneme, SpeakOptions, Word
from voxlive.protocol.types import Status, StreamId, UtteranceId

from .batcher import PRIORITIES, FinishStatus, Job, Overloaded
from .frames import Packetizer

if TYPE_CHECKING:
    from .connection import Connection
    from .store import VoiceProfile

__all__ = ["Utterance", "split_complete_sentences"]

logger = logging.getLogger(__name__)

FADE_MS: Final = 10
_BOUNDARY = re.compile(r"[.!?。！？]+[\"'’”)\]]*(?:\s+|$)")


def split_complete_sentences(text: str) -> tuple[str, str]:
    """Split streamed text into (complete sentences, unfinished rest).

    A sentence is complete once its terminator is followed by whitespace (or,
    for CJK terminators, immediately): "Hi. How" → ("Hi.", "How").
    """
    end = 0
    for match in _BOUNDARY.finditer(text):
        if (
            match.end() < len(text)
            or match.group().endswith((" ", "\n", "\t"))
            or (match.group().rstrip()[-1:] in "。！？")
        ):
            end = match.end()
    return text[:end].strip(), text[end:]


class Utterance:
    """See module docstring. All methods run on the event loop thread."""

    def __init__(
        self,
        conn: Connection,
        uid: UtteranceId,
        stream: StreamId,
        options: SpeakOptions,
        received_at: float,
        expression: Expression,
    ) -> None:
        self.conn = conn
        self.id = uid
        self.stream = stream
        self.options = options
        self.received_at = received_at
        spec = conn.session.audio
        out_rate = spec.sample_rate or conn.app.voice.sample_rate
        self.in_rate = conn.app.voice.sample_rate
        self.out_rate = out_rate
        self.resampler = StreamResampler(self.in_rate, out_rate)
        self.packets = Packetizer(
            stream, out_rate * spec.frame_ms // 1000, out_rate * FADE_MS // 1000, spec.format
        )
        self.expression = expression
        """Emotion, speed, pitch, volume (and, once found, the registered voice)."""
        self.params = expression.params(SynthesisParams(seed=options.seed))
        self.deadline = (
            None if options.deadline_ms is None else received_at + options.deadline_ms / 1000
        )
        self.pending_text = ""
        self.closed = False  # no more text will come
        self.finished = False  # done was sent
        self.next_index = 0  # sentences handed to the batcher
        self.emit_index = 0  # sentence whose chunks go out now
        self.completed: set[int] = set()
        self.held: dict[int, list[AudioChunk]] = {}
        self.jobs: list[Job] = []
        self.segments: deque[asyncio.Future[FrontendResult]] = deque()  # front end in flight
        self.streamed = False  # opened by append
        self.samples_in = 0  # voice-rate samples emitted so far
        self.started_at: float | None = None
        self.first_audio_at: float | None = None
        self.paused = False  # read by the engine thread: skip while the client lags
        self.staging = 0  # chunks in the WORLD stage's thread
        self.stage_flushed = False  # the stage's look-ahead tail is out
        self.profile: VoiceProfile | None = None  # a registered voice to speak in
        self.world: StreamAdapter | None = expression.stage(self.in_rate)
        """The WORLD stage (emotion and voice in one pass); None: engine output as is."""
        self._held: list[Callable[[], None]] | None = None  # text waiting for the voice

    # -- registered voices -----------------------------------------------------------

    def hold(self) -> None:
        """Keep text back until ``release`` (the voice is being looked up)."""
        self._held = []

    def release(self, profile: VoiceProfile, transform: VoiceTransform) -> None:
        """Speak in ``profile``'s voice (``transform`` moves the bundled voice to it).

        The held text goes to synthesis now.
        """
        held, self._held = self._held or [], None
        self.profile = profile
        self.expression = self.expression.with_voice(transform)
        self.world = self.expression.stage(self.in_rate)
        for call in held:
            if not self.finished:
                call()

    def _holding(self, call: Callable[[], None]) -> bool:
        if self._held is None:
            return False
        self._held.append(call)
        return True

    # -- text in -------------------------------------------------------------------

    def append(self, text: str) -> None:
        """Streamed text: complete sentences go to synthesis now, the rest waits."""
        self.streamed = True
        if self._holding(lambda: self.append(text)):
            return
        ready, self.pending_text = split_complete_sentences(self.pending_text + text)
        if ready:
            self._submit_text(ready)

    def flush(self) -> None:
        """Synthesize what is buffered, complete or not."""
        if self._holding(self.flush):
            return
        text, self.pending_text = self.pending_text.strip(), ""
        if text:
            self._submit_text(text)

    def end(self) -> None:
        """No more text: synthesize the rest, then finish."""
        if self._holding(self.end):
            return
        self.flush()
        self.closed = True
        self._maybe_done()

    def speak(self, text: str) -> None:
        if self._holding(lambda: self.speak(text)):
            return
        self._submit_text(text)
        self.closed = True

    def _submit_text(self, text: str) -> None:
        app = self.conn.app
        future = app.loop.run_in_executor(app.frontend_pool, app.voice.frontend.process, text)
        self.segments.append(future)
        future.add_done_callback(lambda _: self._on_frontend())

    def _on_frontend(self) -> None:
        """Take finished front-end results in submission order (pool threads may race)."""
        while self.segments and self.segments[0].done() and not self.finished:
            future = self.segments.popleft()
            try:
                result: FrontendResult = future.result()
            except TextError as exc:
                if exc.code == "empty_text" and self.streamed:
                    continue  # e.g. an emoji-only piece of streamed text: nothing to say
                self.fail(Error(code=exc.code, message=str(exc), id=self.id))
                return
            except Exception:
                logger.error("front end failed for %s", self.id, exc_info=True)
                self.fail(Error(code="internal", message="text processing failed", id=self.id))
                return
            self._enqueue(result.sentences)
        self._maybe_done()

    def _enqueue(self, sentences: list[Sentence]) -> None:
        conn = self.conn
        jobs = [
            Job(
                request=self._request(s, self.next_index + i),
                sink=self,
                owner=self,
                session=conn.key,
                priority=PRIORITIES[self.options.priority],
                deadline=self.deadline,
                context=(self.next_index + i, s),
            )
            for i, s in enumerate(sentences)
        ]
        try:
            conn.app.batcher.submit(jobs)
        except Overloaded as exc:
            retry_ms = int(exc.retry_after_s * 1000)
            message = f"server busy; retry after {retry_ms} ms"
            error = Error("overloaded", message, self.id, retryable=True, retry_after_ms=retry_ms)
            self.fail(error)
            return
        self.jobs.extend(jobs)
        self.next_index += len(jobs)

    def _request(self, sentence: Sentence, index: int) -> SynthesisRequest:
        return self.expression.request(
            sentence.ids, sentence.phonemes, self.params.offset_seed(index)
        )

    # -- results in (Sink) -----------------------------------------------------------

    def job_started(self, job: Job, queue_s: float) -> None:
        if self.finished or self.started_at is not None:
            return
        self.started_at = time.monotonic()
        queue_ms = (self.started_at - self.received_at) * 1000
        expr = self.expression
        self.conn.session.send_started(
            self.id, self.stream, queue_ms, emotion=expr.emotion, intensity=expr.intensity
        )
        self.conn.flush()

    def job_chunk(self, job: Job, chunk: AudioChunk) -> None:
        if self.finished:
            return
        index = job.context[0]
        if index != self.emit_index:
            self.held.setdefault(index, []).append(chunk)
            return
        self._emit(job.context[1], chunk)
        self.conn.flush()

    def job_finished(self, job: Job, status: FinishStatus, reason: str | None) -> None:
        if self.finished:
            return
        if status == "expired":
            self.fail(
                Error("expired", f"not started within {self.options.deadline_ms} ms", self.id),
                "expired",
            )
            return
        if status == "failed":
            self.fail(Error("internal", reason or "synthesis failed", self.id))
            return
        self.completed.add(job.context[0])
        while self.emit_index in self.completed:
            self.emit_index += 1
            sentence = self._sentence(self.emit_index)
            for chunk in self.held.pop(self.emit_index, []):
                self._emit(sentence, chunk)
        self._maybe_done()
        self.conn.flush()

    def _sentence(self, index: int) -> Sentence | None:
        return self.jobs[index].context[1] if index < len(self.jobs) else None

    # -- frames out ------------------------------------------------------------------

    def _emit(self, sentence: Sentence | None, chunk: AudioChunk) -> None:
        session = self.conn.session
        phrase: tuple[int, int] | None = None
        if chunk.phoneme_samples is not None and sentence:
            if self.options.timestamps:
                session.send_marks(self._marks(sentence, chunk.phoneme_samples))
            start, end = phrase_span(sentence.phonemes, chunk.phoneme_samples)
            phrase = (self.samples_in + start, self.samples_in + end)
        self.samples_in += len(chunk.samples)
        if self.world is None:
            self._out(chunk.samples)
        else:
            self._stage(_staged_chunk(self.world, chunk.samples, phrase))

    def _out(self, samples: np.ndarray) -> None:
        for frame in self.packets.push(self.resampler.process(samples)):
            self._send(frame)

    # -- the WORLD stage, on its own thread ------------------------------------------

    def _stage(self, work: Callable[[], np.ndarray]) -> None:
        """Run ``work`` on the stage thread; its samples go out in submission order.

        One thread serves every utterance, so jobs finish in the order they were
        submitted and their callbacks run on the loop in that order too.
        """
        app = self.conn.app
        self.staging += 1
        future = app.loop.run_in_executor(app.stage_pool, work)
        future.add_done_callback(self._staged)

    def _staged(self, future: asyncio.Future[np.ndarray]) -> None:
        self.staging -= 1
        if self.finished:
            return
        try:
            samples = future.result()
        except Exception:
            logger.error("the WORLD stage failed for %s", self.id, exc_info=True)
            self.fail(Error("internal", "the emotion/voice stage failed", self.id))
            return
        self._out(samples)
        self._maybe_done()
        self.conn.flush()

    def _send(self, frame: AudioFrame) -> None:
        if self.first_audio_at is None and frame.pcm:
            self.first_audio_at = time.monotonic()
        self.conn.session.send_audio(frame)

    def _marks(self, sentence: Sentence, durations: list[int]) -> Marks:
        """Word and phoneme timings of one sentence, in output samples."""
        scale = self.out_rate / self.in_rate
        start = self.samples_in
        # ids are ^ _ (phoneme _)* $: phoneme j is id 2 + 2j, followed by its pad.
        t = start + durations[0] + durations[1]
        phonemes: list[Phoneme] = []
        for j, p in enumerate(sentence.phonemes):
            span = durations[2 + 2 * j] + durations[3 + 2 * j]
            phonemes.append(Phoneme(p, round(t * scale), round((t + span) * scale)))
            t += span
        words = _words(phonemes, sentence.words)
        return Marks(self.id, self.stream, round(start * scale), tuple(words), tuple(phonemes))

    def _maybe_done(self) -> None:
        if self.finished or not self.closed or self.segments:
            return
        if self.emit_index < self.next_index:
            return
        if self.next_index == 0:  # streamed text that held nothing speakable
            self.fail(Error("empty_text", "the streamed text held nothing speakable", self.id))
            return
        if self.staging:
            return
        if self.world is not None and not self.stage_flushed:  # the stage's look-ahead tail
            self.stage_flushed = True
            self._stage(self.world.flush)
            return
        for frame in self.packets.push(self.resampler.flush()):
            self._send(frame)
        for frame in self.packets.finish():
            self._send(frame)
        self._done("completed")

    # -- endings ---------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop now: queued sentences leave the queue, running ones drop at the next step."""
        if self.finished:
            return
        self._end_stream()
        self._done("cancelled")

    def fail(self, error: Error, status: Status = "failed") -> None:
        if self.finished:
            return
        self.conn.session.send_error(error)
        self._end_stream()
        self._done(status)

    def _end_stream(self) -> None:
        """A started stream ends with one ``last`` frame: what is held back, faded out."""
        if self.started_at is not None:
            for frame in self.packets.fade_out():
                self._send(frame)

    def _done(self, status: Status) -> None:
        self.finished = True
        for job in self.jobs:
            job.cancelled = True
        now = time.monotonic()
        samples = self.packets.sent
        audio_s = samples / self.out_rate
        rtf = None
        if audio_s and self.started_at is not None:
            rtf = (now - self.started_at) / audio_s
        first = self.first_audio_at
        self.conn.session.send_done(
            Done(
                id=self.id,
                stream=self.stream if self.started_at is not None else None,
                status=status,
                samples=samples,
                audio_ms=audio_s * 1000,
                first_audio_ms=None if first is None else (first - self.received_at) * 1000,
                rtf=rtf,
            )
        )
        self.conn.forget(self)
        self.conn.flush()


def _staged_chunk(
    world: StreamAdapter, samples: np.ndarray, phrase: tuple[int, int] | None
) -> Callable[[], np.ndarray]:
    """Stage-thread work for one chunk (phrase marks are set there, before its samples)."""

    def work() -> np.ndarray:
        if phrase is not None:
            world.phrase(*phrase)
        return world.process(samples)

    return work


def _words(phonemes: list[Phoneme], words: list[str]) -> list[Word]:
    """Group phonemes between spaces into words; name them when the counts agree."""
    groups: list[list[Phoneme]] = [[]]
    for ph in phonemes:
        if ph.p == " ":
            groups.append([])
        elif ph.p not in ",.!?;:":
            groups[-1].append(ph)
    groups = [g for g in groups if g]
    named = len(groups) == len(words)
    return [
        Word(words[i] if named else "".join(p.p for p in g), g[0].start, g[-1].end)
        for i, g in enumerate(groups)
    ]
