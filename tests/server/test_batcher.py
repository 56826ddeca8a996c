"""The batcher over a fake engine: scheduling, ordering, cancel, deadlines, failures.

No model and no sockets: ``deliver`` runs callbacks inline on the engine thread,
and a recorder stands in for the utterance (owner, sink and listener at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from voxlive.engine.interface import Controls, SentenceRequest
from voxlive.server.batcher import Batcher, Job, Overloaded

from ..fakes import FakeEngine, tone


class Recorder:
    """One utterance's view: what the batcher and the engine side told it."""

    def __init__(self, engine: FakeEngine, name: str, controls: Controls | None = None) -> None:
        self.name = name
        self.paused = False
        self.lock = threading.Lock()
        self.events: list[tuple] = []
        self.chunks = []
        self.over = threading.Event()
        self.performance = engine.perform(controls or Controls(), self)

    # Sink
    def job_started(self, job, queue_s):
        with self.lock:
            self.events.append(("started", job.request.index))

    def job_failed(self, job, status, reason):
        with self.lock:
            self.events.append((status, job.request.index))
        self.over.set()

    # Listener
    def audio(self, chunk):
        with self.lock:
            self.chunks.append(chunk)
        if chunk.end:
            self.over.set()

    def failed(self, reason):
        self.over.set()

    def jobs(self, engine: FakeEngine, text: str, **kw) -> list[Job]:
        sentences = engine.prepare(text).sentences
        jobs = [
            Job(SentenceRequest(self.performance, i, s), self, self, self.name, **kw)
            for i, s in enumerate(sentences)
        ]
        self.performance.end(len(jobs))
        return jobs

    def audio_samples(self) -> np.ndarray:
        return np.concatenate([c.samples for c in self.chunks])

    @property
    def statuses(self) -> set[str]:
        return {e[0] for e in self.events}


def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


@pytest.fixture
def engine():
    return FakeEngine(samples_per_char=200, chunk_samples=1024)


def running(engine, **kw) -> Batcher:
    batcher = Batcher(engine, lambda fn, *args: fn(*args), **kw)
    batcher.start()
    return batcher


def test_an_utterances_sentences_come_back_in_order_as_final_audio(engine):
    batcher = running(engine, max_active=8)
    try:
        u = Recorder(engine, "u")
        batcher.submit(u.jobs(engine, "One two three. Four five. Six."))
        assert u.over.wait(10)
    finally:
        batcher.stop()
    sentences = [c.sentence for c in u.chunks[:-1]]
    assert sentences == sorted(sentences) and set(sentences) == {0, 1, 2}
    assert [c.sentence for c in u.chunks if c.is_last and not c.end] == [0, 1, 2]
    assert u.chunks[-1].end and not any(c.end for c in u.chunks[:-1])
    want = [tone(i, len(t) * 200, engine.sample_rate) for i, t in enumerate(
        ["One two three.", "Four five.", "Six."])]  # fmt: skip
    assert np.array_equal(u.audio_samples(), np.concatenate(want))


def test_a_cancelled_job_makes_no_more_audio(engine):
    engine.step_delay_s = 0.01
    batcher = running(engine, max_active=4)
    try:
        u = Recorder(engine, "u")
        jobs = u.jobs(engine, "A very long sentence that takes many steps to finish speaking.")
        batcher.submit(jobs)
        assert until(lambda: bool(u.chunks))
        for job in jobs:
            job.cancelled = True
        u.performance.cancel()
        with u.lock:
            seen = len(u.chunks)
        assert until(lambda: batcher.active == 0 and batcher.queued == 0)
    finally:
        batcher.stop()
    assert 1 <= len(u.chunks) <= seen + 1  # at most the step in progress
    assert not any(c.end for c in u.chunks)


def test_a_job_whose_deadline_passed_in_the_queue_expires(engine):
    engine.step_delay_s = 0.02
    batcher = running(engine, max_active=1)
    try:
        busy, late = Recorder(engine, "a"), Recorder(engine, "b")
        batcher.submit(busy.jobs(engine, "A long sentence keeps the only slot busy for a while."))
        assert until(lambda: bool(busy.chunks))  # the only slot is taken
        batcher.submit(late.jobs(engine, "Hello.", deadline=time.monotonic() + 0.01))
        assert late.over.wait(10) and busy.over.wait(10)
    finally:
        batcher.stop()
    assert late.events == [("expired", 0)] and not late.chunks
    assert busy.chunks[-1].end


def test_one_bad_sentence_fails_alone(engine):
    batcher = running(engine, max_active=8)
    try:
        good1, bad, good2 = (Recorder(engine, n) for n in ("g1", "bad", "g2"))
        with batcher._cond:  # all three in one begin call
            for u, text in ((good1, "Fine words."), (bad, "FAIL here."), (good2, "Also fine.")):
                batcher.submit(u.jobs(engine, text))
        assert all(u.over.wait(10) for u in (good1, bad, good2))
    finally:
        batcher.stop()
    assert bad.events == [("failed", 0)]
    assert good1.chunks[-1].end and good2.chunks[-1].end
    assert "failed" not in good1.statuses | good2.statuses


def test_realtime_work_starts_before_queued_bulk_work(engine):
    engine.step_delay_s = 0.01
    batcher = running(engine, max_active=1)
    try:
        bulk = [Recorder(engine, f"b{k}") for k in range(3)]
        npc = Recorder(engine, "npc")
        with batcher._cond:
            for k, u in enumerate(bulk):
                batcher.submit(u.jobs(engine, f"Bulk number {k}.", priority="bulk"))
            batcher.submit(npc.jobs(engine, "Watch out!", priority="realtime"))
        assert all(u.over.wait(10) for u in [*bulk, npc])
    finally:
        batcher.stop()
    assert engine.begun[0] == "Watch out!"


def test_a_full_queue_refuses_with_a_retry_hint(engine):
    batcher = Batcher(engine, lambda fn, *args: fn(*args), max_queued=2)  # not running
    u = Recorder(engine, "u")
    with pytest.raises(Overloaded) as caught:
        batcher.submit(u.jobs(engine, "One. Two. Three."))
    assert caught.value.retry_after_s > 0 and batcher.queued == 0


def test_a_paused_owner_gets_nothing_until_it_reads_again(engine):
    batcher = running(engine, max_active=4)
    try:
        u, other = Recorder(engine, "u"), Recorder(engine, "other")
        u.paused = True
        batcher.submit(u.jobs(engine, "Nothing yet."))
        batcher.submit(other.jobs(engine, "Someone else speaks."))
        assert other.over.wait(10)  # the batcher ran past the paused job meanwhile
        assert not u.chunks and batcher.queued == 1
        u.paused = False
        assert u.over.wait(10)
    finally:
        batcher.stop()
    assert u.chunks[-1].end
