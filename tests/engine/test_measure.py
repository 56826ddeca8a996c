"""Prosody measures on signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.measure import measure

RATE = 22050


def glide(hz: np.ndarray) -> np.ndarray:
    """A buzz following the per-sample frequencies ``hz`` (with harmonics, like a voice)."""
    phase = 2 * np.pi * np.cumsum(hz) / RATE
    return (0.3 * np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.05 * np.sin(3 * phase)).astype(
        np.float32
    )


def test_a_steady_voice_has_no_octave_errors_and_its_pitch() -> None:
    m = measure(glide(np.full(RATE * 2, 100.0)), RATE, 20)
    assert m.octave_errors == 0.0
    assert abs(m.f0_mean_st) < 1.0 and m.f0_range_st < 0.5


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_stretches_an_octave_up_are_counted_and_folded_back(share: float) -> None:
    n = RATE * 2
    hz = np.full(n, 100.0)
    hz[: int(share * n)] = 200.0  # a stretch read (here: made) an octave off
    m = measure(glide(hz), RATE, 20)
    assert abs(m.octave_errors - share) < 0.05
    assert abs(m.f0_mean_st) < 1.0  # folded: still about 100 Hz, not 150 or 200
