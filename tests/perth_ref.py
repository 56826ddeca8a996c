"""resemble-perth's own watermarker, imported with torch stand-ins for what it needs.

The package's code imports ``torchaudio.transforms`` (never installed here: its wheel
is a CUDA build that breaks beside torch's CPU build) and ``pkg_resources``. Its
``Spectrogram`` and ``InverseSpectrogram`` are a centred, reflect-padded STFT and its
inverse, which torch does itself; ``TimeStretch`` only holds a buffer at inference.
The reference for ``tests/engine/test_watermark.py``'s port parity; nothing in the
product imports the package.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import torch


class _Spectrogram(torch.nn.Module):
    def __init__(
        self,
        n_fft: int,
        win_length: int,
        hop_length: int,
        window_fn: Callable[[int], torch.Tensor],
        power: float | None = None,
        normalized: bool = False,
    ) -> None:
        super().__init__()
        assert power is None and not normalized
        self.n_fft, self.hop = n_fft, hop_length
        self.register_buffer("window", window_fn(win_length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            x,
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )


class _InverseSpectrogram(_Spectrogram):
    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True)


class _TimeStretch(torch.nn.Module):
    def __init__(self, n_freq: int, hop_length: int) -> None:
        super().__init__()
        self.register_buffer("phase_advance", torch.zeros(n_freq, 1))


def _resource_filename(package: str, name: str) -> str:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return os.path.join(list(spec.submodule_search_locations)[0], name)


@functools.cache
def package_watermarker() -> Any:
    """The package's ``PerthImplicitWatermarker`` on the CPU."""
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Spectrogram = _Spectrogram  # type: ignore[attr-defined]
    transforms.InverseSpectrogram = _InverseSpectrogram  # type: ignore[attr-defined]
    transforms.TimeStretch = _TimeStretch  # type: ignore[attr-defined]
    torchaudio = types.ModuleType("torchaudio")
    torchaudio.transforms = transforms  # type: ignore[attr-defined]
    resources = types.ModuleType("pkg_resources")
    resources.resource_filename = _resource_filename  # type: ignore[attr-defined]
    stand_ins = {
        "torchaudio": torchaudio,
        "torchaudio.transforms": transforms,
        "pkg_resources": resources,
    }
    added = [name for name in stand_ins if name not in sys.modules]
    sys.modules.update({name: stand_ins[name] for name in added})
    try:
        from perth.perth_net.perth_net_implicit.perth_watermarker import (
            PerthImplicitWatermarker,
        )
    finally:
        for name in added:
            del sys.modules[name]
    return PerthImplicitWatermarker(device="cpu")
