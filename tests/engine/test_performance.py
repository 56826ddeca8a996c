"""A VITS performance without the model: sentence order, marks, the closing chunk."""

from __future__ import annotations

import numpy as np

from voxlive.engine.expression import Expression
from voxlive.engine.interface import Sentence
from voxlive.engine.performance import StageThread, VitsPerformance
from voxlive.engine.streaming import AudioChunk, SynthesisParams


class Collect:
    def __init__(self) -> None:
        self.chunks = []
        self.failures = []

    def audio(self, chunk) -> None:
        self.chunks.append(chunk)

    def failed(self, reason) -> None:
        self.failures.append(reason)


def sentence(phonemes: str, words: list[str]) -> Sentence:
    return Sentence(" ".join(words), list(phonemes), [1] * (2 * len(phonemes) + 3), words)


def chunk(value: float, n: int, last: bool, durations=None) -> AudioChunk:
    samples = np.full(n, value, np.float32)
    return AudioChunk(item=0, samples=samples, offset=0, is_last=last, phoneme_samples=durations)


def test_sentences_decoded_out_of_order_come_out_in_order_then_the_end() -> None:
    out = Collect()
    stages = StageThread()
    perf = VitsPerformance(Expression.create(), SynthesisParams(), 22050, out, stages)
    a, b = sentence("ab", ["ab"]), sentence("c d", ["c", "d"])
    perf.feed(1, b, chunk(2.0, 30, False, [0, 1, 5, 0, 5, 0, 5, 0, 1]))
    perf.feed(0, a, chunk(1.0, 10, False, [1, 1, 2, 0, 2, 0, 4]))
    perf.feed(1, b, chunk(2.0, 5, True))
    assert [c.sentence for c in out.chunks] == [0]
    perf.end(2)
    perf.feed(0, a, chunk(1.0, 4, True))
    stages.close()
    assert [(c.sentence, c.is_last) for c in out.chunks] == [
        (0, False), (0, True), (1, False), (1, True), (None, True)
    ]  # fmt: skip
    assert out.chunks[-1].end and not any(c.end for c in out.chunks[:-1])
    # Marks count from the utterance's start: sentence 1 starts after sentence 0's 14 samples.
    marks = out.chunks[2].marks
    assert marks is not None and marks.start == 14
    assert [(w.text, w.start, w.end) for w in marks.words] == [("c", 15, 20), ("d", 25, 30)]
    assert [(p.text, p.start, p.end) for p in out.chunks[0].marks.phonemes] == [
        ("a", 2, 4), ("b", 4, 6)
    ]  # fmt: skip


def test_a_cancelled_performance_delivers_nothing_more() -> None:
    out = Collect()
    perf = VitsPerformance(Expression.create(), SynthesisParams(), 22050, out, StageThread())
    perf.cancel()
    perf.feed(0, sentence("a", ["a"]), chunk(1.0, 10, True, [1, 1, 1, 1, 1]))
    perf.end(1)
    assert out.chunks == []
