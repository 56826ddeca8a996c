"""Fitting a voice transform to a reference speaker (zero-shot voice adaptation).

The bundled voice has one speaker. To sound like a registered reference we
move it with WORLD (``engine/world.py``): pitch level and range from measured
F0 statistics, then formant scale and spectral tilt chosen by a small search
that maximizes the GE2E speaker encoder's cosine similarity between the
transformed probe sentence and the reference. All candidates are synthesized
and embedded as one batch, so the search costs about one second on CPU.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from .resample import resample
from .speaker import SpeakerEncoder
from .world import (
    Analysis,
    VoiceTransform,
    analyze,
    apply,
    f0_statistics,
    synthesize,
    track_f0,
    yin_median,
)

__all__ = ["Fit", "Probe", "fit_transform", "long_term_spectrum", "voice_statistics"]

FORMANT_SCALES = (0.88, 0.94, 1.0, 1.06, 1.12, 1.18, 1.24)
TILTS_DB_PER_OCTAVE = (-2.0, 1.5, 5.0)


@dataclass(frozen=True, slots=True)
class Probe:
    """The bundled voice saying a fixed sentence, analyzed once."""

    analysis: Analysis
    stats: dict[str, float]

    @classmethod
    def from_audio(cls, audio: np.ndarray, sample_rate: int) -> Probe:
        """Raises: ValueError if the probe has no voiced speech."""
        f0 = track_f0(audio, sample_rate)
        stats = _statistics(audio, sample_rate, f0)
        if stats["f0_median_hz"] <= 0:
            raise ValueError("the probe sentence has no voiced speech")
        return cls(analyze(audio, sample_rate, f0), stats)


@dataclass(frozen=True, slots=True)
class Fit:
    """The chosen transform and what it achieved."""

    transform: VoiceTransform
    similarity_before: float
    """Cosine similarity of the untransformed probe to the reference."""
    similarity_after: float
    seconds: float
    """Wall time of the search."""


def voice_statistics(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """F0 median, range and voiced fraction of a reference clip."""
    return _statistics(audio, sample_rate, track_f0(audio, sample_rate))


LTS_BANDS = 16
"""Bands of the long-term spectrum, log-spaced from 80 Hz to 7.6 kHz."""


def long_term_spectrum(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean level (dB, relative to the loudest band) of the speech in ``LTS_BANDS`` bands.

    A speaker's long-term spectrum carries vocal effort and timbre; frames
    40 dB below the loudest are left out so pauses do not count.
    """
    x = np.asarray(audio, np.float64)
    width = int(0.03 * sample_rate)
    if len(x) < width:
        return np.zeros(LTS_BANDS)
    frames = x[: len(x) // width * width].reshape(-1, width) * np.hanning(width)  # [n, w]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [n, bins]
    energy = power.sum(1)
    power = power[energy > energy.max() * 1e-4]
    freqs = np.fft.rfftfreq(width, 1 / sample_rate)
    edges = np.geomspace(80.0, min(7600.0, sample_rate / 2 - 1), LTS_BANDS + 1)
    bands = np.array(
        [power[:, (freqs >= lo) & (freqs < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    )
    db: np.ndarray = 10 * np.log10(np.maximum(bands, 1e-20))
    relative: np.ndarray = db - db.max()
    return relative


def _statistics(audio: np.ndarray, sample_rate: int, f0: np.ndarray) -> dict[str, float]:
    """Range and voicing from the WORLD contour; the median from YIN.

    Measured on the bundled voice, harvest's median reads 1-2 semitones above
    pYIN's while YIN's stays within ~1.2; the level drives the pitch shift.
    """
    stats = f0_statistics(f0)
    if stats["f0_median_hz"] > 0:
        stats["f0_median_hz"] = yin_median(audio, sample_rate)
    lts = long_term_spectrum(audio, sample_rate)
    stats |= {f"lts_db_{i:02d}": float(v) for i, v in enumerate(lts)}
    return stats


def fit_transform(
    reference_embedding: np.ndarray,
    reference_stats: dict[str, float],
    probe: Probe,
    encoder: SpeakerEncoder,
) -> Fit:
    """Choose the transform that makes the probe sound most like the reference.

    Pitch level and range come from the F0 statistics (they are what the
    speaker encoder is least sensitive to, yet listeners hear first); formant
    scale and tilt from a grid search on encoder similarity.

    Raises:
        ValueError: the reference has no voiced speech.
    """
    t0 = time.perf_counter()
    ref_median = reference_stats.get("f0_median_hz", 0.0)
    if ref_median <= 0:
        raise ValueError("the reference has no voiced speech to fit pitch to")
    shift = 12 * float(np.log2(ref_median / probe.stats["f0_median_hz"]))
    ratio = reference_stats["f0_range_st"] / max(probe.stats["f0_range_st"], 1e-3)
    # Ranges measured on different sentences differ by their intonation as much as by
    # speaker, so the range follows only partly, within bounds.
    spread = float(np.clip(ratio, 0.75, 1.35))
    candidates = [VoiceTransform()] + [
        VoiceTransform(
            f0_shift_st=shift, f0_range=spread, formant_scale=fs, tilt_db_per_octave=tilt
        )
        for fs, tilt in itertools.product(FORMANT_SCALES, TILTS_DB_PER_OCTAVE)
    ]
    sr = probe.analysis.sample_rate
    clips = [resample(synthesize(apply(probe.analysis, c)), sr, 16000) for c in candidates]
    embeddings = encoder.embed_batch(clips, 16000)  # [n, 256], L2-normalized
    sims = embeddings @ (reference_embedding / np.linalg.norm(reference_embedding))
    best = int(np.argmax(sims[1:])) + 1
    return Fit(candidates[best], float(sims[0]), float(sims[best]), time.perf_counter() - t0)
