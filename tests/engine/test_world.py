"""WORLD, the reference vocoder the tests build synthetic speakers with (``engine/world.py``).

The runtime does not use it; what is checked here is that the speakers it makes have
the ground truth the fitting tests assume.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voxlive.engine.pitch import yin_median
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.world import analyze, apply, pyworld, synthesize, track_f0

RATE = 22050
REFERENCE = (
    "The old library at the end of the street opens early in the morning, "
    "and the air smells of paper."
)


@pytest.fixture(scope="module")
def reference_analysis(voice):
    (audio,) = voice.synthesize_texts([REFERENCE], SynthesisParams(seed=4))
    return audio, analyze(audio, RATE)


def test_pyworld_loads_without_pkg_resources() -> None:
    assert hasattr(pyworld(), "harvest")


@pytest.mark.slow
def test_the_contour_world_resynthesizes_from_agrees_with_an_independent_tracker(
    reference_analysis,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import librosa
    audio, _ = reference_analysis
    pyin, _, _ = librosa.pyin(audio, fmin=50, fmax=400, sr=RATE, frame_length=2048)
    theirs = float(np.nanmedian(pyin))
    f0 = track_f0(audio, RATE)
    assert abs(12 * np.log2(float(np.median(f0[f0 > 0])) / theirs)) < 1.5


@pytest.mark.slow
def test_identity_resynthesis_keeps_the_pitch(reference_analysis) -> None:
    audio, analysis = reference_analysis
    resynth = synthesize(analysis)
    assert abs(12 * np.log2(yin_median(resynth, RATE) / yin_median(audio, RATE))) < 1.0
    assert abs(len(resynth) - len(audio)) < 0.02 * RATE


@pytest.mark.slow
def test_a_pitch_shift_moves_the_measured_pitch_by_that_much(reference_analysis) -> None:
    _, analysis = reference_analysis
    base = yin_median(synthesize(analysis), RATE)
    up = yin_median(synthesize(apply(analysis, VoiceTransform(f0_shift_st=4.0))), RATE)
    assert abs(12 * np.log2(up / base) - 4.0) < 0.6
