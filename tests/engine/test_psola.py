"""The PSOLA stage on the bundled voice: length, seams, pitch, range, formants, level, quality."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voxlive.engine.psola import PsolaAdapter
from voxlive.engine.transform import LIMIT_KNEE, VoiceTransform
from voxlive.engine.voice import SynthesisParams

from .stage_feed import feed_in_chunks

RATE = 22050
CENTER = 88.0
TEXT = (
    "The old library at the end of the street opens early in the morning, "
    "and the air smells of paper."
)


@pytest.fixture(scope="module")
def speech(voice):
    (audio,) = voice.synthesize_texts([TEXT], SynthesisParams(seed=4))
    return audio


def _whole(transform, audio):
    adapter = PsolaAdapter(transform, RATE, CENTER)
    return np.concatenate([adapter.process(audio), adapter.flush()])


def _pyin(audio):
    """Voiced F0 frames by an independent tracker (librosa's pYIN), octave errors folded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import librosa
    f0, voiced, _ = librosa.pyin(audio, fmin=50, fmax=400, sr=RATE, frame_length=2048)
    f0 = f0[voiced & np.isfinite(f0)]
    d = np.log2(f0) - np.median(np.log2(f0))
    return f0 / 2.0 ** np.where(np.abs(d) > 1.1, np.round(d), 0.0)


def _centroid(audio):
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


MOVES = VoiceTransform(f0_shift_st=3.0, f0_range=1.3, formant_scale=1.08, tilt_db_per_octave=1.0)


def test_length_is_kept_in_every_chunking(speech) -> None:
    for sizes in [(4096,), (1000, 7, 30000), (len(speech),)]:
        y = np.concatenate(feed_in_chunks(PsolaAdapter(MOVES, RATE, CENTER), speech, sizes))
        assert len(y) == len(speech)


def test_streamed_output_equals_whole_output(speech) -> None:
    transform = VoiceTransform(
        f0_shift_st=2.0, f0_range=1.3, formant_scale=1.1, tilt_db_per_octave=-1.5,
        gain_db=3.0, breathiness=0.3, end_contour_st=-2.0,
    )  # fmt: skip
    whole = PsolaAdapter(transform, RATE, CENTER)
    whole.phrase(2000, len(speech) - 3000)
    y = np.concatenate([whole.process(speech), whole.flush()])
    streamed = PsolaAdapter(transform, RATE, CENTER)
    streamed.phrase(2000, len(speech) - 3000)
    outs = feed_in_chunks(streamed, speech, (777, 4096, 12345))
    assert np.abs(np.concatenate(outs) - y).max() < 1e-5


def test_first_chunk_gives_audio_with_a_short_look_ahead(speech) -> None:
    first = int(0.186 * RATE)  # the engine's first chunk
    out = PsolaAdapter(MOVES, RATE, CENTER).process(speech[:first])
    assert first - len(out) <= int(0.06 * RATE)


def test_a_pitch_shift_is_measured_by_an_independent_tracker(speech) -> None:
    before, after = _pyin(speech), _pyin(_whole(VoiceTransform(f0_shift_st=4.0), speech))
    moved = 12 * np.log2(np.median(after) / np.median(before))
    assert abs(moved - 4.0) <= 0.7, moved


def test_a_wider_range_widens_the_measured_range(speech) -> None:
    def spread(f0):
        lo, hi = np.percentile(f0, [10, 90])
        return 12 * np.log2(hi / lo)

    wide = _pyin(_whole(VoiceTransform(f0_range=1.5), speech))
    assert spread(wide) > spread(_pyin(speech)) + 2.0


def test_identity_changes_nothing_and_a_null_move_almost_nothing(speech) -> None:
    identity = np.concatenate(feed_in_chunks(PsolaAdapter(VoiceTransform(), RATE, CENTER), speech))
    assert np.array_equal(identity, speech)
    # Every grain cut and laid down again where it was: the windows sum to one.
    null = _whole(VoiceTransform(f0_shift_st=1e-9), speech)
    assert np.abs(null - speech).max() < 1e-3


def test_formant_scale_moves_the_spectral_centroid(speech) -> None:
    base = _centroid(speech)
    assert _centroid(_whole(VoiceTransform(formant_scale=1.15), speech)) > base * 1.05
    assert _centroid(_whole(VoiceTransform(formant_scale=0.87), speech)) < base * 0.95


def test_gain_is_exact_below_the_limiter(speech) -> None:
    quiet = speech * np.float32(0.5 * LIMIT_KNEE / np.abs(speech).max() / 10 ** (6 / 20))
    loud = _whole(VoiceTransform(gain_db=6.0), quiet)
    np.testing.assert_allclose(loud, quiet * np.float32(10 ** (6 / 20)), rtol=1e-6)


@pytest.mark.slow
def test_happy_sounds_as_clean_as_neutral(voice) -> None:
    from voxlive.bench.stages import HELD_OUT
    from voxlive.engine.expression import Expression

    from ..mos import mos

    texts = HELD_OUT[:4]
    neutral = voice.synthesize_texts(texts, SynthesisParams(seed=1))
    transform = Expression.create(emotion="happy", intensity=1.0, center_hz=CENTER).transform
    happy = [_whole(transform, a) for a in neutral]
    before = np.mean([mos(a, RATE) for a in neutral])
    after = np.mean([mos(a, RATE) for a in happy])
    assert after >= before - 0.15, (before, after)


@pytest.mark.parametrize("seed", [60, 61, 62])
def test_garbage_in_never_breaks_the_stage_and_keeps_its_length(tiny_voice, seed) -> None:
    # A random-weight voice's buzz (seed 60 once put two pitch marks on one sample),
    # sudden pitch jumps, clicks and noise: whatever comes in, every emotion's stage
    # hands back as many samples, finite, and never raises.
    from voxlive.engine.emotion import EMOTIONS
    from voxlive.engine.expression import Expression

    rng = np.random.default_rng(seed)
    text = "Hello chat, welcome back!"
    (buzz,) = tiny_voice.synthesize_texts([text], SynthesisParams(seed=seed))
    t = np.arange(RATE) / RATE
    jumps = np.sin(2 * np.pi * np.where(t < 0.5, 90.0, 380.0) * t) * 0.5
    clicks = np.zeros(RATE // 2)
    clicks[:: int(rng.integers(40, 400))] = 0.9
    noise = rng.normal(0, 0.3, RATE // 3)
    for audio in (buzz, np.concatenate([buzz, jumps, clicks, noise]).astype(np.float32)):
        for emotion in EMOTIONS:
            for k in (0.7, 1.0):
                expression = Expression.create(emotion=emotion, intensity=k, center_hz=CENTER)
                stage = expression.stage(RATE)
                if stage is None:
                    continue
                out = np.concatenate(feed_in_chunks(stage, audio))
                assert len(out) == len(audio) and np.isfinite(out).all(), (emotion, k)
