"""The start-up warm-up: every voice's sentences, in batches of one, two and three."""

from __future__ import annotations

from voxlive.server.warmup import BATCHES, WARM_UP_TEXTS, warm_up

from ..fakes import FakeEngine


def test_every_warm_up_sentence_is_spoken_at_each_batch_size() -> None:
    engine = FakeEngine()
    warm_up(engine)
    texts = list(engine.begun)
    assert sorted(texts) == sorted(list(WARM_UP_TEXTS["en"]) * len(BATCHES))
    # Each performance got its sentences' audio and its end: nothing is left running.
    assert len(engine.performances) == len(WARM_UP_TEXTS["en"]) * len(BATCHES)
    assert all(p.ended for p in engine.performances)


def test_a_voice_is_warmed_up_in_its_own_language() -> None:
    engine = FakeEngine(language="zh-CN", name="zh")
    warm_up(engine)
    assert "".join(sorted(set(engine.begun))) == "".join(sorted(WARM_UP_TEXTS["zh"]))


def test_a_language_without_sentences_is_skipped() -> None:
    engine = FakeEngine(language="ja-JP", name="ja")
    assert warm_up(engine) >= 0 and engine.begun == []
