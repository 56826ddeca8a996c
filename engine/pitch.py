"""F0 by YIN (de Cheveigné & Kawahara 2002): the tracker every pitch measure here uses.

YIN's cumulative-mean-normalized difference rarely errs by an octave, where
WORLD's own trackers read the bundled voice several semitones too high
(see docs/performance.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRAME_PERIOD_MS", "f0_statistics", "yin_median", "yin_track"]

FRAME_PERIOD_MS = 5.0
"""Default YIN frame period (WORLD's, which the tests' reference vocoder shares)."""


def yin_track(
    x: np.ndarray,
    sample_rate: int,
    hop_s: float = FRAME_PERIOD_MS / 1000,
    fmin: float = 50.0,
    fmax: float = 500.0,
    voicing: float = 0.3,
) -> np.ndarray:
    """Per-frame F0 (Hz, 0 unvoiced) by YIN (de Cheveigné & Kawahara 2002).

    Frame ``i`` is centred at ``i * hop_s``, as WORLD's frames are. YIN's
    cumulative-mean-normalized difference rarely errs by an octave. A frame is
    voiced when its best dip is below ``voicing`` (and it is not near-silent).
    """
    x = np.asarray(x, np.float64)
    width, hop = int(0.04 * sample_rate), max(1, round(hop_s * sample_rate))
    tau_min, tau_max = int(sample_rate / fmax), min(int(sample_rate / fmin), width - 1)
    n_frames = len(x) // hop + 1
    padded = np.pad(x, (width // 2, width))
    starts = np.arange(n_frames) * hop
    frames = padded[starts[:, None] + np.arange(width)[None, :]]  # [n, w] centred frames
    power = (frames**2).mean(1)
    n_fft = 1 << int(np.ceil(np.log2(2 * width)))
    spec = np.fft.rfft(frames, n_fft)
    r = np.fft.irfft(spec * np.conj(spec), n_fft)[:, : tau_max + 1]  # [n, tau] autocorrelation
    cum = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames**2, axis=1)], 1)  # [n, w+1]
    taus = np.arange(tau_max + 1)
    d = cum[:, width - taus] + (cum[:, -1:] - cum[:, taus]) - 2 * r  # [n, tau] difference fn
    cmnd = d[:, 1:] * taus[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
    search = cmnd[:, tau_min - 1 :]  # taus tau_min .. tau_max
    rows = np.arange(n_frames)
    below = search < 0.15
    pick = np.where(below.any(1), below.argmax(1), search.argmin(1))
    for _ in range(8):  # walk down to the local minimum after the first dip
        nxt = np.minimum(pick + 1, search.shape[1] - 1)
        pick = np.where(search[rows, nxt] < search[rows, pick], nxt, pick)
    loud = power > 1e-3 * np.percentile(power, 95)
    voiced = (search[rows, pick] < voicing) & loud
    return np.where(voiced, sample_rate / (pick + tau_min), 0.0)


def yin_median(x: np.ndarray, sample_rate: int) -> float:
    """Median F0 (Hz) of the voiced frames by :func:`yin_track`; 0 if none."""
    f0 = yin_track(x, sample_rate, hop_s=0.01)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) >= 5 else 0.0


def f0_statistics(f0: np.ndarray) -> dict[str, float]:
    """Median (Hz), 10-90 % range (semitones) and voiced fraction of a contour."""
    voiced = f0[f0 > 0]
    if len(voiced) == 0:
        return {"f0_median_hz": 0.0, "f0_range_st": 0.0, "voiced_fraction": 0.0}
    lo, hi = np.percentile(voiced, [10, 90])
    return {
        "f0_median_hz": float(np.median(voiced)),
        "f0_range_st": float(12 * np.log2(hi / lo)),
        "voiced_fraction": float(len(voiced) / len(f0)),
    }
