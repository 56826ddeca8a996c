"""Symbol sequences for the Mandarin tests, laid out as the Baker processor lays them out.

``sil``, then each syllable as initial + toned final (``^`` for a zero initial), ``#0``
between syllables, ``sil`` and ``eos`` at the end. Pinyin is split with the voice's own
``pinyin_dict`` (in ``baker_mapper.json``); tests only: not a front end.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["HANZI", "LONG", "SENTENCES", "baker_symbols"]

# Short sentences in tone-numbered pinyin (你好 / 我是中国人 / 今天天气很好 /
# 欢迎使用语音合成系统 / 北京欢迎你).
SENTENCES = (
    "ni3 hao3",
    "wo3 shi4 zhong1 guo2 ren2",
    "jin1 tian1 tian1 qi4 hen3 hao3",
    "huan1 ying2 shi3 yong4 yu3 yin1 he2 cheng2 xi4 tong3",
    "bei3 jing1 huan1 ying2 ni3",
)
HANZI = ("你好", "我是中国人", "今天天气很好", "欢迎使用语音合成系统", "北京欢迎你")
"""The characters of each of ``SENTENCES``."""
LONG = "jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 yi4 qi3 qu4 gong1 yuan2 san4 bu4"
"""今天天气很好我们一起去公园散步: the 15-character sentence speed is measured on."""


def baker_symbols(pinyin: str, mapper: Path) -> list[str]:
    """``"ni3 hao3"`` → ``["sil", "n", "i3", "#0", "h", "ao3", "sil", "eos"]``."""
    with open(mapper, encoding="utf-8") as f:
        table = json.load(f)["pinyin_dict"]
    out = ["sil"]
    for i, syllable in enumerate(pinyin.split()):
        initial, final = table[syllable[:-1]]
        if i:
            out.append("#0")
        out += [initial, final + syllable[-1]]
    return out + ["sil", "eos"]
