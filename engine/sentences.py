"""Where sentences end: one splitter for whole texts and for text still streaming in.

One punctuation set and one rule serve both, so a text streamed piece by piece
is cut where the same text sent whole is cut: after a terminator (and any
closing quotes or brackets) followed by white space, unless the terminator is
part of an ellipsis or a lowercase letter follows ("e.g. this" is one sentence).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

__all__ = ["CLOSERS", "SENTENCE_END", "split_complete", "split_sentences"]

SENTENCE_END: Final = ".!?。！？"
"""Characters that end a sentence; the CJK ones need no space after them."""
CLOSERS: Final = "\"'’”)]"
"""Closing quotes and brackets that stay with the sentence they end."""
_CJK_END: Final = "。！？"
_BOUNDARY_RE: Final = re.compile(f"[{re.escape(SENTENCE_END)}]+[{re.escape(CLOSERS)}]*(?:\\s+|$)")


def _boundaries(text: str) -> Iterator[re.Match[str]]:
    for match in _BOUNDARY_RE.finditer(text):
        if match.group().startswith("..") or text[match.end() : match.end() + 1].islower():
            continue
        yield match


def split_sentences(text: str) -> list[str]:
    """Split a whole text into its sentences (stripped, none empty)."""
    pieces: list[str] = []
    start = 0
    for match in _boundaries(text):
        if match.end() == len(text) and not match.group()[-1:].isspace():
            break  # the text's own end
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def split_complete(text: str) -> tuple[str, str]:
    """Split streamed text into (complete sentences, unfinished rest).

    A sentence is complete once its terminator is followed by white space (or,
    for a CJK terminator, at once): ``"Hi. How"`` → ``("Hi.", "How")``.
    """
    end = 0
    for match in _boundaries(text):
        found = match.group()
        if match.end() < len(text) or found[-1:].isspace() or found.rstrip()[-1:] in _CJK_END:
            end = match.end()
    return text[:end].strip(), text[end:]
