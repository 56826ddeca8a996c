"""Streamed text waiting to become sentences (SPEC.md §4.3: append, flush, end)."""

from __future__ import annotations

from voxlive.engine.sentences import split_complete

__all__ = ["TextBuffer"]


class TextBuffer:
    """Complete sentences leave at once; an unfinished one waits for more text or a flush.

    Sentences end where the engine's front end ends them (``engine.sentences``), so
    text streamed in pieces is cut where the same text sent whole is cut.
    """

    def __init__(self) -> None:
        self.pending = ""

    def append(self, text: str) -> str:
        """Add text; returns the complete sentences now ready ("" if none)."""
        ready, self.pending = split_complete(self.pending + text)
        return ready

    def flush(self) -> str:
        """Everything buffered, complete or not ("" if nothing)."""
        text, self.pending = self.pending.strip(), ""
        return text
