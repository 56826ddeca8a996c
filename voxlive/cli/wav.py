"""Writing synthesized audio to WAV files (16-bit PCM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_wav"]


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1] as mono 16-bit PCM WAV.

    Raises:
        OSError: the file cannot be written.
    """
    import soundfile

    pcm = np.clip(np.round(np.asarray(samples, np.float32) * 32767.0), -32768, 32767)
    soundfile.write(str(path), pcm.astype(np.int16), sample_rate, subtype="PCM_16")
