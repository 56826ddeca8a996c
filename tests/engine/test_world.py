"""WORLD stage and voice fitting: measured on the bundled voice with known transforms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voxlive.engine.adapt import Probe, fit_transform, voice_statistics
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.world import (
    VoiceTransform,
    analyze,
    apply,
    pyworld,
    synthesize,
    track_f0,
    yin_median,
)

from .stage_feed import feed_in_chunks

RATE = 22050
PROBE = "Please call Stella and ask her to bring these things with her from the store."
REFERENCE = (
    "The old library at the end of the street opens early in the morning, "
    "and the air smells of paper."
)
TRUTHS = [
    VoiceTransform(f0_shift_st=4.0, formant_scale=1.12),
    VoiceTransform(f0_shift_st=-3.0, formant_scale=0.9),
    VoiceTransform(f0_shift_st=7.0, formant_scale=1.18, tilt_db_per_octave=2.0),
]


@pytest.fixture(scope="module")
def encoder(speaker):
    return speaker


@pytest.fixture(scope="module")
def probe(voice):
    (audio,) = voice.synthesize_texts([PROBE], SynthesisParams.deterministic())
    return Probe.from_audio(audio, RATE)


@pytest.fixture(scope="module")
def reference_analysis(voice):
    (audio,) = voice.synthesize_texts([REFERENCE], SynthesisParams(seed=4))
    return audio, analyze(audio, RATE)


def test_pyworld_loads_without_pkg_resources() -> None:
    assert hasattr(pyworld(), "harvest")


@pytest.mark.slow
def test_pitch_statistics_agree_with_an_independent_tracker(reference_analysis) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import librosa
    audio, _ = reference_analysis
    pyin, _, _ = librosa.pyin(audio, fmin=50, fmax=400, sr=RATE, frame_length=2048)
    theirs = float(np.nanmedian(pyin))
    ours = voice_statistics(audio, RATE)["f0_median_hz"]
    assert abs(12 * np.log2(ours / theirs)) < 1.5  # semitones
    # The contour WORLD resynthesizes from.
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


@pytest.mark.slow
def test_fitting_recovers_known_speakers_and_raises_similarity(
    probe, reference_analysis, encoder
) -> None:
    _, analysis = reference_analysis
    rises = []
    for truth in TRUTHS:
        reference = synthesize(apply(analysis, truth))
        fit = fit_transform(
            encoder.embed(reference, RATE), voice_statistics(reference, RATE), probe, encoder
        )
        got, want = fit.transform, truth
        f0_ratio = 2 ** ((got.f0_shift_st - want.f0_shift_st) / 12)
        assert abs(f0_ratio - 1) <= 0.10, (got, want)
        assert abs(got.formant_scale / want.formant_scale - 1) <= 0.10, (got, want)
        rises.append(fit.similarity_after - fit.similarity_before)
    assert np.mean(rises) >= 0.10, rises


# -- streaming adaptation ---------------------------------------------------------------


@pytest.mark.slow
def test_streamed_adaptation_keeps_length_moves_pitch_and_has_no_seams(reference_analysis):
    from voxlive.engine.world import StreamAdapter

    audio, _ = reference_analysis
    adapter = StreamAdapter(VoiceTransform(f0_shift_st=4.0, formant_scale=1.1), RATE, 88.0)
    outs = feed_in_chunks(adapter, audio)
    y = np.concatenate(outs)
    assert len(y) == len(audio)
    moved = 12 * np.log2(yin_median(y, RATE) / yin_median(audio, RATE))
    assert abs(moved - 4.0) < 1.0  # semitones (resynthesis itself adds up to ~0.5)
    jumps = np.abs(np.diff(y))
    seams = np.cumsum([len(o) for o in outs if len(o)])[:-1] - 1
    assert jumps[seams].max() <= np.delete(jumps, seams).max()


@pytest.mark.slow
def test_adapted_speech_stays_intelligible(voice):
    from voxlive.engine.world import StreamAdapter

    from ..judge import load_whisper, transcribe, wer
    from .sentences import SENTENCES

    judged = [s for s in SENTENCES if len(s.split()) > 3][:12]
    whisper = load_whisper()
    heard = []
    transform = VoiceTransform(f0_shift_st=5.0, formant_scale=1.12, tilt_db_per_octave=2.0)
    for audio in voice.synthesize_texts(judged, SynthesisParams(seed=3)):
        y = np.concatenate(feed_in_chunks(StreamAdapter(transform, RATE, 88.0), audio))
        heard.append(transcribe(whisper, y, RATE))
    assert wer(judged, heard) <= 0.12, list(zip(judged, heard))
