"""Streaming sample-rate conversion (windowed-sinc, exact rational polyphase).

Clients ask for 8–48 kHz; the voice speaks at 22.05 kHz. Each utterance gets a
:class:`StreamResampler`; feeding it chunk by chunk gives exactly the samples a
one-shot conversion of the joined audio gives, so seams stay seamless.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["StreamResampler", "resample"]

_ZERO_CROSSINGS = 12
_KAISER_BETA = 8.6


class StreamResampler:
    """Convert a stream of float32 samples from ``in_rate`` to ``out_rate``.

    Raises:
        ValueError: a rate is not positive.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
        g = math.gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g  # t_k = k * down / up input samples
        cutoff = min(1.0, out_rate / in_rate)  # of the input Nyquist band
        self.half = math.ceil(_ZERO_CROSSINGS / cutoff)
        taps = np.arange(-self.half, self.half + 1)  # [taps]
        frac = np.arange(self.up)[:, None] / self.up  # [up, 1] phase of each output
        x = taps[None, :] - frac  # [up, taps] distance input sample → output time
        window = np.kaiser(2 * self.half + 3, _KAISER_BETA)
        w = np.interp(x, np.arange(-self.half - 1, self.half + 2), window)
        self.table = (cutoff * np.sinc(cutoff * x) * w).astype(np.float32)  # [up, taps]
        self.buffer = np.zeros(0, np.float32)
        self.base = 0  # absolute input index of buffer[0]
        self.received = 0  # input samples so far
        self.produced = 0  # output samples so far
        self.passthrough = in_rate == out_rate

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples; returns the output samples now fully determined."""
        x = np.asarray(x, np.float32)
        self.received += len(x)
        if self.passthrough:
            self.produced += len(x)
            return x
        self.buffer = np.concatenate([self.buffer, x])
        # Output k needs inputs up to floor(k * down / up) + half.
        last = ((self.received - self.half - 1) * self.up) // self.down
        return self._emit(last + 1)

    def flush(self) -> np.ndarray:
        """End of input: the remaining output samples (zero beyond the end)."""
        if self.passthrough:
            return np.zeros(0, np.float32)
        total = -(-self.received * self.up // self.down)  # ceil(received * out / in)
        self.buffer = np.concatenate([self.buffer, np.zeros(self.half + 1, np.float32)])
        return self._emit(total)

    def _emit(self, stop: int) -> np.ndarray:
        k = np.arange(self.produced, max(stop, self.produced))
        if len(k) == 0:
            return np.zeros(0, np.float32)
        first = (k * self.down) // self.up  # input index at or before each output time
        idx = first[:, None] + np.arange(-self.half, self.half + 1)[None, :] - self.base
        valid = idx >= 0  # before the stream start: zeros
        taps = np.where(valid, self.buffer[np.clip(idx, 0, None)], 0.0)
        y = np.einsum("kt,kt->k", taps, self.table[(k * self.down) % self.up])
        self.produced = int(k[-1]) + 1
        keep_from = (self.produced * self.down) // self.up - self.half - self.base
        if keep_from > 0:
            self.buffer = self.buffer[keep_from:]
            self.base += keep_from
        out: np.ndarray = y.astype(np.float32)
        return out


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot conversion of a whole signal."""
    r = StreamResampler(in_rate, out_rate)
    return np.concatenate([r.process(x), r.flush()])
