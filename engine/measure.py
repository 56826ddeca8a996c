"""Prosody measured on audio: what a listener would notice, as numbers.

Used by the emotion tests and ``voxlive bench emotions`` to check that each
emotion moves pitch, range, rate and loudness the way its profile says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .pitch import yin_track

__all__ = ["ProsodyMeasure", "measure"]

FRAME_S = 0.02
ACTIVE_DB = 35.0
"""Frames within this many dB of the loudest frame count as speech."""


@dataclass(frozen=True, slots=True)
class ProsodyMeasure:
    f0_mean_st: float
    """Mean pitch of voiced frames, semitones above 100 Hz."""
    f0_range_st: float
    """10–90 % pitch range of voiced frames, semitones."""
    rate_phones_s: float
    """Phonemes per second of speech (silences excluded: articulation rate)."""
    rms_db: float
    """Loudness of the speech frames, dB re full scale."""
    speech_s: float
    pause_s: float
    """Silence between the first and the last speech frame."""
    octave_errors: float = 0.0
    """Fraction of voiced frames the tracker read an octave (or more) off the utterance's
    median: period doubling or halving, as a pitch-shifting stage can leave behind."""

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


def measure(audio: np.ndarray, sample_rate: int, n_phones: int) -> ProsodyMeasure:
    """Measure one utterance that speaks ``n_phones`` phonemes.

    Raises:
        ValueError: no speech (or no voiced frame) in ``audio``.
    """
    x = np.asarray(audio, np.float64)
    hop = int(FRAME_S * sample_rate)
    n = len(x) // hop
    if n == 0:
        raise ValueError("audio too short to measure")
    power = (x[: n * hop].reshape(n, hop) ** 2).mean(1)
    db = 10 * np.log10(np.maximum(power, 1e-12))
    active = db > db.max() - ACTIVE_DB
    if not active.any():
        raise ValueError("no speech in audio")
    idx = np.flatnonzero(active)
    span = idx[-1] - idx[0] + 1
    voiced, octave_errors = _fold_octaves(yin_track(x, sample_rate, hop_s=0.01, fmin=40.0))
    if len(voiced) < 5:
        raise ValueError("no voiced speech in audio")
    st = 12 * np.log2(voiced / 100.0)
    lo, hi = np.percentile(st, [10, 90])
    speech_s = active.sum() * FRAME_S
    return ProsodyMeasure(
        f0_mean_st=float(st.mean()),
        f0_range_st=float(hi - lo),
        rate_phones_s=n_phones / speech_s,
        rms_db=float(10 * np.log10(power[active].mean())),
        speech_s=float(speech_s),
        pause_s=float((span - active.sum()) * FRAME_S),
        octave_errors=octave_errors,
    )


def _fold_octaves(f0: np.ndarray, limit: float = 0.8) -> tuple[np.ndarray, float]:
    """Voiced F0 values with octave errors folded back toward their median, and the
    fraction of them that were folded.

    The bundled voice is low (~88 Hz) with a strong second harmonic: every
    tracker reads some of its frames (and more of a WORLD resynthesis's) an
    octave up. A frame more than ``limit`` octaves from the utterance's median
    is halved or doubled.
    """
    voiced = f0[f0 > 0]
    if len(voiced) < 5:
        return voiced, 0.0
    d = np.log2(voiced) - np.median(np.log2(voiced))
    octaves = np.where(np.abs(d) > limit, np.round(d), 0.0)
    return voiced / 2.0**octaves, float(np.mean(octaves != 0))
