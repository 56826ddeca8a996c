"""A speech-quality judge: Distill-MOS predicts a listener's mean opinion score (1–5).

Used by ``voxlive bench emotions``, ``voxlive say --demo-grid`` and the tests; it is
optional at run time (:func:`available`).

``distillmos`` (its weights ship inside the wheel) imports ``torchaudio`` at module level,
only for its own command line. torchaudio is never installed here (its wheel is a CUDA
build that breaks beside torch's CPU build), so a stand-in module takes its place while
distillmos is imported, and audio is resampled with the engine's own resampler.

Install: ``pip install --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
import warnings
from functools import cache
from typing import Any, Final

import numpy as np

__all__ = ["INSTALL_HINT", "MOS_SAMPLE_RATE", "MIN_SECONDS", "available", "load_mos", "mos"]

MOS_SAMPLE_RATE: Final = 16_000
MIN_SECONDS: Final = 7.68
"""The model's input length; shorter clips are padded with silence (compare like with like)."""


INSTALL_HINT: Final = "pip install --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0"


def available() -> bool:
    """Whether the judge's packages are installed (found without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("distillmos", "xls_r_sqa"))


@cache
def load_mos() -> Any:
    """The Distill-MOS model on CPU, in eval mode (loaded once).

    Raises:
        ImportError: distillmos or xls-r-sqa is not installed.
    """
    stand_in = "torchaudio" not in sys.modules
    if stand_in:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import distillmos

            with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded from
                model = distillmos.ConvTransformerSQAModel()
    finally:
        if stand_in:
            del sys.modules["torchaudio"]
    model.eval()
    return model


def mos(audio: np.ndarray, sample_rate: int) -> float:
    """Predicted MOS of one mono clip (float samples in [-1, 1] at ``sample_rate``).

    Raises:
        ValueError: the audio is empty or not 1-D.
    """
    import torch

    from voxlive.engine.resample import resample

    x = np.asarray(audio, np.float32)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"need non-empty mono audio, got shape {x.shape}")
    if sample_rate != MOS_SAMPLE_RATE:
        x = resample(x, sample_rate, MOS_SAMPLE_RATE)
    model = load_mos()
    with torch.inference_mode():
        return float(model(torch.from_numpy(np.ascontiguousarray(x))[None]).item())
