"""Mandarin tone changes in connected speech, applied to TONE3 pinyin (``hao3``).

* 不 is bu4, but bu2 before a fourth tone (不对 bu2 dui4).
* 一 is yi1 alone, at a phrase end, in digit strings, after 第 and before 月 (一月); yi5 between
  a repeated verb (看一看); otherwise yi2 before a fourth tone (一个) and yi4 before the others
  (一天 yi4 tian1).
* Third tone before third tone becomes second (你好 ni2 hao3). Inside a three-syllable word the
  word's structure decides: 2+1 (展览|馆) -> 2 2 3, 1+2 (小|老虎) -> 3 2 3. Across words it
  applies inside one prosodic word only (我想 wo2 xiang3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import jieba

__all__ = ["sandhi_bu_yi", "sandhi_third_in_word", "sandhi_third_across"]

_NUMERALS: Final = frozenset("零一二三四五六七八九十两幺")
_BIG_UNITS: Final = frozenset("十百千万亿")


def _tone(syllable: str) -> str:
    return syllable[-1:]


def _with_tone(syllable: str, tone: str) -> str:
    return syllable[:-1] + tone


def sandhi_bu_yi(chars: Sequence[str], pinyin: list[str]) -> None:
    """Rewrite 不 and 一 in place; ``chars[i]`` is read ``pinyin[i]`` within one phrase."""
    for i, ch in enumerate(chars):
        prev = chars[i - 1] if i > 0 else ""
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        next_tone = _tone(pinyin[i + 1]) if nxt else ""
        if ch == "不" and pinyin[i] in ("bu4", "bu2"):
            pinyin[i] = "bu2" if next_tone == "4" else "bu4"
        elif ch == "一" and pinyin[i].startswith("yi"):
            pinyin[i] = _yi(prev, nxt, next_tone)


def _yi(prev: str, nxt: str, next_tone: str) -> str:
    if not nxt or nxt == "月" or prev == "第":
        return "yi1"
    if nxt in _NUMERALS and nxt not in _BIG_UNITS:
        return "yi1"  # digit strings: 一九九八, 一一零
    if prev in _NUMERALS and nxt not in _BIG_UNITS:
        return "yi1"  # 十一, 一百零一
    if prev and prev == nxt:
        return "yi5"  # 看一看
    return "yi2" if next_tone == "4" else "yi4"


def sandhi_third_in_word(word: str, pinyin: list[str]) -> None:
    """Third-tone sandhi inside one lexical word, in place."""
    tones = [_tone(p) for p in pinyin]
    if len(pinyin) == 3 and tones == ["3", "3", "3"]:
        if _in_dictionary(word[:2]) and not _in_dictionary(word[1:]):
            pinyin[0] = _with_tone(pinyin[0], "2")
        pinyin[1] = _with_tone(pinyin[1], "2")
        return
    for i in range(len(pinyin) - 1):
        if _tone(pinyin[i]) == "3" and _tone(pinyin[i + 1]) == "3":
            pinyin[i] = _with_tone(pinyin[i], "2")


def sandhi_third_across(left: list[str], right: Sequence[str]) -> None:
    """Third-tone sandhi between two words of one prosodic word: changes ``left``'s end."""
    if left and right and _tone(left[-1]) == "3" and _tone(right[0]) == "3":
        left[-1] = _with_tone(left[-1], "2")


def _in_dictionary(word: str) -> bool:
    """Whether jieba's dictionary lists ``word`` (2+1 vs 1+2 structure of a 3-syllable word)."""
    jieba.initialize()
    return bool(jieba.dt.FREQ.get(word))
