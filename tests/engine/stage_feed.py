"""Feeding a streaming stage in growing chunks, as the engine does, for tests."""

from __future__ import annotations

import numpy as np


def feed_in_chunks(adapter, audio: np.ndarray, sizes=(4096, 8192, 16384, 32768)) -> list:
    """Every output of ``adapter`` for ``audio`` fed in chunks of ``sizes``, then flushed."""
    outs, i, k = [], 0, 0
    while i < len(audio):
        n = sizes[min(k, len(sizes) - 1)]
        outs.append(adapter.process(audio[i : i + n]))
        i, k = i + n, k + 1
    outs.append(adapter.flush())
    return outs
