"""Speak whole texts through any :class:`~.interface.Engine`, in the caller's thread.

What the server does for one utterance, without a server: prepare, perform,
begin every sentence, step until done, and gather the final audio (and marks).
Used by ``voxlive say`` and :class:`~.synthesizer.Synthesizer` for voices other
than the bundled English one, and by benchmarks and tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .interface import Controls, Engine, FinalChunk, SentenceMarks, SentenceRequest, Text

__all__ = ["Spoken", "speak", "speak_many"]

TIMEOUT_S = 600.0
"""Longest wait for a performance's last chunk after the engine finished its work."""


@dataclass(frozen=True, slots=True)
class Spoken:
    """One text's final audio at the engine's rate."""

    audio: np.ndarray
    marks: list[SentenceMarks]
    warnings: list[str]
    sentences: list[np.ndarray]
    """The same audio cut by sentence (a stage's tail goes with the last one)."""


class _Gather:
    def __init__(self) -> None:
        self.chunks: list[FinalChunk] = []
        self.error: str | None = None
        self.done = threading.Event()

    def audio(self, chunk: FinalChunk) -> None:
        self.chunks.append(chunk)
        if chunk.end:
            self.done.set()

    def failed(self, reason: str) -> None:
        self.error = reason
        self.done.set()


def speak(engine: Engine, text: str, controls: Controls, voice: str | None = None) -> Spoken:
    """Speak one text (see :func:`speak_many`)."""
    return speak_many(engine, [engine.prepare(text, voice)], [controls])[0]


def speak_many(
    engine: Engine, texts: Sequence[Text], controls: Sequence[Controls], max_batch: int = 16
) -> list[Spoken]:
    """Speak prepared texts, each as one utterance, their sentences batched together.

    Raises:
        ValueError: the engine refuses some controls.
        RuntimeError: a performance failed.
    """
    gathers = [_Gather() for _ in texts]
    performances = [engine.perform(c, g) for c, g in zip(controls, gathers)]
    requests = [
        SentenceRequest(p, i, s)
        for p, t in zip(performances, texts)
        for i, s in enumerate(t.sentences)
    ]
    for p, t in zip(performances, texts):
        p.end(len(t.sentences))
    for start in range(0, len(requests), max_batch):
        streams = engine.begin(requests[start : start + max_batch])
        while not all(s.done for s in streams):
            for _ in engine.step(streams):
                pass
    spoken = []
    for g, t in zip(gathers, texts):
        if not g.done.wait(TIMEOUT_S) or g.error is not None:
            raise RuntimeError(g.error or "the performance did not finish")
        audio = [c.samples for c in g.chunks]
        pieces: list[list[np.ndarray]] = [[] for _ in t.sentences]
        for c in g.chunks:
            pieces[len(pieces) - 1 if c.sentence is None else c.sentence].append(c.samples)
        spoken.append(
            Spoken(
                np.concatenate(audio) if audio else np.zeros(0, np.float32),
                [c.marks for c in g.chunks if c.marks is not None],
                list(t.warnings),
                [np.concatenate(p) if p else np.zeros(0, np.float32) for p in pieces],
            )
        )
    return spoken
