"""Voice adaptation on the PSOLA stage: fitted to known speakers, rendered as clean as neutral.

The known speakers are the bundled voice moved by WORLD (``engine/world.py``), an
independent vocoder: the fit has to find a transform of another stage that matches.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voxlive.bench.stages import HELD_OUT
from voxlive.engine.adapt import Probe, fit_transform, render, voice_statistics
from voxlive.engine.expression import Expression
from voxlive.engine.pitch import yin_median
from voxlive.engine.psola import PsolaAdapter
from voxlive.engine.resample import resample
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.world import analyze, apply, synthesize

from .stage_feed import feed_in_chunks

pytestmark = pytest.mark.slow  # the real voice, the speaker encoder and the judges

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
MIN_RISE = 0.17
"""Mean similarity gain on the known speakers (what the WORLD stage reached)."""
MAX_DROP = 0.3
"""How far a registered voice's mean MOS may fall below neutral's on the same sentences
(as an emotion's, ``test_emotion_quality.py``)."""
TARGET_DROP = 0.15
"""Where it should be (not reached yet: see docs/performance.md)."""


@pytest.fixture(scope="module")
def probe(voice):
    (audio,) = voice.synthesize_texts([PROBE], SynthesisParams.deterministic())
    return Probe.from_audio(audio, RATE)


@pytest.fixture(scope="module")
def reference(voice):
    (audio,) = voice.synthesize_texts([REFERENCE], SynthesisParams(seed=4))
    return audio


@pytest.fixture(scope="module")
def fits(probe, reference, speaker):
    """Each known speaker (made by WORLD) and the fit to it."""
    analysis = analyze(reference, RATE)
    out = []
    for truth in TRUTHS:
        other = synthesize(apply(analysis, truth))
        embedding = speaker.embed(other, RATE)
        fit = fit_transform(embedding, voice_statistics(other, RATE), probe, speaker)
        out.append((truth, fit, embedding))
    return out


def test_pitch_statistics_agree_with_an_independent_tracker(reference) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import librosa
    pyin, _, _ = librosa.pyin(reference, fmin=50, fmax=400, sr=RATE, frame_length=2048)
    theirs = float(np.nanmedian(pyin))
    ours = voice_statistics(reference, RATE)["f0_median_hz"]
    assert abs(12 * np.log2(ours / theirs)) < 1.5  # semitones


def test_fitting_recovers_known_speakers_and_raises_similarity(fits) -> None:
    rises = []
    for want, fit, _ in fits:
        got = fit.transform
        f0_ratio = 2 ** ((got.f0_shift_st - want.f0_shift_st) / 12)
        assert abs(f0_ratio - 1) <= 0.10, (got, want)
        assert abs(got.formant_scale / want.formant_scale - 1) <= 0.10, (got, want)
        rises.append(fit.similarity_after - fit.similarity_before)
    assert np.mean(rises) >= MIN_RISE, rises


def test_the_reported_similarity_is_what_the_stage_renders(fits, probe, speaker) -> None:
    """The fit's shortcut (one PSOLA pass per formant scale, tilts filtered after) is exact:
    the probe streamed through the registered voice's stage scores what the fit reported."""
    for _, fit, embedding in fits:
        expr = Expression.create(voice=fit.transform, center_hz=probe.stats["f0_median_hz"])
        stage = expr.stage(RATE)
        assert isinstance(stage, PsolaAdapter)
        y = np.concatenate(feed_in_chunks(stage, probe.audio))
        (got,) = speaker.embed_batch([resample(y, RATE, 16000)], 16000)
        similarity = float(got @ (embedding / np.linalg.norm(embedding)))
        assert similarity == pytest.approx(fit.similarity_after, abs=2e-3)


@pytest.fixture(scope="module")
def scores(voice, fits, probe):
    """Mean Distill-MOS of held-out sentences: neutral, and in each fitted voice."""
    from ..mos import mos

    plain = voice.synthesize_texts(HELD_OUT[:4], SynthesisParams(seed=1))
    neutral = float(np.mean([mos(a, RATE) for a in plain]))
    voiced = []
    for _, fit, _ in fits:
        expr = Expression.create(voice=fit.transform, center_hz=probe.stats["f0_median_hz"])
        moved = []
        for audio in plain:
            stage = expr.stage(RATE)
            assert stage is not None
            moved.append(np.concatenate(feed_in_chunks(stage, audio)))
            assert len(moved[-1]) == len(audio)
        voiced.append(float(np.mean([mos(y, RATE) for y in moved])))
    return neutral, voiced


def test_a_registered_voice_sounds_about_as_clean_as_an_emotion(scores) -> None:
    neutral, voiced = scores
    assert np.mean(voiced) >= neutral - MAX_DROP, (neutral, voiced)


@pytest.mark.xfail(strict=True, reason="raising the pitch by PSOLA alone costs more on these")
def test_a_registered_voice_sounds_as_clean_as_neutral(scores) -> None:
    neutral, voiced = scores
    assert np.mean(voiced) >= neutral - TARGET_DROP, (neutral, voiced)


# -- streaming adaptation ---------------------------------------------------------------


def test_streamed_adaptation_keeps_length_moves_pitch_and_has_no_seams(reference) -> None:
    transform = VoiceTransform(f0_shift_st=4.0, formant_scale=1.1, tilt_db_per_octave=2.0)
    outs = feed_in_chunks(PsolaAdapter(transform, RATE, 88.0), reference)
    y = np.concatenate(outs)
    assert len(y) == len(reference)
    assert np.allclose(y, render(reference, transform, RATE, 88.0), atol=1e-6)
    moved = 12 * np.log2(yin_median(y, RATE) / yin_median(reference, RATE))
    assert abs(moved - 4.0) < 1.0  # semitones
    jumps = np.abs(np.diff(y))
    seams = np.cumsum([len(o) for o in outs if len(o)])[:-1] - 1
    assert jumps[seams].max() <= np.delete(jumps, seams).max()


def test_adapted_speech_stays_intelligible(voice):
    from ..judge import load_whisper, transcribe, wer
    from .sentences import SENTENCES

    judged = [s for s in SENTENCES if len(s.split()) > 3][:12]
    whisper = load_whisper()
    heard = []
    transform = VoiceTransform(f0_shift_st=5.0, formant_scale=1.12, tilt_db_per_octave=2.0)
    for audio in voice.synthesize_texts(judged, SynthesisParams(seed=3)):
        y = np.concatenate(feed_in_chunks(PsolaAdapter(transform, RATE, 88.0), audio))
        heard.append(transcribe(whisper, y, RATE))
    assert wer(judged, heard) <= 0.12, list(zip(judged, heard))
