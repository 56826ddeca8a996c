"""Speech the fast lane can make without a model: espeak-ng's (installed by .ci/run)."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile as sf


def espeak(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: float32 mono, and its rate."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, int(rate)
