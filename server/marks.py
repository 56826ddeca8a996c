"""Word and phoneme marks: the engine's, in samples at the engine's rate → the client's."""

from __future__ import annotations

from voxlive.engine.interface import SentenceMarks
from voxlive.protocol.messages import Marks, Phoneme, Word
from voxlive.protocol.types import StreamId, UtteranceId

__all__ = ["scale_marks"]


def scale_marks(
    marks: SentenceMarks, in_rate: int, out_rate: int, uid: UtteranceId, stream: StreamId
) -> Marks:
    """One sentence's marks (SPEC.md ``marks``) in samples of the output rate."""
    scale = out_rate / in_rate
    words = tuple(Word(w.text, round(w.start * scale), round(w.end * scale)) for w in marks.words)
    phonemes = tuple(
        Phoneme(p.text, round(p.start * scale), round(p.end * scale)) for p in marks.phonemes
    )
    return Marks(uid, stream, round(marks.start * scale), words, phonemes)
