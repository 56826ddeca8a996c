"""Word, phoneme and viseme marks: the engine's, in samples at the engine's rate → the client's."""

from __future__ import annotations

from voxlive.engine.interface import SentenceMarks
from voxlive.engine.visemes import moved
from voxlive.protocol.messages import Marks, Phoneme, Viseme, Word
from voxlive.protocol.types import StreamId, UtteranceId

__all__ = ["scale_marks"]


def scale_marks(
    marks: SentenceMarks, in_rate: int, out_rate: int, uid: UtteranceId, stream: StreamId
) -> Marks:
    """One sentence's marks (SPEC.md ``marks``) in samples of the output rate.

    The viseme track stays contiguous: shared edges scale alike, and an entry that
    rounds to nothing is dropped (SPEC.md §5.3).
    """
    scale = out_rate / in_rate

    def at(sample: int) -> int:
        return round(sample * scale)

    words = tuple(Word(w.text, at(w.start), at(w.end)) for w in marks.words)
    phonemes = tuple(Phoneme(p.text, at(p.start), at(p.end)) for p in marks.phonemes)
    visemes = tuple(Viseme(v.text, v.start, v.end) for v in moved(marks.visemes, at))
    return Marks(uid, stream, at(marks.start), words, phonemes, visemes)
