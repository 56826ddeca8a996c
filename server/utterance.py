"""One utterance on the server: text in (whole or streamed), ordered frames out.

Lives on the event loop thread, and coordinates:

- text: a :class:`~.textbuffer.TextBuffer` (streamed text) and a
  :class:`~.ordering.SentenceOrder` (the front end, results in order);
- synthesis: sentence jobs for the batcher, under the utterance's engine
  :class:`~voxlive.engine.interface.Performance`, which hands back final audio
  in order, marks included;
- output: an :class:`~.output.OutputStream` (resample, frames, fade-out), marks
  scaled to the output rate (``marks.py``), and ``started`` / ``done``;
- repeats: a whole ``speak`` looks its key up in the :class:`~.cache.AudioCache` first;
  a hit replays the kept audio and marks through the same output, a miss records what
  the engine hands back and keeps it once the utterance completes (``cache.py``).

Thread crossings: loop → front end → loop → engine side → loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal, Protocol

from voxlive.engine.emotion import DEFAULT_INTENSITY, EMOTIONS, prosody
from voxlive.engine.interface import (
    Controls,
    Engine,
    FinalChunk,
    Performance,
    Sentence,
    SentenceRequest,
    Text,
    TextError,
)
from voxlive.engine.transform import VoiceTransform
from voxlive.protocol.capabilities import AUTO_LANG
from voxlive.protocol.controls import DEFAULT_SEED
from voxlive.protocol.messages import AudioFrame, Done, Error, SpeakOptions
from voxlive.protocol.types import Status, StreamId, UtteranceId

from .batcher import FailStatus, Job, Overloaded, Scheduler
from .cache import AudioCache, CachedAudio, CacheKey, Flight, Recording
from .errors import wire_code
from .logs import UtteranceLog
from .marks import scale_marks
from .metrics import Finished, Metrics
from .ordering import SentenceOrder
from .output import OutputStream
from .textbuffer import TextBuffer

if TYPE_CHECKING:
    from voxlive.protocol.session import Session

__all__ = ["Services", "Utterance", "Writer"]

logger = logging.getLogger(__name__)

REPLAY_PAUSE_S: Final = 0.01
"""While its client lags, how often a cache hit's replay looks again."""


@dataclass(frozen=True, slots=True)
class Services:
    """What every utterance of a server uses (handed in, never reached for)."""

    loop: asyncio.AbstractEventLoop
    engine: Engine
    batcher: Scheduler
    frontend_pool: Executor
    metrics: Metrics
    log: UtteranceLog
    cache: AudioCache | None = None
    """Repeated lines (``cache.py``); ``None``: every utterance is synthesized."""


class Writer(Protocol):
    """The connection as an utterance sees it."""

    @property
    def session(self) -> Session:
        """The protocol session its messages go through."""

    def flush(self) -> None:
        """Send what the session has queued."""

    def forget(self, utterance: Utterance) -> None:
        """The utterance is done."""


class Utterance:
    """See module docstring. All methods run on the event loop thread."""

    def __init__(
        self,
        services: Services,
        writer: Writer,
        session_key: str,
        uid: UtteranceId,
        stream: StreamId,
        options: SpeakOptions,
        received_at: float,
    ) -> None:
        self.services = services
        self.writer = writer
        self.key = session_key
        self.id = uid
        self.stream = stream
        self.options = options
        self.received_at = received_at
        engine = services.engine
        spec = writer.session.audio
        self.in_rate = engine.sample_rate
        self.out_rate = spec.sample_rate or engine.sample_rate
        self.output = OutputStream(
            stream, self.in_rate, self.out_rate, spec.frame_ms, spec.format, self._send
        )
        self.controls = Controls(
            emotion=options.emotion or "neutral",  # canonical: the protocol session resolved it
            # Unset on the wire: the engine's default (echoed in ``started``).
            intensity=DEFAULT_INTENSITY if options.intensity is None else options.intensity,
            speed=options.speed,
            pitch_st=options.pitch,
            volume_db=options.volume,
            # Unset: a fixed seed, so that a repeated line sounds (and caches) the same
            # (SPEC.md §4.4, v1.8).
            seed=DEFAULT_SEED if options.seed is None else options.seed,
        )
        self.deadline = (
            None if options.deadline_ms is None else received_at + options.deadline_ms / 1000
        )
        self.text = TextBuffer()
        voice = _base_voice(options, engine)
        self.voice_key: str | None = f"builtin:{voice or 'default'}"
        """The voice as the cache keys it; ``None`` (a registered voice not yet found, or
        one without a version): not cached."""
        self.order = SentenceOrder(
            services.loop,
            services.frontend_pool,
            lambda text: engine.prepare(text, voice),
            self._on_text,
        )
        self.performance: Performance | None = None
        self.closed = False  # no more text will come
        self.finished = False  # done was sent
        self.ended = False  # the performance knows its sentence count
        self.streamed = False  # opened by append
        self.next_index = 0  # sentences handed to the batcher
        self.jobs: list[Job] = []
        self.warnings: list[str] = _limited(self.controls)
        """What composing the options had to limit, and what the front end skipped or
        changed (sent with ``done``)."""
        self.started_at: float | None = None
        self.paused = False  # read by the engine thread: skip while the client lags
        self.error_code: str | None = None  # of the error sent for it (metrics and log)
        self.text_chars = 0
        self.texts: list[str] | None = [] if services.log.include_text else None
        self._held: list[Callable[[], None]] | None = None  # text waiting for the voice
        self.cached: Literal["hit", "miss"] | None = None
        """What the audio cache answered (None: not asked)."""
        self._lookup: asyncio.Future[None] | None = None
        self._flight: Flight | None = None  # led: the cache waits for this audio
        self._recording: Recording | None = None

    # -- performance and registered voices ---------------------------------------------

    def perform(self, voice: VoiceTransform | None = None) -> None:
        """Start the engine's performance (in a registered voice's ``voice``).

        Raises:
            ValueError: the engine refuses the controls (e.g. too fast with this emotion).
        """
        controls = self.controls if voice is None else replace(self.controls, voice=voice)
        listener = _LoopListener(self.services.loop, self)
        self.performance = self.services.engine.perform(controls, listener)

    def hold(self) -> None:
        """Keep text back until ``release`` (the voice is being looked up)."""
        self._held = []
        self.voice_key = None

    def release(self, voice: VoiceTransform, version: str | None = None) -> None:
        """Speak in a registered voice (``voice`` moves the engine's voice to it).

        The held text goes to synthesis now. ``version``: the voice's id and profile
        version, which key its utterances in the cache (``None``: not cached).
        """
        held, self._held = self._held or [], None
        self.voice_key = None if version is None else f"registered:{version}"
        try:
            self.perform(voice)
        except ValueError as exc:
            self.fail(Error("unsupported", str(exc), self.id))
            return
        self._untake()  # the held calls take their text again
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
        self._took(text)
        if self._holding(lambda: self.append(text)):
            return
        ready = self.text.append(text)
        if ready:
            self.order.submit(ready)

    def flush(self) -> None:
        """Synthesize what is buffered, complete or not."""
        if self._holding(self.flush):
            return
        text = self.text.flush()
        if text:
            self.order.submit(text)

    def end(self) -> None:
        """No more text: synthesize the rest, then finish."""
        if self._holding(self.end):
            return
        self.flush()
        self.closed = True
        self._maybe_end()

    def speak(self, text: str) -> None:
        self._took(text)
        if self._holding(lambda: self.speak(text)):
            return
        key = self._cache_key(text)
        if key is None:
            self._synthesize(text)
        else:
            self._lookup = asyncio.ensure_future(self._speak_cached(text, key))

    def _synthesize(self, text: str) -> None:
        self.order.submit(text)
        self.closed = True

    # -- repeated lines (cache.py) ---------------------------------------------------

    def _cache_key(self, text: str) -> CacheKey | None:
        """The cache key of a whole ``speak``; ``None``: not cached (SPEC.md §4.4)."""
        cache = self.services.cache
        if cache is None or not self.options.cache or self.streamed or self.voice_key is None:
            return None
        c = self.controls
        assert c.seed is not None, "an unset seed is DEFAULT_SEED"
        registered = self.voice_key.startswith("registered:")
        return cache.key(
            text,
            self.voice_key,
            registered=registered,
            emotion=c.emotion,
            intensity=c.intensity,
            speed=c.speed,
            pitch_st=c.pitch_st,
            volume_db=c.volume_db,
            seed=c.seed,
        )

    async def _speak_cached(self, text: str, key: CacheKey) -> None:
        """Replay the kept audio, or synthesize (leading the key's flight on a miss)."""
        cache = self.services.cache
        assert cache is not None
        try:
            found = await cache.lookup(key)
        except Exception:  # the task's boundary: synthesize as if there were no cache
            logger.error("audio cache lookup for %s failed", self.id, exc_info=True)
            found = None
        if isinstance(found, Flight):
            if self.finished:
                found.abandon()
                return
            self.cached = "miss"
            self._flight, self._recording = found, Recording()
            self._synthesize(text)
        elif found is None:
            if not self.finished:
                self._synthesize(text)
        elif not self.finished:
            self.cached = "hit"
            await self._replay(found)

    async def _replay(self, audio: CachedAudio) -> None:
        """A hit: the kept chunks through ``on_audio``, as the engine would hand them
        over, pausing while the client lags (as the batcher does)."""
        self.warnings = list(audio.warnings)
        self.next_index = audio.sentences
        self.closed = self.ended = True
        for chunk in audio.chunks():
            while self.paused and not self.finished:
                await asyncio.sleep(REPLAY_PAUSE_S)
            if self.finished:
                return
            self.on_audio(chunk)
            await asyncio.sleep(0)  # the writer sends between chunks

    def _settle_flight(self, status: Status | None) -> None:
        """Keep a completed miss's audio; let the waiters of any other synthesize."""
        flight, self._flight = self._flight, None
        if flight is None:
            return
        if status == "completed" and self._recording is not None:
            flight.complete(self._recording.audio(self.next_index, self.warnings))
        else:
            flight.abandon()
        self._recording = None

    def _took(self, text: str) -> None:
        """Text received (for the metrics and the log)."""
        self.text_chars += len(text)
        if self.texts is not None:
            self.texts.append(text)

    def _untake(self) -> None:
        self.text_chars = 0
        self.texts = None if self.texts is None else []

    def _on_text(self, result: Text | Exception) -> None:
        """A front-end result, in submission order."""
        if self.finished:
            return
        if isinstance(result, TextError):
            if result.code != "empty_text":
                self.fail(Error(code=wire_code(result.code), message=str(result), id=self.id))
                return
            # Nothing speakable (emoji only, say): a note, not an error; an utterance
            # left with nothing at all to say ends failed (SPEC.md §4.7).
            self.warnings.append(str(result))
        elif isinstance(result, Exception):
            logger.error("front end failed for %s", self.id, exc_info=result)
            self.fail(Error(code="internal", message="text processing failed", id=self.id))
            return
        else:
            self.warnings.extend(result.warnings)
            self._enqueue(result.sentences)
        self._maybe_end()

    def _enqueue(self, sentences: list[Sentence]) -> None:
        performance = self.performance
        assert performance is not None, "text is held until the performance exists"
        jobs = [
            Job(
                request=SentenceRequest(performance, self.next_index + i, s),
                sink=self,
                owner=self,
                session=self.key,
                priority=self.options.priority,
                deadline=self.deadline,
            )
            for i, s in enumerate(sentences)
        ]
        try:
            self.services.batcher.submit(jobs)
        except Overloaded as exc:
            retry_ms = int(exc.retry_after_s * 1000)
            message = f"server busy; retry after {retry_ms} ms"
            error = Error("overloaded", message, self.id, retryable=True, retry_after_ms=retry_ms)
            self.fail(error)
            return
        self.jobs.extend(jobs)
        self.next_index += len(jobs)

    def _maybe_end(self) -> None:
        """All text is in sentences: tell the performance how many there are."""
        if self.finished or self.ended or not self.closed or self.order.busy:
            return
        if self.next_index == 0:  # the text held nothing speakable (SPEC.md §4.7)
            self.warnings.append("nothing was spoken: the text held nothing speakable")
            self._end_stream()
            self._done("failed")
            return
        assert self.performance is not None
        self.ended = True
        self.performance.end(self.next_index)

    # -- from the batcher (Sink) -------------------------------------------------------

    def job_started(self, job: Job, queue_s: float) -> None:
        if not self.finished and self.started_at is None:
            self._start()

    def job_failed(
        self, job: Job, status: FailStatus, reason: str, retry_after_s: float | None = None
    ) -> None:
        if status == "expired":
            message = f"not started within {self.options.deadline_ms} ms"
            self.fail(Error("expired", message, self.id), "expired")
        elif status in ("overloaded", "unavailable"):  # a gateway's work queue
            retry_ms = int(1000 * (1.0 if retry_after_s is None else retry_after_s))
            error = Error(status, reason, self.id, retryable=True, retry_after_ms=retry_ms)
            self.fail(error)
        else:
            self.fail(Error("internal", reason, self.id))

    # -- from the engine side (via _LoopListener) --------------------------------------

    def on_audio(self, chunk: FinalChunk) -> None:
        if self.finished:
            return
        if self.started_at is None:
            self._start()
        if self._recording is not None:
            self._recording.add(chunk)
        if chunk.marks is not None and self.options.timestamps:
            marks = scale_marks(chunk.marks, self.in_rate, self.out_rate, self.id, self.stream)
            self.writer.session.send_marks(marks)
        self.output.push(chunk.samples)
        if chunk.end:
            self.output.finish()
            self._done("completed")
            return
        self.writer.flush()

    def on_failed(self, reason: str) -> None:
        self.fail(Error("internal", reason, self.id))

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
        self.error_code = error.code
        self.writer.session.send_error(error)
        self._end_stream()
        self._done(status)

    def abandon(self) -> None:
        """Stop without a word: the client is being closed."""
        self.finished = True
        self._settle_flight(None)
        self._stop_work()

    def _start(self) -> None:
        self.started_at = time.monotonic()
        queue_ms = (self.started_at - self.received_at) * 1000
        c = self.controls
        # No emotion asked: no intensity applies, so none is reported (SPEC.md §5.2).
        intensity = None if self.options.emotion is None else c.intensity
        self.writer.session.send_started(
            self.id, self.stream, queue_ms, emotion=c.emotion, intensity=intensity
        )
        self.writer.flush()

    def _send(self, frame: AudioFrame) -> None:
        self.writer.session.send_audio(frame)

    def _end_stream(self) -> None:
        """A started stream ends with one ``last`` frame: what is held back, faded out."""
        if self.started_at is not None:
            self.output.fade_out()

    def _stop_work(self) -> None:
        for job in self.jobs:
            job.cancelled = True
        if self.performance is not None:
            self.performance.cancel()
        self.order.close()

    def _done(self, status: Status) -> None:
        self.finished = True
        self._settle_flight(status)
        self._stop_work()
        now = time.monotonic()
        samples = self.output.sent
        audio_s = samples / self.out_rate
        rtf = None
        if audio_s and self.started_at is not None:
            rtf = (now - self.started_at) / audio_s
        first = self.output.first_audio_at
        self._report(status, now, audio_s, rtf)
        self.writer.session.send_done(
            Done(
                id=self.id,
                stream=self.stream if self.started_at is not None else None,
                status=status,
                samples=samples,
                audio_ms=audio_s * 1000,
                first_audio_ms=None if first is None else (first - self.received_at) * 1000,
                rtf=rtf,
                warnings=tuple(self.warnings),
            )
        )
        self.writer.forget(self)
        self.writer.flush()

    def _report(self, status: Status, now: float, audio_s: float, rtf: float | None) -> None:
        """Count the utterance in ``/metrics`` and log its line."""
        first, start = self.output.first_audio_at, self.started_at
        report = Finished(
            id=self.id,
            session=self.key,
            status=status,
            error_code=self.error_code,
            queue_s=None if start is None else start - self.received_at,
            first_audio_s=None if first is None else first - self.received_at,
            total_s=now - self.received_at,
            audio_s=audio_s,
            rtf=rtf,
            sentences=self.next_index,
            voice=self.options.voice,
            emotion=self.controls.emotion,
            text_chars=self.text_chars,
            text=None if self.texts is None else "".join(self.texts),
            cache=self.cached,
        )
        self.services.metrics.finished(report)
        self.services.log.finished(report)


def _limited(controls: Controls) -> list[str]:
    """What composing ``controls`` had to limit to the engine's ranges (SPEC.md §4.4.1).

    The composition is ``engine.emotion``'s, which the engines share; for an emotion
    outside its table (another engine's own) nothing is reported.
    """
    c = controls
    if c.emotion not in EMOTIONS:
        return []
    return list(prosody(c.emotion, c.intensity, c.speed, c.pitch_st, c.volume_db).limited)


def _base_voice(options: SpeakOptions, engine: Engine) -> str | None:
    """The built-in voice the utterance asks for: by name, by language, or by script."""
    if options.voice in {v.name for v in engine.voices}:
        return options.voice
    if options.lang == AUTO_LANG:
        return AUTO_LANG
    if options.lang is not None:
        lang = options.lang.lower()
        return next((v.name for v in engine.voices if v.language.lower().startswith(lang)), None)
    return None


class _LoopListener:
    """The performance's listener: engine-side calls hop onto the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, utterance: Utterance) -> None:
        self._loop = loop
        self._utterance = utterance

    def audio(self, chunk: FinalChunk) -> None:
        self._loop.call_soon_threadsafe(self._utterance.on_audio, chunk)

    def failed(self, reason: str) -> None:
        self._loop.call_soon_threadsafe(self._utterance.on_failed, reason)
