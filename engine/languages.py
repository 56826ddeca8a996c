"""Cut mixed Chinese/English chat text into language runs, one voice per run.

Script decides: Han characters and CJK punctuation are Chinese, Latin words English. The
rest (digits, spaces, ASCII punctuation, emoji) is neutral and joins a neighbour:

* between two runs of one language it stays inside that run (我有3个苹果 is one run);
* between two languages, punctuation right after a run stays with it, and everything from
  the first digit, currency sign or opening bracket on goes to the next run: a number reads
  with the unit after it (``"I paid 50 元"`` -> en ``I paid``, zh ``50 元``);
* text with neither script is one run in the ``default`` language.

A single Latin word with Han text beside it stays in the Chinese run when the Chinese
front end reads it well: chat slang (``yyds``, ``awsl``), words of one or two letters
(``OK``, ``pk``, ``up``) other than a few English words (``hi``, ``no``, ``me``...),
all-caps acronyms up to six letters (``GG``, ``BGM``, ``MVP``) and vowel-less
abbreviations up to four letters (``xs``, ``nmsl``): those are spelled with Chinese
letter names. Other words (``boss``, ``stream``) and every phrase of two or more Latin
words become English runs, even inside a Chinese sentence.

Only whitespace between runs is dropped; each run's text is stripped at its ends.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from .mandarin.normalize import is_slang

__all__ = ["Lang", "Run", "split_runs"]

Lang: TypeAlias = Literal["zh", "en"]


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of text for one language's voice."""

    lang: Lang
    text: str


_HAN: Final = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff01-\uff0f\uff1a-\uff20"
_LATIN: Final = r"A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a"
_TOKEN_RE: Final = re.compile(
    rf"(?P<han>[{_HAN}]+)"
    rf"|(?P<latin>[0-9]*[{_LATIN}][{_LATIN}0-9]*(?:['’][{_LATIN}]+)*)"
    rf"|(?P<neutral>[^{_HAN}{_LATIN}]+)",
    re.S,
)
_SHORT_ENGLISH: Final = frozenset(
    "hi ha oh no so me my to we he is it in on at an am be do go us of or if by".split()
)
_MAX_ACRONYM: Final = 6
_MAX_ABBREVIATION: Final = 4
_TO_NEXT_RE: Final = re.compile(r"[0-9$¥€£₩₹(\[{\"'“‘#@+\-]")


def _latin_reads_as_chinese(word: str) -> bool:
    word = unicodedata.normalize("NFKC", word)
    if is_slang(word):
        return True
    if not word.isascii():
        return False  # accented words (café) are English: the Chinese voice cannot spell them
    letters = re.sub(r"[^A-Za-z]", "", word)
    if len(letters) <= 2:
        return letters.lower() not in _SHORT_ENGLISH
    if letters.isupper() and len(letters) <= _MAX_ACRONYM:
        return True
    return len(letters) <= _MAX_ABBREVIATION and not re.search(r"[aeiouy]", letters, re.I)


def _classify(tokens: list[tuple[str, str]]) -> list[Lang | None]:
    """Language of each token; None for neutral ones."""
    langs: list[Lang | None] = []
    has_han = any(kind == "han" for kind, _ in tokens)
    for i, (kind, text) in enumerate(tokens):
        if kind == "han":
            langs.append("zh")
        elif kind == "neutral":
            langs.append(None)
        else:
            alone = not (_latin_neighbour(tokens, i, -1) or _latin_neighbour(tokens, i, 1))
            chinese = has_han and alone and _latin_reads_as_chinese(text)
            langs.append("zh" if chinese else "en")
    return langs


def _latin_neighbour(tokens: list[tuple[str, str]], i: int, step: int) -> bool:
    """Whether a Latin word is reached from ``tokens[i]`` through neutral text only."""
    j = i + step
    while 0 <= j < len(tokens) and tokens[j][0] == "neutral":
        j += step
    return 0 <= j < len(tokens) and tokens[j][0] == "latin"


def _spread(tokens: list[tuple[str, str]], langs: list[Lang | None]) -> list[tuple[Lang, str]]:
    """Give every neutral token (or its two halves) to a neighbouring run."""
    pieces: list[tuple[Lang, str]] = []
    for i, ((_, text), lang) in enumerate(zip(tokens, langs, strict=True)):
        if lang is not None:
            pieces.append((lang, text))
            continue
        before = next((lg for lg in reversed(langs[:i]) if lg is not None), None)
        after = next((lg for lg in langs[i + 1 :] if lg is not None), None)
        if before is None or after is None or before == after:
            owner = before or after
            assert owner is not None  # split_runs handles text without any word
            pieces.append((owner, text))
            continue
        match = _TO_NEXT_RE.search(text)
        cut = match.start() if match else len(text)
        pieces += [(before, text[:cut]), (after, text[cut:])]
    return pieces


def split_runs(text: str, *, default: Lang = "en") -> list[Run]:
    """Cut ``text`` into runs of one language each.

    Args:
        text: Any string.
        default: The language of text with neither Han characters nor Latin letters
            (``"666"``, ``"!!!"``).

    Returns:
        The runs in order, none empty or whitespace-only; ``[]`` for blank text. Joining
        their texts gives ``text`` back, up to whitespace. Never raises.
    """
    tokens = [(m.lastgroup or "neutral", m.group(0)) for m in _TOKEN_RE.finditer(text)]
    langs = _classify(tokens)
    if all(lang is None for lang in langs):
        return [Run(default, text.strip())] if text.strip() else []
    runs: list[Run] = []
    for lang, piece in _spread(tokens, langs):
        if runs and runs[-1].lang == lang:
            runs[-1] = Run(lang, runs[-1].text + piece)
        elif piece.strip() or not runs:
            runs.append(Run(lang, piece))
        else:
            runs[-1] = Run(runs[-1].lang, runs[-1].text + piece)
    return [Run(r.lang, r.text.strip()) for r in runs if r.text.strip()]
