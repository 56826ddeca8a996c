"""Several voices behind one engine: language runs go to their voice, audio comes back in order."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeEngine
from voxlive.engine.interface import Controls, FinalChunk, SentenceRequest, TextError
from voxlive.engine.multivoice import AUTO, MultiVoiceEngine, dominant_language


class Collect:
    def __init__(self) -> None:
        self.chunks: list[FinalChunk] = []
        self.failures: list[str] = []

    def audio(self, chunk: FinalChunk) -> None:
        self.chunks.append(chunk)

    def failed(self, reason: str) -> None:
        self.failures.append(reason)


def bilingual(default: str = "en") -> tuple[MultiVoiceEngine, FakeEngine, FakeEngine]:
    en = FakeEngine(sample_rate=22050, name="en", samples_per_char=200)
    zh = FakeEngine(sample_rate=24000, language="zh-CN", name="zh", samples_per_char=2400)
    return MultiVoiceEngine([en, zh], default=default), en, zh


def speak(engine: MultiVoiceEngine, text: str, voice: str | None = None) -> Collect:
    out = Collect()
    performance = engine.perform(Controls(), out)
    sentences = engine.prepare(text, voice).sentences
    streams = engine.begin([SentenceRequest(performance, i, s) for i, s in enumerate(sentences)])
    performance.end(len(sentences))
    while not all(s.done for s in streams):
        list(engine.step(streams))
    return out


def test_lists_every_voice_and_speaks_at_the_default_voices_rate() -> None:
    engine, _, _ = bilingual()
    assert [v.name for v in engine.voices] == ["en", "zh"]
    assert [v.language for v in engine.voices] == ["en-US", "zh-CN"]
    assert engine.sample_rate == 22050
    assert MultiVoiceEngine(bilingual()[1:], default="zh").sample_rate == 24000


def test_mixed_text_is_cut_into_runs_each_spoken_by_its_language() -> None:
    engine, _, _ = bilingual()
    text = engine.prepare("Thank you 谢谢 for the gift!")
    assert [s.voice for s in text.sentences] == ["en", "zh", "en"]
    assert "谢谢" in text.sentences[1].text
    assert [s.voice for s in engine.prepare("欢迎来到直播间").sentences] == ["zh"]
    assert [s.voice for s in engine.prepare("Welcome back, chat!").sentences] == ["en"]


def test_text_in_no_script_goes_to_the_utterances_voice() -> None:
    engine, _, _ = bilingual()
    assert engine.prepare("666").sentences[0].voice == "en"
    assert engine.prepare("666", "zh").sentences[0].voice == "zh"
    assert engine.prepare("今天666", AUTO).sentences[0].voice == "zh"
    with pytest.raises(KeyError):
        engine.prepare("hello", "fr")


def test_dominant_language_counts_characters_by_script() -> None:
    assert dominant_language("这个boss好难") == "zh"
    assert dominant_language("Thank you so much for the follow 谢谢") == "en"
    assert dominant_language("123 !!!") is None


def test_nothing_speakable_is_an_empty_text_error() -> None:
    engine, _, _ = bilingual()
    with pytest.raises(TextError) as err:
        engine.prepare("   ")
    assert err.value.code == "empty_text"


def test_groups_play_in_order_resampled_to_one_rate_with_marks_on_one_timeline() -> None:
    engine, en, zh = bilingual()
    out = speak(engine, "Thank you 谢谢 for the gift!")
    assert not out.failures
    assert [c.end for c in out.chunks].count(True) == 1 and out.chunks[-1].end
    indices = [c.sentence for c in out.chunks if c.sentence is not None]
    assert indices == sorted(indices) and set(indices) == {0, 1, 2}
    # The Chinese run's tone is 24 kHz audio resampled to 22.05 kHz: about as long as
    # its sentence's samples at that rate.
    zh_samples = sum(len(c.samples) for c in out.chunks if c.sentence == 1)
    (zh_sentence,) = [s for s in engine.prepare("谢谢").sentences]
    expected = round(len(zh_sentence.text) * 2400 * 22050 / 24000)
    assert abs(zh_samples - expected) < 200
    # Marks count from the utterance's start: each sentence's come after the previous audio.
    starts = [c.marks.start for c in out.chunks if c.marks is not None]
    assert starts == sorted(starts) and starts[0] == 0
    total = sum(len(c.samples) for c in out.chunks)
    assert starts[-1] < total
    assert en.begun == ["Thank you", "for the gift!"] and len(zh.begun) == 1


def test_a_single_voice_utterance_is_that_voices_audio_untouched() -> None:
    engine, _, _ = bilingual()
    mixed = speak(engine, "Hello there. How are you?")
    alone = Collect()
    en = FakeEngine(sample_rate=22050, samples_per_char=200)
    p = en.perform(Controls(), alone)
    sentences = en.prepare("Hello there. How are you?").sentences
    streams = en.begin([SentenceRequest(p, i, s) for i, s in enumerate(sentences)])
    p.end(len(sentences))
    while not all(s.done for s in streams):
        list(en.step(streams))
    joined = np.concatenate([c.samples for c in mixed.chunks])
    np.testing.assert_array_equal(joined, np.concatenate([c.samples for c in alone.chunks]))


def test_cancel_stops_every_voice() -> None:
    engine, _, _ = bilingual()
    out = Collect()
    performance = engine.perform(Controls(), out)
    sentences = engine.prepare("Thank you 谢谢 for the gift!").sentences
    streams = engine.begin([SentenceRequest(performance, i, s) for i, s in enumerate(sentences)])
    performance.cancel()
    performance.end(len(sentences))
    while not all(s.done for s in streams):
        list(engine.step(streams))
    assert out.chunks == []


def test_a_control_a_voice_refuses_is_refused_at_perform() -> None:
    engine, _, _ = bilingual()
    with pytest.raises(ValueError):
        engine.perform(Controls(emotion="furious-ish"), Collect())


def test_a_voice_group_that_finished_before_the_next_began_still_closes_in_order() -> None:
    # The batcher may finish a run's last sentence before it begins the next run's first:
    # the finished group's closing chunk then comes from inside the next ``begin``.
    engine, _, _ = bilingual()
    out = Collect()
    performance = engine.perform(Controls(), out)
    sentences = engine.prepare("Thank you 谢谢 for the gift!").sentences
    performance.end(len(sentences))
    for i, s in enumerate(sentences):
        (stream,) = engine.begin([SentenceRequest(performance, i, s)])
        while not stream.done:
            list(engine.step([stream]))
    assert out.chunks[-1].end and [c.end for c in out.chunks].count(True) == 1
    assert [c.sentence for c in out.chunks if c.sentence is not None] == sorted(
        c.sentence for c in out.chunks if c.sentence is not None
    )
    starts = [c.marks.start for c in out.chunks if c.marks is not None]
    assert starts == sorted(starts) and len(set(starts)) == 3


def test_each_runs_viseme_track_is_moved_onto_the_utterances_timeline() -> None:
    # The Chinese run is 24 kHz resampled to 22.05 kHz: its track is scaled with its audio.
    engine, _, _ = bilingual()
    out = speak(engine, "Thank you 谢谢 for the gift!")
    marked = [c for c in out.chunks if c.marks is not None]
    assert len(marked) == 3
    ends = []
    for c in marked:
        assert c.marks is not None
        visemes = c.marks.visemes
        assert visemes[0].start == c.marks.start and visemes[0].text == "PP"
        assert all(a.end == b.start and a.text != b.text for a, b in zip(visemes, visemes[1:]))
        assert all(v.end > v.start for v in visemes)
        ends.append(visemes[-1].end)
    sentence_ends = np.cumsum(
        [sum(len(c.samples) for c in out.chunks if c.sentence == i) for i in range(3)]
    )
    assert all(abs(int(e) - int(s)) <= 2 for e, s in zip(ends, sentence_ends))
