"""Fitting a voice transform to a reference speaker (zero-shot voice adaptation).

The bundled voice has one speaker. To sound like a registered reference we
move it with the expressive stage itself (PSOLA, ``engine/psola.py``), so a
registered voice is rendered exactly as it was fitted: pitch level and range
from measured F0 statistics, then formant scale and spectral tilt chosen by a
search that maximizes the GE2E speaker encoder's cosine similarity between the
transformed probe sentence and the reference. PSOLA keeps the engine's own
waveform, so the search can afford a fine grid; all candidates are embedded as
one batch.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from .dsp import one_pole, shelf
from .pitch import f0_statistics, yin_median, yin_track
from .psola import PsolaAdapter
from .resample import resample
from .speaker import SpeakerEncoder
from .transform import VoiceTransform

__all__ = [
    "Fit",
    "Probe",
    "fit_transform",
    "long_term_spectrum",
    "render",
    "voice_statistics",
]

FORMANT_SCALES = tuple(round(0.88 + 0.03 * i, 2) for i in range(15))  # 0.88 … 1.30
TILTS_DB_PER_OCTAVE = (-2.0, 0.0, 2.0, 4.0, 6.0)
RANGE_BOUNDS = (0.95, 1.05)
"""How far the pitch range follows the reference's (a wider or narrower range costs quality)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The bundled voice saying a fixed sentence, measured once."""

    audio: np.ndarray
    """float32 samples at ``sample_rate``."""
    sample_rate: int
    stats: dict[str, float]
    """Its :func:`voice_statistics`."""

    @classmethod
    def from_audio(cls, audio: np.ndarray, sample_rate: int) -> Probe:
        """Raises: ValueError if the probe has no voiced speech."""
        stats = voice_statistics(audio, sample_rate)
        if stats["f0_median_hz"] <= 0:
            raise ValueError("the probe sentence has no voiced speech")
        return cls(np.asarray(audio, np.float32), sample_rate, stats)


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
    """F0 median (YIN, 10 ms frames), range and voiced fraction, and the long-term spectrum."""
    stats = f0_statistics(yin_track(audio, sample_rate))
    if stats["f0_median_hz"] > 0:
        stats["f0_median_hz"] = yin_median(audio, sample_rate)
    lts = long_term_spectrum(audio, sample_rate)
    return stats | {f"lts_db_{i:02d}": float(v) for i, v in enumerate(lts)}


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


def render(
    audio: np.ndarray, transform: VoiceTransform, sample_rate: int, center_hz: float
) -> np.ndarray:
    """Whole ``audio`` through the stage with ``transform`` (as an utterance is rendered)."""
    stage = PsolaAdapter(transform, sample_rate, center_hz)
    return np.concatenate([stage.process(audio), stage.flush()])


def _tilted(y: np.ndarray, tilt_db_per_octave: float, sample_rate: int) -> np.ndarray:
    """``y`` through the stage's tilt shelf (what the stage does after its grains)."""
    coeffs = shelf(tilt_db_per_octave, sample_rate)
    if coeffs is None:
        return y
    b0, b1, a1 = coeffs
    x = np.asarray(y, np.float64)
    v = b0 * x + b1 * np.concatenate([[0.0], x[:-1]])
    return one_pole(v, -a1, 0.0).astype(np.float32)


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
    center = probe.stats["f0_median_hz"]
    shift = 12 * float(np.log2(ref_median / center))
    ratio = reference_stats["f0_range_st"] / max(probe.stats["f0_range_st"], 1e-3)
    # Ranges measured on different sentences differ by their intonation as much as by
    # speaker, so the range follows only partly, within bounds.
    spread = float(np.clip(ratio, *RANGE_BOUNDS))
    candidates = [VoiceTransform()] + [
        VoiceTransform(
            f0_shift_st=shift, f0_range=spread, formant_scale=fs, tilt_db_per_octave=tilt
        )
        for fs, tilt in itertools.product(FORMANT_SCALES, TILTS_DB_PER_OCTAVE)
    ]
    sr = probe.sample_rate
    # The tilt is a filter after the grains: one PSOLA pass per formant scale serves all tilts.
    untilted = {
        fs: render(
            probe.audio,
            VoiceTransform(f0_shift_st=shift, f0_range=spread, formant_scale=fs),
            sr,
            center,
        )
        for fs in FORMANT_SCALES
    }
    clips = [resample(probe.audio, sr, 16000)] + [
        resample(_tilted(untilted[c.formant_scale], c.tilt_db_per_octave, sr), sr, 16000)
        for c in candidates[1:]
    ]
    embeddings = encoder.embed_batch(clips, 16000)  # [n, 256], L2-normalized
    sims = embeddings @ (reference_embedding / np.linalg.norm(reference_embedding))
    best = int(np.argmax(sims[1:])) + 1
    return Fit(candidates[best], float(sims[0]), float(sims[best]), time.perf_counter() - t0)
