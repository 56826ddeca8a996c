"""Streaming sample-rate conversion (windowed-sinc, exact rational polyphase).

Clients ask for 8–48 kHz; the voice speaks at 22.05 kHz. Each utterance gets a
:class:`StreamResampler`; feeding it chunk by chunk gives exactly the samples a
one-shot conversion of the joined audio gives, so seams stay seamless.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = ["FastResampler", "StreamResampler", "resample"]

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


_MAX_KERNEL = 1 << 21
"""Largest period matrix (entries) :class:`FastResampler` builds; beyond, it gathers."""


class FastResampler(StreamResampler):
    """A :class:`StreamResampler` that computes whole periods (``up`` outputs from
    ``down`` inputs) as one matrix product: several times faster, and equal to it to
    float rounding rather than bit for bit (which outputs go through the product depends
    on how the stream is cut). For signals that need speed more than seams that are
    exact to the bit (the watermark's own analysis and mark)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        super().__init__(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.kernel = None if self.passthrough else _period_kernel(in_rate, out_rate)

    def _emit(self, stop: int) -> np.ndarray:
        if self.kernel is None or stop <= self.produced:
            return super()._emit(stop)
        width = self.kernel.shape[0]
        # Whole periods m whose inputs [m·down − half, m·down − half + width) are buffered.
        m0 = max(-(-self.produced // self.up), -(-(self.base + self.half) // self.down))
        m1 = min(
            stop // self.up, (self.base + len(self.buffer) - width + self.half) // self.down + 1
        )
        if m1 <= m0:
            return super()._emit(stop)
        head = super()._emit(m0 * self.up)
        start = m0 * self.down - self.half - self.base
        rows = torch.from_numpy(self.buffer[start:]).as_strided((m1 - m0, width), (self.down, 1))
        body = (rows @ _torch_kernel(self.in_rate, self.out_rate)).reshape(-1).numpy()
        self.produced = m1 * self.up
        keep_from = (self.produced * self.down) // self.up - self.half - self.base
        if keep_from > 0:
            self.buffer = self.buffer[keep_from:]
            self.base += keep_from
        tail = super()._emit(stop)
        out: np.ndarray = np.concatenate([head, body.astype(np.float32), tail])
        return out


@functools.lru_cache(maxsize=16)
def _period_kernel(in_rate: int, out_rate: int) -> np.ndarray | None:
    """``[down + 2·half, up]``: column ``i`` holds output ``i``'s taps at its inputs'
    offsets within a period (None when it would be too large)."""
    r = StreamResampler(in_rate, out_rate)
    width = r.down + 2 * r.half
    if width * r.up > _MAX_KERNEL:
        return None
    kernel = np.zeros((width, r.up), np.float32)
    i = np.arange(r.up)
    first = (i * r.down) // r.up
    taps = r.table[(i * r.down) % r.up]  # [up, taps]
    for t in range(taps.shape[1]):
        kernel[first + t, i] = taps[:, t]
    kernel.setflags(write=False)
    return kernel


@functools.lru_cache(maxsize=16)
def _torch_kernel(in_rate: int, out_rate: int) -> torch.Tensor:
    kernel = _period_kernel(in_rate, out_rate)
    assert kernel is not None
    return torch.from_numpy(kernel.copy())


def resample(x: np.ndarray, in_rate: int, out_rate: int, *, fast: bool = False) -> np.ndarray:
    """One-shot conversion of a whole signal (``fast``: by :class:`FastResampler`)."""
    r = (FastResampler if fast else StreamResampler)(in_rate, out_rate)
    return np.concatenate([r.process(x), r.flush()])
