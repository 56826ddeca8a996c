"""Expressions: emotion + controls → engine requests and one PSOLA stage (real voice)."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.expression import Expression, pause_scales, phrase_span, render
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams

TEXT = "Well, I think so; but let me check the map first."


@pytest.mark.slow
def test_small_speed_changes_move_the_length_by_as_much(voice) -> None:
    """Rounding each phoneme alone (ceil) swallowed ±10 %: the total must follow the speed."""
    reqs, _ = voice.requests(TEXT, SynthesisParams.deterministic())
    (base,) = voice.synthesize_requests(reqs)
    for speed in (0.9, 1.1, 1.25):
        reqs, _ = voice.requests(TEXT, SynthesisParams.deterministic(1 / speed))
        (audio,) = voice.synthesize_requests(reqs)
        assert len(audio) / len(base) == pytest.approx(1 / speed, abs=0.02), speed


def test_pauses_scale_only_punctuation_and_its_pad() -> None:
    phonemes = list("ab,c.")
    scales = pause_scales(2 * len(phonemes) + 3, phonemes, 1.5)
    assert scales is not None and len(scales) == 13
    slow = [i for i, s in enumerate(scales) if s != 1.0]
    assert slow == [6, 7, 10, 11]  # "," and "." (ids 2+2j) and the pads after them
    assert pause_scales(13, phonemes, 1.0) is None
    assert pause_scales(12, phonemes, 1.5) is None  # not Piper's id layout: leave it


def test_phrase_span_ends_before_the_final_punctuation() -> None:
    phonemes = list("ab.")
    durations = [5, 1, 10, 1, 20, 2, 30, 3, 4]  # ^ _ a _ b _ . _ $
    assert phrase_span(phonemes, durations) == (6, 37)


@pytest.mark.slow
def test_neutral_has_no_stage_and_renders_the_engines_samples(voice) -> None:
    expr = Expression.create(emotion="neutral", intensity=1.0)
    assert expr.transform is None and expr.stage(voice.sample_rate) is None
    result = voice.frontend.process(TEXT)
    (ours,) = render(voice, [result], [expr], [SynthesisParams(seed=4)])
    (plain,) = voice.synthesize_texts([TEXT], SynthesisParams(seed=4))
    assert np.array_equal(ours, plain)


@pytest.mark.slow
def test_volume_alone_is_a_gain_without_reshaping(voice) -> None:
    expr = Expression.create(volume_db=-6.0)
    assert expr.transform is not None and not expr.transform.needs_stage()
    result = voice.frontend.process(TEXT)
    (quiet,) = render(voice, [result], [expr], [SynthesisParams(seed=4)])
    (plain,) = voice.synthesize_texts([TEXT], SynthesisParams(seed=4))
    np.testing.assert_allclose(quiet, plain * 10 ** (-6 / 20), atol=1e-6)


def test_voice_and_emotion_compose_into_one_transform() -> None:
    voice = VoiceTransform(f0_shift_st=3.0, f0_range=1.2, formant_scale=1.1)
    expr = Expression.create(emotion="sad", intensity=1.0, voice=voice)
    t = expr.transform
    assert t is not None
    assert t.f0_shift_st == pytest.approx(3.0 - 2.0) and t.formant_scale == 1.1
    assert t.f0_range == pytest.approx(1.2 * 0.6) and t.gain_db == pytest.approx(-4.0)
    assert expr.voice == voice
    same = Expression.create(emotion="sad", intensity=1.0).with_voice(voice)
    assert same.transform == t


def test_an_unknown_emotion_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="supported: neutral, happy"):
        Expression.create(emotion="bored")


@pytest.mark.slow
def test_a_rising_end_contour_raises_only_the_phrase_end(voice) -> None:
    from voxlive.engine.pitch import yin_median
    from voxlive.engine.psola import PsolaAdapter

    rate = voice.sample_rate
    text = "We will all meet again by the river tomorrow."  # ends voiced: pitch to track
    reqs, result = voice.requests(text, SynthesisParams.deterministic())
    durations: list[list[int]] = []
    (audio,) = voice.synthesize_requests(reqs, None, durations)
    start, end = phrase_span(result.sentences[0].phonemes, durations[0])

    def adapted(contour_st: float) -> np.ndarray:
        tr = VoiceTransform(f0_range=1.0001, end_contour_st=contour_st)  # both re-spaced
        stage = PsolaAdapter(tr, rate, center_hz=90.0)
        stage.phrase(start, end)
        pieces = [stage.process(audio[i : i + 4096]) for i in range(0, len(audio), 4096)]
        return np.concatenate([*pieces, stage.flush()])

    flat, rising = adapted(0.0), adapted(6.0)
    assert len(rising) == len(audio)
    tail = slice(end - int(0.25 * rate), end)
    head = slice(start, start + (end - start) // 2)
    rise = 12 * np.log2(yin_median(rising[tail], rate) / yin_median(flat[tail], rate))
    assert rise > 1.5, rise  # the quadratic reaches 6 st only at the very end
    assert abs(12 * np.log2(yin_median(rising[head], rate) / yin_median(flat[head], rate))) < 0.3


@pytest.mark.slow
def test_the_stage_gives_audio_for_the_engines_first_chunk(voice) -> None:
    """First audio must not wait for a second engine turn: 186 ms in, audio out."""
    stage = Expression.create(emotion="happy", center_hz=90.0).stage(voice.sample_rate)
    assert stage is not None
    (audio,) = voice.synthesize_texts([TEXT], SynthesisParams(seed=1))
    first = stage.process(audio[: 16 * 256])  # the engine's first chunk: 16 frames
    assert len(first) >= 0.08 * voice.sample_rate
    rest = stage.process(audio[16 * 256 :])
    assert len(first) + len(rest) + len(stage.flush()) == len(audio)
