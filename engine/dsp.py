"""Small signal-processing pieces of the expressive stage: interpolation, noise, a tilt shelf.

Pure numpy, each a fixed function of its inputs (the noise of the absolute sample
index), so a stage that feeds them block by block gets the same samples as whole.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

__all__ = ["cubic", "noise", "one_pole", "shelf"]

SHELF_MID_HZ: Final = 2000.0
"""Where the tilt shelf has half its gain."""
TILT_OCTAVES: Final = 2.0
"""The shelf's full gain is the tilt over this many octaves above 500 Hz."""


def cubic(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation of ``x`` at fractional indices (exact on integers)."""
    i = np.clip(np.floor(pos).astype(np.int64), 1, len(x) - 3)
    t = pos - i
    p0, p1, p2, p3 = x[i - 1], x[i], x[i + 1], x[i + 2]
    cubic = 3 * (p1 - p2) + p3 - p0
    out: np.ndarray = p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * cubic))
    return out


def noise(n: np.ndarray) -> np.ndarray:
    """High-passed white noise, a fixed function of the absolute sample index."""
    a = (n.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    b = ((n - 1).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    scale = 2.0**-53
    u, v = a.astype(np.float64) * scale, b.astype(np.float64) * scale
    return (u - v) * math.sqrt(6.0)  # first difference of uniform noise: unit variance


def shelf(tilt_db_per_octave: float, sample_rate: int) -> tuple[float, float, float] | None:
    """First-order high shelf (b0, b1, a1) with the tilt's gain over the upper octaves."""
    if not tilt_db_per_octave:
        return None
    g = 10 ** (tilt_db_per_octave * TILT_OCTAVES / 20)
    # Bilinear transform of (s/wz + 1)/(s/wp + 1), prewarped at the mid frequency.
    k = math.tan(math.pi * SHELF_MID_HZ / sample_rate)
    wz, wp = k / math.sqrt(g), k * math.sqrt(g)
    a0 = 1 + 1 / wp
    return (1 + 1 / wz) / a0, (1 - 1 / wz) / a0, (1 - 1 / wp) / a0


def one_pole(v: np.ndarray, a: float, y0: float, block: int = 64) -> np.ndarray:
    """y[n] = v[n] + a·y[n−1], from y[−1] = y0, vectorized by blocks."""
    n = len(v)
    blocks = -(-n // block)
    padded = np.pad(v, (0, blocks * block - n)).reshape(blocks, block)
    powers = a ** np.arange(block)
    lags = np.arange(block)[:, None] - np.arange(block)[None, :]
    kernel = np.where(lags >= 0, a ** np.maximum(lags, 0), 0.0)  # [block, block]
    # Each block from a zero start. einsum's own loop, not BLAS: a BLAS call would wake
    # OpenBLAS's worker threads, whose spinning slows the engine's convolutions on the
    # same cores (docs/performance.md).
    local = np.einsum("bj,kj->bk", padded, kernel)
    out = np.empty_like(padded)
    carry = y0
    for i in range(blocks):
        out[i] = local[i] + carry * a * powers
        carry = float(out[i, -1])
    return out.reshape(-1)[:n]
