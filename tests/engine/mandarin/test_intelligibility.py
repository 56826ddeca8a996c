"""The Mandarin model is understood: Whisper base (multilingual, offline, ``tests/judge_zh.py``)
transcribes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch

from voxlive.engine.mandarin.assets import find_assets
from voxlive.engine.mandarin.model import load_mandarin

from ...judge_zh import cer, transcribe_zh
from .phones import HANZI, SENTENCES, baker_symbols

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

pytestmark = pytest.mark.slow


def test_whisper_understands_the_mandarin_model(whisper_zh: WhisperModel) -> None:
    """The port alone, on hand-written symbols (no front end): it is understood."""
    zh = load_mandarin()
    mapper = find_assets().mapper
    heard = []
    for pinyin in SENTENCES:
        ids = torch.tensor([zh.table.encode(baker_symbols(pinyin, mapper))])
        audio = zh.vocoder(zh.acoustic.infer(ids, torch.tensor([ids.shape[1]])).mel)[0].numpy()
        heard.append(transcribe_zh(whisper_zh, audio, zh.sample_rate))
    assert cer(HANZI, heard) <= 0.15, heard
