"""One utterance over several voices: groups of sentences, played in order (see
``engine/multivoice.py``).

An utterance's consecutive sentences of one voice form a :class:`_Group`, performed by
that voice's engine as a performance of its own. Groups play one after another at the
rate of the default voice (the others resampled), their marks moved onto the
utterance's one timeline; a group's output waits until every earlier group has played.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .interface import (
    Controls,
    Engine,
    FinalChunk,
    Listener,
    Performance,
    Sentence,
    SentenceMarks,
    SentenceRequest,
    Timed,
    alone,
)
from .resample import StreamResampler
from .visemes import moved

if TYPE_CHECKING:
    from .multivoice import MultiVoiceEngine

__all__ = ["MultiPerformance"]


class _Group:
    """Consecutive sentences of one voice: a performance of that voice's engine."""

    def __init__(
        self, owner: MultiPerformance, voice: str, engine: Engine, rate: int, first: int = 0
    ) -> None:
        self.owner = owner
        self.voice = voice
        self.engine = engine
        self.first = first  # the utterance's index of its first sentence
        self.count = 0  # sentences routed to it
        self.ended = False  # its performance knows its count
        self.pending: list[FinalChunk] = []  # output waiting for the groups before it
        self.base = 0  # the utterance's sample where its audio starts
        self.ratio = rate / engine.sample_rate
        self.resampler = (
            None if engine.sample_rate == rate else StreamResampler(engine.sample_rate, rate)
        )
        # Its sentence i is the utterance's sentence first + i, and draws that one's noise
        # (``interface.alone``): a sentence sounds the same whichever voice spoke before
        # it, and performed alone (a scale-out worker) as in its utterance.
        self.performance: Performance = engine.perform(
            alone(owner.controls_for(engine), first), self
        )

    # Listener: on whatever thread the voice's engine delivers from.
    def audio(self, chunk: FinalChunk) -> None:
        self.owner.group_audio(self, chunk)

    def failed(self, reason: str) -> None:
        self.owner.group_failed(reason)

    def closing(self) -> bool:
        """Whether this call is the one to end its performance (lock held by the caller)."""
        first = not self.ended
        self.ended = True
        return first

    def close(self) -> None:
        """Tell its performance how many sentences it has: without the owner's lock held,
        since the performance may deliver its closing chunk from this very call."""
        self.performance.end(self.count)


class MultiPerformance:
    """One utterance over one or more voices (see module docstring). Thread-safe."""

    def __init__(self, engine: MultiVoiceEngine, controls: Controls, listener: Listener) -> None:
        self.engine = engine
        self.controls = controls
        self.listener = listener
        self._lock = threading.Lock()
        # Every voice's engine checks the controls now, so a refusal comes from perform;
        # the first group of each voice uses the performance made here.
        self._spare = {
            id(e): _Group(self, _voice_of(e), e, engine.sample_rate) for e in engine.engines
        }
        self._groups: list[_Group] = []
        self._playing = 0  # the group whose audio goes out now
        self._routed = 0  # sentences routed so far
        self._count: int | None = None
        self._emitted = 0  # samples passed on, at the engine's rate
        self._done = False
        self._cancelled = False

    def controls_for(self, engine: Engine) -> Controls:
        """The controls as ``engine`` takes them: a registered voice's pitch level is fitted
        against the default voice, so another voice gets the level that reaches the same
        pitch from its own centre."""
        voice = self.controls.voice
        home = self.engine.engine_of(self.engine.default)
        if voice is None or engine is home:
            return self.controls
        here, there = _center_hz(home), _center_hz(engine)
        if here is None or there is None:
            return self.controls
        shift = voice.f0_shift_st + 12.0 * math.log2(here / there)
        return replace(self.controls, voice=replace(voice, f0_shift_st=shift))

    # -- engine thread (begin) ---------------------------------------------------------

    def route(self, index: int, sentence: Sentence) -> tuple[Engine, SentenceRequest]:
        """Sentence ``index``'s engine and its request there (sentences come in order)."""
        closing: list[_Group] = []
        with self._lock:
            if index != self._routed:
                raise ValueError(f"sentence {index} begun before sentence {self._routed}")
            voice = sentence.voice or self.engine.default
            engine = self.engine.engine_of(voice)
            group = self._groups[-1] if self._groups else None
            if group is None or group.engine is not engine:
                if group is not None and group.closing():
                    closing.append(group)
                group = self._spare.pop(id(engine), None)
                if group is not None and index and self.controls.seed is not None:
                    group.performance.cancel()  # made for sentence 0's noise
                    group = None
                if group is None:
                    group = _Group(self, voice, engine, self.engine.sample_rate, index)
                group.first = index
                if self._playing == len(self._groups):  # every earlier group has played
                    group.base = self._emitted
                self._groups.append(group)
            local = group.count
            group.count += 1
            self._routed += 1
            if self._count is not None and self._routed == self._count and group.closing():
                closing.append(group)
            request = SentenceRequest(group.performance, local, sentence)
        for g in closing:
            g.close()
        return engine, request

    # -- caller's thread -----------------------------------------------------------------

    def end(self, sentences: int) -> None:
        with self._lock:
            self._count = sentences
            last = self._groups[-1] if self._groups else None
            ready = self._routed == sentences and last is not None and last.closing()
        if ready and last is not None:
            last.close()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            groups = list(self._groups) + list(self._spare.values())
        for group in groups:
            group.performance.cancel()

    # -- the voices' threads ----------------------------------------------------------

    def group_audio(self, group: _Group, chunk: FinalChunk) -> None:
        with self._lock:
            if self._cancelled or self._done:
                return
            group.pending.append(chunk)
            while self._playing < len(self._groups):
                playing = self._groups[self._playing]
                finished = self._pass_on(playing)
                if not finished:
                    break
                self._playing += 1
                if self._playing < len(self._groups):
                    self._groups[self._playing].base = self._emitted
            if (
                self._count is not None
                and self._playing == len(self._groups)
                and self._routed == self._count
            ):
                self._done = True
                self.listener.audio(FinalChunk(np.zeros(0, np.float32), None, True, end=True))

    def group_failed(self, reason: str) -> None:
        with self._lock:
            if self._cancelled or self._done:
                return
            self._done = True
        self.cancel()
        self.listener.failed(reason)

    def _pass_on(self, group: _Group) -> bool:
        """Send the playing group's pending chunks; True once its last one went (lock held)."""
        pending, group.pending = group.pending, []
        for chunk in pending:
            samples = chunk.samples
            if group.resampler is not None:
                samples = group.resampler.process(samples)
                if chunk.end:
                    samples = np.concatenate([samples, group.resampler.flush()])
            index = group.first + (group.count - 1 if chunk.sentence is None else chunk.sentence)
            marks = None if chunk.marks is None else _moved(chunk.marks, group)
            self._emitted += len(samples)
            self.listener.audio(FinalChunk(samples, index, chunk.is_last, marks))
            if chunk.end:
                return True
        return False


def _moved(marks: SentenceMarks, group: _Group) -> SentenceMarks:
    """A group's marks on the utterance's timeline and rate."""

    def at(sample: int) -> int:
        return group.base + round(sample * group.ratio)

    def timed(t: Timed) -> Timed:
        return Timed(t.text, at(t.start), at(t.end))

    return SentenceMarks(
        at(marks.start),
        tuple(timed(w) for w in marks.words),
        tuple(timed(p) for p in marks.phonemes),
        moved(marks.visemes, at),
    )


def _center_hz(engine: Engine) -> float | None:
    """An engine's median pitch, if it tells (registered voices' pitch levels start there)."""
    center = getattr(engine, "center_hz", None)
    return float(center) if isinstance(center, int | float) and center > 0 else None


def _voice_of(engine: Engine) -> str:
    return engine.voices[0].name
