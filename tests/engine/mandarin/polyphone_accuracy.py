"""Polyphone accuracy of ways to read Chinese.

Run: ``python -m tests.engine.mandarin.polyphone_accuracy``.

* ``per character``: pypinyin on each character alone (no phrase dictionary);
* ``pypinyin phrases``: pypinyin on the whole sentence (its own phrase matching);
* ``jieba words``: pypinyin on each jieba word;
* ``front end``: jieba words + pypinyin + our neutral tones and sandhi (what the voice reads).
"""

from __future__ import annotations

import jieba
from pypinyin import Style, lazy_pinyin

from voxlive.engine.mandarin.g2p import to_words

from .polyphones import POLYPHONES


def _per_character(sentence: str) -> list[str]:
    return [lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True)[0] for ch in sentence]


def _pypinyin_phrases(sentence: str) -> list[str]:
    return lazy_pinyin(sentence, style=Style.TONE3, neutral_tone_with_five=True)


def _jieba_words(sentence: str) -> list[str]:
    return [p for w in jieba.lcut(sentence) for p in _pypinyin_phrases(w)]


def front_end_reading(sentence: str) -> list[str]:
    """The front end's syllables, one per Han character."""
    words, _ = to_words(sentence)
    return [s for w in words for s in w.syllables]


def main() -> None:
    readers = {
        "per character": _per_character,
        "pypinyin phrases": _pypinyin_phrases,
        "jieba words": _jieba_words,
        "front end": front_end_reading,
    }
    for name, read in readers.items():
        right = 0
        for sentence, char, expected in POLYPHONES:
            right += read(sentence)[sentence.index(char)] == expected
        print(f"{name:18s} {right}/{len(POLYPHONES)}")


if __name__ == "__main__":
    main()
