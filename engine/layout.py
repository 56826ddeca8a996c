"""The VITS id layout, ``^ _ (phoneme _)* $``, and what durations over it tell.

Piper voices take one id per phoneme with a pad after each, between a start
and an end marker, so phoneme ``j`` is id ``2 + 2j`` and its pad ``3 + 2j``.
From per-id durations (samples) that gives: pause lengthening (per-id scales),
the span of a sentence's speech (where a phrase-end contour lands), and word,
phoneme and viseme marks.
"""

from __future__ import annotations

from collections.abc import Sequence

from .interface import SentenceMarks, Timed
from .phonemes import PAUSE_PHONEMES
from .visemes import ipa_visemes

__all__ = ["PAUSE_PHONEMES", "pause_scales", "phrase_span", "sentence_marks"]


def pause_scales(n_ids: int, phonemes: Sequence[str], factor: float) -> list[float] | None:
    """Per-id duration scales lengthening pauses by ``factor``.

    A pause phoneme and the pad after it are scaled; None when nothing changes
    (or when the ids do not have that layout).
    """
    if factor == 1.0 or n_ids != 2 * len(phonemes) + 3:
        return None
    if not any(p in PAUSE_PHONEMES for p in phonemes):
        return None
    scales = [1.0] * n_ids
    for j, p in enumerate(phonemes):
        if p in PAUSE_PHONEMES:
            scales[2 + 2 * j] = scales[3 + 2 * j] = factor
    return scales


def phrase_span(phonemes: Sequence[str], durations: Sequence[int]) -> tuple[int, int]:
    """Samples ``[start, end)`` of a sentence's speech, from its per-id durations.

    Start: after the leading pad and punctuation; end: before the trailing
    punctuation, pads and end marker (where a phrase-end contour must land).
    """
    spoken = [j for j, p in enumerate(phonemes) if p not in PAUSE_PHONEMES and p != " "]
    if not spoken or len(durations) < 2 * len(phonemes) + 3:
        return 0, 0
    start = sum(durations[: 2 + 2 * spoken[0]])
    end = sum(durations[: 3 + 2 * spoken[-1]])
    return start, end


def sentence_marks(
    phonemes: Sequence[str], words: Sequence[str], durations: Sequence[int], start: int
) -> SentenceMarks:
    """Word, phoneme and viseme marks of a sentence whose audio starts at sample ``start``.

    A phoneme's span includes its pad; words are the phonemes between spaces
    (named by ``words`` when the counts agree, else spelled in phonemes). The
    viseme track runs from ``start`` to the sentence's last sample (the start and
    end markers' time is ``sil``).
    """
    t = start + durations[0] + durations[1]
    timed: list[Timed] = []
    for j, p in enumerate(phonemes):
        span = durations[2 + 2 * j] + durations[3 + 2 * j]
        timed.append(Timed(p, t, t + span))
        t += span
    visemes = ipa_visemes(timed, start, start + sum(durations))
    return SentenceMarks(start, tuple(_words(timed, words)), tuple(timed), visemes)


def _words(phonemes: list[Timed], words: Sequence[str]) -> list[Timed]:
    groups: list[list[Timed]] = [[]]
    for ph in phonemes:
        if ph.text == " ":
            groups.append([])
        elif ph.text not in PAUSE_PHONEMES:
            groups[-1].append(ph)
    groups = [g for g in groups if g]
    named = len(groups) == len(words)
    return [
        Timed(words[i] if named else "".join(p.text for p in g), g[0].start, g[-1].end)
        for i, g in enumerate(groups)
    ]
