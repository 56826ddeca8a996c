"""Blocked words: phrases no utterance may speak (``--blocked-words-file``).

**File**: UTF-8, one word or phrase a line, in any language; blank lines and lines
starting with ``#`` are skipped.

**Matching** (SPEC.md §6, ``text_rejected``): the text and the phrases are normalized
alike (NFKC, so full-width and compatibility forms become plain letters; case folded;
Traditional Chinese converted to Simplified with zhconv), and a phrase matches where its
letters and digits appear in order with at most :data:`MAX_GAP` separators (spaces,
punctuation, symbols, combining marks, zero-width characters) between consecutive ones:
``b a d``, ``B.A.D``, ``ｂａｄ`` and ``b_a_d`` all match ``bad``, and ``壞`` matches ``坏``.
A phrase that starts (ends) with a letter or digit of a script that puts spaces between
words matches only where no such letter or digit comes just before (after) it, so
``bad`` is not found in ``badge``, ``tuba dancing`` or ``abad``; Chinese, Japanese and
Korean phrases match anywhere.

Streamed text (``append``) is checked as it comes, across appends: the end of the text
so far may be the start of a longer word (``bad`` then ``ge``), so a phrase ending at the
very end is decided by the next append, or by ``flush``/``end``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import zhconv

__all__ = ["MAX_GAP", "StreamCheck", "TextFilter", "normalize"]

MAX_GAP: Final = 3
"""Separators allowed between two letters of a phrase."""

_CJK: Final = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_SPACED: Final = f"[^\\W_{_CJK}]"
"""A letter or digit of a script that separates words with spaces (Latin, Cyrillic…)."""
_SPACED_RE: Final = re.compile(_SPACED)
_LETTER_RE: Final = re.compile(r"[^\W_]")
_GAP: Final = f"[\\W_]{{0,{MAX_GAP}}}"


@functools.cache
def _load_zhconv() -> None:
    """Load zhconv's table by its path: its default loader leaves the file open."""
    zhconv.loaddict(str(Path(zhconv.zhconv.__file__).parent / "zhcdict.json"))


def normalize(text: str) -> str:
    """``text`` as matched: NFKC, case folded, Chinese in Simplified characters."""
    _load_zhconv()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return str(zhconv.convert(folded, "zh-cn"))


class TextFilter:
    """The blocked phrases, compiled into one pattern (see module docstring).

    Args:
        phrases: Words or phrases; one with no letter or digit is ignored.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        patterns: dict[str, int] = {}
        for phrase in phrases:
            letters = _LETTER_RE.findall(normalize(phrase))
            if letters:
                patterns[_pattern(letters)] = len(letters)
        ordered = sorted(patterns, key=len, reverse=True)  # the longer phrase first
        self._regex = re.compile("|".join(ordered)) if ordered else None
        self.phrases = len(ordered)
        longest = max(patterns.values(), default=1)
        self.tail_chars = 2 * longest * (MAX_GAP + 1) + 8
        """Text of a stream kept to find a phrase that straddles two appends."""

    @classmethod
    def load(cls, path: str | Path) -> TextFilter:
        """The phrases of the file at ``path`` (see module docstring).

        Raises:
            OSError: the file cannot be read.
            UnicodeDecodeError: it is not UTF-8 (a ``ValueError``).
        """
        lines = (line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
        return cls(line for line in lines if line and not line.startswith("#"))

    def blocked(self, text: str, *, final: bool = True) -> bool:
        """Whether ``text`` holds a blocked phrase.

        Args:
            text: The text.
            final: Nothing follows ``text``; when False, a phrase that ends a word at
                the very end of ``text`` is not counted (the word may go on).
        """
        if self._regex is None:
            return False
        normal = normalize(text)
        for match in self._regex.finditer(normal):
            end = match.end()
            if final or end < len(normal) or not _SPACED_RE.match(normal[end - 1]):
                return True
        return False

    def stream(self) -> StreamCheck:
        """A checker for one streamed utterance's text."""
        return StreamCheck(self)


class StreamCheck:
    """Checks one streamed utterance's text append by append (see module docstring)."""

    __slots__ = ("_filter", "_tail")

    def __init__(self, text_filter: TextFilter) -> None:
        self._filter = text_filter
        self._tail = ""

    def feed(self, text: str, *, final: bool = False) -> bool:
        """Add ``text`` (``""`` with ``final`` at ``flush``/``end``); returns whether the
        text so far holds a blocked phrase not reported before."""
        buffer = self._tail + text
        self._tail = buffer[-self._filter.tail_chars :]
        return self._filter.blocked(buffer, final=final)


def _pattern(letters: list[str]) -> str:
    """Letters in order, up to ``MAX_GAP`` separators apart, whole words on spaced sides."""
    body = _GAP.join(re.escape(c) for c in letters)
    if _SPACED_RE.match(letters[0]):
        body = f"(?<!{_SPACED}){body}"
    if _SPACED_RE.match(letters[-1]):
        body = f"{body}(?!{_SPACED})"
    return body
