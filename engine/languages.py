"""Placeholder language-run splitter (replaced by the real one)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Run", "split_runs"]


@dataclass(frozen=True, slots=True)
class Run:
    lang: Literal["zh", "en"]
    text: str


def split_runs(text: str) -> list[Run]:
    runs: list[Run] = []
    for piece in re.split(r"([\u3400-\u9fff\uf900-\ufaff，。！？、]+)", text):
        if not piece.strip():
            continue
        lang: Literal["zh", "en"] = "zh" if re.search(r"[\u3400-\u9fff]", piece) else "en"
        runs.append(Run(lang, piece.strip()))
    return runs
