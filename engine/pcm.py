"""Float audio to 16-bit PCM: the one conversion every writer of s16le audio uses.

Samples in [-1, 1] are scaled by 32767 and rounded, so ±1 map to ±32767 and 0 stays 0;
anything outside is clipped to the int16 range (-32768 … 32767), never wrapped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

__all__ = ["PCM16_SCALE", "pcm16", "pcm16_bytes", "write_wav"]

PCM16_SCALE: Final = 32767.0
"""Float sample 1.0 in 16-bit PCM."""


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as little-endian int16 (rounded, clipped)."""
    scaled = np.round(np.asarray(samples, np.float32) * PCM16_SCALE)
    return np.clip(scaled, -32768, 32767).astype("<i2")


def pcm16_bytes(samples: np.ndarray) -> bytes:
    """Float samples as ``s16le`` bytes (see :func:`pcm16`)."""
    return pcm16(samples).tobytes()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1] as a mono 16-bit PCM WAV file.

    Raises:
        OSError: the file cannot be written (soundfile's error is a ``RuntimeError``
            subclass for format problems).
    """
    import soundfile

    soundfile.write(str(path), pcm16(samples), sample_rate, subtype="PCM_16")
