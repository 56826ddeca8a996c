"""Whisper tiny.en must understand the real voice, and the judge must be able to say no.

The voice runs with its realistic sampling noise (default params, fixed seed) on CPU;
the score is the corpus word error rate over twelve varied sentences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxlive.engine.voice import SynthesisParams, Voice

from ..judge import load_whisper, resample, transcribe, wer
from .sentences import SENTENCES

# Twelve sentences with more than one word: a lone "Yes." says little about intelligibility.
JUDGED = [s for s in SENTENCES if len(s.split()) > 1][:12]
PARAMS = SynthesisParams(seed=3)
MAX_WER = 0.10


def report(refs: list[str], hyps: list[str]) -> str:
    """Every reference next to what Whisper heard, for the assertion message."""
    lines = [f"  ref: {r}\n  hyp: {h}" for r, h in zip(refs, hyps)]
    return "\n".join([f"WER {wer(refs, hyps):.3f} (max {MAX_WER})", *lines])


def bfloat16_conv_is_unavailable() -> str | None:
    """Why bfloat16 convolutions cannot run on this CPU, or None when they can."""
    if not torch.backends.mkldnn.is_available():
        return "oneDNN (mkldnn) is not available, so CPU bfloat16 convolutions are not either"
    x = torch.zeros(1, 2, 8, dtype=torch.bfloat16)
    try:
        torch.nn.functional.conv1d(x, torch.zeros(2, 2, 3, dtype=torch.bfloat16))
        torch.nn.functional.conv_transpose1d(x, torch.zeros(2, 2, 4, dtype=torch.bfloat16))
    except RuntimeError as exc:
        return f"bfloat16 convolutions do not run on this CPU: {exc}"
    return None


@pytest.fixture(scope="module")
def whisper():
    return load_whisper()


@pytest.fixture(scope="module")
def voice_bf16() -> Voice:
    reason = bfloat16_conv_is_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return Voice.load(precision="bfloat16")


@pytest.fixture(scope="module")
def heard_float32(voice, whisper) -> list[str]:
    """What Whisper hears in the float32 voice's audio of each judged sentence."""
    audio = voice.synthesize_texts(JUDGED, PARAMS)
    return [transcribe(whisper, a, voice.sample_rate) for a in audio]


# -- the engine, judged -----------------------------------------------------------------


@pytest.mark.slow
def test_whisper_understands_the_engine_float32(heard_float32):
    assert wer(JUDGED, heard_float32) <= MAX_WER, report(JUDGED, heard_float32)


@pytest.mark.slow
def test_whisper_understands_the_engine_bfloat16(voice_bf16, whisper):
    audio = voice_bf16.synthesize_texts(JUDGED, PARAMS)
    heard = [transcribe(whisper, a, voice_bf16.sample_rate) for a in audio]
    assert wer(JUDGED, heard) <= MAX_WER, report(JUDGED, heard)


# -- the judge can fail -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(np.zeros(3 * 22050, np.float32), id="silence"),
        pytest.param(
            np.random.default_rng(0).normal(0.0, 0.1, 3 * 22050).astype(np.float32),
            id="white-noise",
        ),
    ],
)
def test_judge_hears_no_sentence_in_audio_without_speech(whisper, audio):
    heard = transcribe(whisper, audio, 22050)
    assert wer([JUDGED[1]], [heard]) >= 0.9, heard


@pytest.mark.slow
def test_judge_scores_speech_of_other_sentences_as_wrong(heard_float32):
    others = JUDGED[1:] + JUDGED[:1]  # each audio judged against the next sentence's text
    assert wer(others, heard_float32) >= 0.5, report(others, heard_float32)


# -- word error rate --------------------------------------------------------------------


def test_wer_of_identical_text_is_zero():
    assert wer(["the quick brown fox"], ["the quick brown fox"]) == 0.0


def test_wer_counts_one_substitution_in_four_words_as_a_quarter():
    assert wer(["the quick brown fox"], ["the quick green fox"]) == 0.25


def test_wer_counts_an_inserted_word_as_one_edit():
    assert wer(["the quick brown fox"], ["the very quick brown fox"]) == 0.25


def test_wer_counts_a_deleted_word_as_one_edit():
    assert wer(["the quick brown fox"], ["the brown fox"]) == 0.25


def test_wer_counts_every_word_of_an_empty_hypothesis():
    assert wer(["the quick brown fox"], [""]) == 1.0


def test_wer_ignores_case_and_punctuation():
    assert wer(["Hello, world! Is it you?"], ["hello world... is it YOU"]) == 0.0


def test_wer_reads_digits_as_number_words():
    assert wer(["seven thirty, for twenty-one days"], ["7:30 for 21 days"]) == 0.0


def test_wer_spells_out_contractions():
    assert wer(["There is a dragon, I cannot look."], ["There's a dragon, I can't look."]) == 0.0


def test_wer_divides_all_edits_by_all_reference_words():
    # 1 edit over 4 + 1 words, not the mean of per-sentence rates: (0.25 + 0) / 2.
    assert wer(["a b c d", "e"], ["a b c x", "e"]) == 0.2


def test_wer_rejects_unpaired_references_and_hypotheses():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])


def test_wer_rejects_references_without_words():
    with pytest.raises(ValueError, match="no words"):
        wer(["?!"], ["anything"])


# -- resampling -------------------------------------------------------------------------


def test_resampling_to_16khz_keeps_a_tone_and_its_duration():
    t = np.arange(22050) / 22050
    out = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 22050, 16000)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    np.testing.assert_allclose(out[800:-800], expected[800:-800], atol=1e-4)
