"""Word, phoneme and viseme marks: the engine's, in samples at the engine's rate → the client's."""

from __future__ import annotations

from typing import Any

from voxlive.engine.interface import SentenceMarks, Timed
from voxlive.engine.visemes import moved
from voxlive.protocol.messages import Marks, Phoneme, Viseme, Word
from voxlive.protocol.types import StreamId, UtteranceId

__all__ = ["marks_from_list", "marks_to_list", "scale_marks", "shift_marks"]


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


def shift_marks(marks: SentenceMarks, samples: int) -> SentenceMarks:
    """``marks`` ``samples`` later (a sentence made alone, placed in its utterance)."""
    if samples == 0:
        return marks

    def moved_by(items: tuple[Timed, ...]) -> tuple[Timed, ...]:
        return tuple(Timed(t.text, t.start + samples, t.end + samples) for t in items)

    return SentenceMarks(
        marks.start + samples,
        moved_by(marks.words),
        moved_by(marks.phonemes),
        moved_by(marks.visemes),
    )


def marks_to_list(m: SentenceMarks) -> list[Any]:
    """``m`` as plain lists (msgpack): the audio cache's and the work streams' format."""

    def timed(items: tuple[Timed, ...]) -> list[list[Any]]:
        return [[t.text, t.start, t.end] for t in items]

    return [m.start, timed(m.words), timed(m.phonemes), timed(m.visemes)]


def marks_from_list(value: list[Any]) -> SentenceMarks:
    """The inverse of :func:`marks_to_list`.

    Raises:
        ValueError, TypeError: ``value`` is not what :func:`marks_to_list` makes.
    """

    def timed(items: list[list[Any]]) -> tuple[Timed, ...]:
        return tuple(Timed(str(t), int(s), int(e)) for t, s, e in items)

    start, words, phonemes, visemes = value
    return SentenceMarks(int(start), timed(words), timed(phonemes), timed(visemes))
