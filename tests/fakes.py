"""A fake engine for fast server and client tests: deterministic tones, no model.

:class:`FakeEngine` implements ``voxlive.engine.interface.Engine``. Every
sentence is a sine tone whose pitch says which sentence of its utterance it is
(``tone_hz(index)``) and whose length says how long its text is
(``samples_per_char`` per character), so a test can tell from the received
audio what was said and in which order. Sentences containing ``FAIL`` fail to
begin (an engine error confined to them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from voxlive.engine.interface import (
    Controls,
    Decoded,
    Engine,
    FinalChunk,
    Listener,
    Sentence,
    SentenceMarks,
    SentenceRequest,
    Stream,
    Text,
    TextError,
    Timed,
    VoiceInfo,
)
from voxlive.engine.sentences import split_sentences
from voxlive.engine.visemes import VISEMES, track


def tone_hz(index: int) -> float:
    """Pitch of sentence ``index`` of an utterance."""
    return 200.0 + 50.0 * index


def tone(index: int, n: int, rate: int, gain: float = 0.3) -> np.ndarray:
    t = np.arange(n) / rate
    return (gain * np.sin(2 * np.pi * tone_hz(index) * t)).astype(np.float32)


class FakePerformance:
    """Puts sentence chunks back in order, and ends after the last sentence."""

    def __init__(self, controls: Controls, listener: Listener) -> None:
        self.controls = controls
        self.listener = listener
        self.lock = threading.Lock()
        self.next = 0
        self.held: dict[int, list[FinalChunk]] = {}
        self.count: int | None = None
        self.ended = False
        self.cancelled = False

    def end(self, sentences: int) -> None:
        with self.lock:
            self.count = sentences
            self._maybe_end()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True

    def feed(self, chunk: FinalChunk) -> None:
        with self.lock:
            if self.cancelled:
                return
            assert chunk.sentence is not None
            self.held.setdefault(chunk.sentence, []).append(chunk)
            while self.held.get(self.next):
                pending = self.held.pop(self.next)
                for c in pending:
                    self.listener.audio(c)
                if not pending[-1].is_last:
                    break
                self.next += 1
            self._maybe_end()

    def _maybe_end(self) -> None:
        if self.ended or self.cancelled or self.count is None or self.next < self.count:
            return
        self.ended = True
        self.listener.audio(FinalChunk(np.zeros(0, np.float32), None, True, end=True))


@dataclass(eq=False)
class FakeStream:
    performance: FakePerformance
    index: int
    sentence: Sentence
    total: int
    """Samples of the whole sentence."""
    chunk: int
    offset: int
    """The sentence's first sample within its utterance, counted as if in order."""
    position: int = 0

    @property
    def started(self) -> bool:
        return self.position > 0

    @property
    def done(self) -> bool:
        return self.position >= self.total

    @property
    def cost(self) -> int:
        return 0 if self.done else max(1, min(self.chunk, self.total - self.position) // 256)


@dataclass
class FakeEngine:
    """See module docstring."""

    sample_rate: int = 22050
    language: str = "en-US"
    """``zh-…`` makes it speak Han script only (and refuse Latin letters); else Latin only."""
    name: str = "en"
    """Its one voice's name."""
    samples_per_char: int = 400
    chunk_samples: int = 4096
    step_delay_s: float = 0.0
    """Wall time each step takes (to make work queue up)."""
    emotions: tuple[str, ...] = ("neutral", "happy", "sad")
    emotion_aliases: dict[str, str] = field(default_factory=lambda: {"glad": "happy"})
    performances: list[FakePerformance] = field(default_factory=list)
    begun: list[str] = field(default_factory=list)
    """Texts of begun sentences, in order."""
    closed: bool = False

    @property
    def voices(self) -> tuple[VoiceInfo, ...]:
        return (VoiceInfo(self.name, self.language, self.sample_rate, "test tones"),)

    def prepare(self, text: str, voice: str | None = None) -> Text:
        if not text.strip():
            raise TextError("empty_text", "text is empty")
        han = any("\u4e00" <= ch <= "\u9fff" for ch in text)
        latin = any(ch.isascii() and ch.isalpha() for ch in text)
        if self.language.startswith("zh") and latin:
            raise TextError("unsupported_language", "this fake engine speaks Han script")
        if not self.language.startswith("zh") and han:
            raise TextError("unsupported_language", "the fake engine speaks Latin script")
        warnings = [f"dropped emoji {ch!r}" for ch in text if ch == "\U0001f389"]
        text = text.replace("\U0001f389", "")
        if not text.strip():
            raise TextError("empty_text", "nothing speakable: " + "; ".join(warnings))
        pieces = split_sentences(text)
        sentences = [
            Sentence(p, list(p), [ord(c) % 256 for c in p], p.rstrip(".!?").split()) for p in pieces
        ]
        return Text(sentences, warnings)

    def perform(self, controls: Controls, listener: Listener) -> FakePerformance:
        if controls.emotion not in self.emotions:
            raise ValueError(f"unknown emotion {controls.emotion!r}")
        if not 0.25 <= controls.speed <= 4.0:
            raise ValueError(f"speed {controls.speed:g} is out of range")
        performance = FakePerformance(controls, listener)
        self.performances.append(performance)
        return performance

    def sentence_samples(self, sentence: Sentence, controls: Controls) -> int:
        return max(1, round(len(sentence.text) * self.samples_per_char / controls.speed))

    def begin(self, requests: Sequence[SentenceRequest]) -> list[FakeStream]:
        streams = []
        for r in requests:
            if "FAIL" in r.sentence.text:
                raise RuntimeError("injected engine failure")
            p = r.performance
            assert isinstance(p, FakePerformance)
            total = self.sentence_samples(r.sentence, p.controls)
            streams.append(FakeStream(p, r.index, r.sentence, total, self.chunk_samples, 0))
            self.begun.append(r.sentence.text)
        return streams

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        if self.step_delay_s:
            time.sleep(self.step_delay_s)
        for s in streams:
            assert isinstance(s, FakeStream)
            if s.done:
                continue
            n = min(s.chunk, s.total - s.position)
            samples = tone(s.index, s.total, self.sample_rate)[s.position : s.position + n]
            marks = self._marks(s) if s.position == 0 else None
            s.position += n
            s.performance.feed(FinalChunk(samples, s.index, s.done, marks))
            yield Decoded(s, n, s.done)

    def _marks(self, s: FakeStream) -> SentenceMarks:
        words = s.sentence.words or ["_"]
        step = s.total // len(words)
        timed = tuple(Timed(w, i * step, (i + 1) * step) for i, w in enumerate(words))
        # One mouth shape per word (not sil), so neighbours differ: a track to move and scale.
        shapes = (Timed(VISEMES[1 + i % 14], w.start, w.end) for i, w in enumerate(timed))
        return SentenceMarks(0, timed, (), track(shapes, 0, s.total))

    def close(self) -> None:
        self.closed = True


class FakeSpeaker:
    """Stands in for the speaker encoder where no voice is registered."""


def _implements_the_interface(engine: FakeEngine) -> Engine:
    return engine  # mypy checks FakeEngine against the Engine protocol here
