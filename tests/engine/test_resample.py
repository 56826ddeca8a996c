"""Streaming resampler: chunked equals one-shot, and the result is the right signal."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.resample import StreamResampler, resample

RATE = 22050


def tone(rate: int, seconds: float, freqs=(440.0, 3000.0)) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return sum(0.3 * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)


@pytest.mark.parametrize("out_rate", [8000, 16000, 24000, 44100, 48000])
def test_chunked_conversion_equals_one_shot(out_rate) -> None:
    x = tone(RATE, 0.5)
    whole = resample(x, RATE, out_rate)
    r = StreamResampler(RATE, out_rate)
    rng = np.random.default_rng(1)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 2000))
        parts.append(r.process(x[i : i + n]))
        i += n
    parts.append(r.flush())
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("out_rate", [16000, 24000, 48000])
def test_converted_tone_matches_the_ideal_tone(out_rate) -> None:
    y = resample(tone(RATE, 1.0), RATE, out_rate)
    assert len(y) == out_rate
    ideal = tone(out_rate, 1.0)
    mid = slice(out_rate // 10, out_rate * 9 // 10)  # away from the edges
    err = np.sum((y[mid] - ideal[mid]) ** 2) / np.sum(ideal[mid] ** 2)
    assert 10 * np.log10(1 / err) > 40.0


def test_downsampling_removes_what_the_new_rate_cannot_hold() -> None:
    y = resample(tone(RATE, 1.0, freqs=(6000.0,)), RATE, 8000)  # above 4 kHz Nyquist
    assert np.sqrt(np.mean(y[800:-800] ** 2)) < 0.01


def test_same_rate_is_passthrough() -> None:
    x = tone(RATE, 0.1)
    assert np.array_equal(resample(x, RATE, RATE), x)


def test_bad_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16000)
