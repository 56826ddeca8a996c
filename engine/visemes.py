"""Mouth shapes (visemes) in time with the audio, for lip-sync (SPEC.md §5.3).

A sentence's phoneme marks become a **viseme track**: one of the 15 Oculus/ARKit-style
shapes of :data:`VISEMES` at every sample from the sentence's first to its last,
``sil`` where nothing is said. The track is contiguous (each entry starts where the
previous one ended), has no empty entries and never names the same shape twice in a
row.

Symbols map to shapes through tables (SPEC.md §5.3.1 prints them for client authors).
Some symbols have no shape of their own; their time goes to their neighbours:

* **hold** (length marks, diacritics, a glottal stop, an unknown symbol): the
  previous shape goes on;
* **ahead** (stress marks, ``h``, the Mandarin zero initial ``^``): the next shape
  starts early (a stress mark precedes its vowel; ``h`` is shaped by the vowel after it);
* **bridge** (a word break, quotes, a Mandarin prosodic boundary): the first half holds
  the previous shape, the second half takes the next one; after a pause it stays ``sil``.

Two phonemes may make one shape (``t ʃ`` → ``CH``) and one phoneme several (a Mandarin
final ``iao`` → ``ih aa ou``, or an IPA string such as ``aɪ`` given as one phoneme:
its time is cut among its parts).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Final

from .interface import Timed
from .phonemes import PAUSE_PHONEMES, SILENT_PHONEMES

__all__ = [
    "AHEAD",
    "BRIDGE",
    "HOLD",
    "IPA_VISEMES",
    "PINYIN_FINALS",
    "PINYIN_INITIALS",
    "SILENCE",
    "VISEMES",
    "ipa_visemes",
    "moved",
    "pinyin_visemes",
    "track",
]

VISEMES: Final = (
    "sil",
    "PP",
    "FF",
    "TH",
    "DD",
    "kk",
    "CH",
    "SS",
    "nn",
    "RR",
    "aa",
    "E",
    "ih",
    "oh",
    "ou",
)
"""The shapes a track names (Oculus Lipsync / ARKit-style), in their customary order."""
SILENCE: Final = "sil"
"""The closed, resting mouth: pauses, and the time before and after speech."""

HOLD: Final = "<"
"""Not a shape: the previous shape goes on."""
AHEAD: Final = ">"
"""Not a shape: the next shape starts early."""
BRIDGE: Final = "~"
"""Not a shape: half the previous shape, half the next (``sil`` after a pause)."""

_IPA_BY_SHAPE: Final[Mapping[str, str]] = {
    "PP": "pbmɓʙʘβɸ",
    "FF": "fvɱʋⱱ",
    "TH": "θð",
    "DD": "tdʈɖɗɾɽǀǁǂǃ",
    "kk": "kgɡcqɟɢɠʄʛxɣχçʝɰŋɴ",
    "CH": "ʃʒʂʐɕʑɧʧʤ",
    "SS": "sz",
    "nn": "nlɫɬɮɭɲɳʎʟɺ",
    "RR": "rɹɻʀʁɚɝ˞",
    "aa": "aɑɒɐæʌɶ",
    "E": "eɛεəɘɜɤ",
    "ih": "iɪɨᵻɯj",
    "oh": "oɔøœɵɞ",
    "ou": "uʊʉyʏwʍɥ",
    AHEAD: "ˈˌhɦħʕʜʢ",
    HOLD: "ːˑʰʲˤ↓ʔʡ#0123456789\u0303\u0327\u0329\u032a\u032f",
    BRIDGE: "".join(sorted(SILENT_PHONEMES - PAUSE_PHONEMES)),
    SILENCE: "".join(sorted(PAUSE_PHONEMES)),
}

IPA_VISEMES: Final[Mapping[str, str]] = {
    symbol: shape for shape, symbols in _IPA_BY_SHAPE.items() for symbol in symbols
}
"""IPA symbol (one code point, as the espeak-ng voices give them) → a shape of
:data:`VISEMES`, or :data:`HOLD`, :data:`AHEAD` or :data:`BRIDGE`. Anything else holds."""

_AFFRICATES: Final = frozenset({("t", "ʃ"), ("d", "ʒ"), ("t", "ɕ"), ("d", "ʑ"), ("ʈ", "ʂ")})
"""Stop + fricative pairs spoken as one affricate: both parts take the ``CH`` shape."""

PINYIN_INITIALS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("b", "p", "m"), "PP"),
    "f": "FF",
    **dict.fromkeys(("d", "t"), "DD"),
    **dict.fromkeys(("n", "l"), "nn"),
    **dict.fromkeys(("g", "k", "h"), "kk"),
    **dict.fromkeys(("j", "q", "x", "zh", "ch", "sh"), "CH"),
    "r": "RR",
    **dict.fromkeys(("z", "c", "s"), "SS"),
    "y": "ih",
    "w": "ou",
    "^": AHEAD,
}
"""Pinyin initial → shape; ``^`` (no initial) takes its final's first shape."""

_M, _N, _C = 1, 2, 1  # weights of a medial, a nucleus and a coda in a final's time
PINYIN_FINALS: Final[Mapping[str, tuple[tuple[str, int], ...]]] = {
    "a": (("aa", _N),),
    "ai": (("aa", _N), ("ih", _C)),
    "an": (("aa", _N), ("nn", _C)),
    "ang": (("aa", _N), ("kk", _C)),
    "ao": (("aa", _N), ("ou", _C)),
    "e": (("E", _N),),
    "ei": (("E", _N), ("ih", _C)),
    "en": (("E", _N), ("nn", _C)),
    "eng": (("E", _N), ("kk", _C)),
    "er": (("E", _N), ("RR", _N)),
    "i": (("ih", _N),),
    "ii": (("ih", _N),),  # the apical vowel after z c s (Baker's spelling)
    "iii": (("ih", _N),),  # ... and after zh ch sh r
    "ia": (("ih", _M), ("aa", _N)),
    "ian": (("ih", _M), ("E", _N), ("nn", _C)),
    "iang": (("ih", _M), ("aa", _N), ("kk", _C)),
    "iao": (("ih", _M), ("aa", _N), ("ou", _C)),
    "ie": (("ih", _M), ("E", _N)),
    "in": (("ih", _N), ("nn", _C)),
    "ing": (("ih", _N), ("kk", _C)),
    "iong": (("ih", _M), ("ou", _N), ("kk", _C)),
    "iou": (("ih", _M), ("oh", _N), ("ou", _C)),
    "o": (("oh", _N),),
    "ong": (("ou", _N), ("kk", _C)),
    "ou": (("oh", _N), ("ou", _C)),
    "u": (("ou", _N),),
    "ua": (("ou", _M), ("aa", _N)),
    "uai": (("ou", _M), ("aa", _N), ("ih", _C)),
    "uan": (("ou", _M), ("aa", _N), ("nn", _C)),
    "uang": (("ou", _M), ("aa", _N), ("kk", _C)),
    "uei": (("ou", _M), ("E", _N), ("ih", _C)),
    "uen": (("ou", _M), ("E", _N), ("nn", _C)),
    "ueng": (("ou", _M), ("E", _N), ("kk", _C)),
    "uo": (("ou", _M), ("oh", _N)),
    "v": (("ou", _N),),  # ü
    "van": (("ou", _M), ("E", _N), ("nn", _C)),
    "ve": (("ou", _M), ("E", _N)),
    "vn": (("ou", _N), ("nn", _C)),
}
"""Pinyin final (tone digit stripped; Baker's spelling: ``iou``, ``uei``, ``uen``, ``v``
for ü) → its shapes in order, each with its share of the final's time."""
_PINYIN_SPELLINGS: Final = {
    "iu": "iou",
    "ui": "uei",
    "un": "uen",
    "ü": "v",
    "üe": "ve",
    "üan": "van",
    "ün": "vn",
}
"""Standard pinyin spellings of finals, read as Baker's."""

_Part = tuple[str, int, int]
"""A shape (or HOLD/AHEAD/BRIDGE), and its samples ``[start, end)``."""


def ipa_visemes(phonemes: Sequence[Timed], start: int, end: int | None = None) -> tuple[Timed, ...]:
    """The viseme track of a sentence whose phonemes are IPA (espeak-ng voices).

    Args:
        phonemes: The sentence's phoneme marks in time order, word breaks and
            punctuation included; one code point each, or longer IPA strings (whose
            time is cut evenly among their code points).
        start: The sentence's first sample: the track starts there.
        end: The sentence's last sample + 1, if known; else the track ends with the
            last phoneme.

    Returns:
        The track (see :func:`track`). An unknown symbol holds the previous shape.
    """
    parts = [part for p in phonemes for part in _code_points(p)]
    symbols = [symbol for symbol, _, _ in parts]
    shapes = [IPA_VISEMES.get(symbol, HOLD) for symbol in symbols]
    for j in range(len(symbols) - 1):
        if (symbols[j], symbols[j + 1]) in _AFFRICATES:
            shapes[j] = shapes[j + 1] = "CH"
    return track(_resolve([(s, a, b) for s, (_, a, b) in zip(shapes, parts)]), start, end)


def pinyin_visemes(
    symbols: Sequence[Timed],
    start: int,
    end: int | None = None,
    *,
    pauses: Collection[str] = (),
) -> tuple[Timed, ...]:
    """The viseme track of a Mandarin sentence given as pinyin initials and toned finals.

    Args:
        symbols: The sentence's symbols in time order: initials (``zh``, ``^`` for none)
            and finals with or without their tone digit (``ang2``, ``iou3``). Others may
            be given too: those in ``pauses`` are silence, any other (a prosodic
            boundary) bridges its neighbours.
        start: The sentence's first sample: the track starts there.
        end: The sentence's last sample + 1, if known; else the track ends with the
            last symbol.
        pauses: Symbols that are pauses (``sil``).

    Returns:
        The track (see :func:`track`); a final's time is shared among its shapes.
    """
    parts: list[_Part] = []
    for s in symbols:
        if s.text in pauses:
            parts.append((SILENCE, s.start, s.end))
        elif s.text in PINYIN_INITIALS:
            parts.append((PINYIN_INITIALS[s.text], s.start, s.end))
        else:
            final = s.text.rstrip("012345")
            shares = PINYIN_FINALS.get(_PINYIN_SPELLINGS.get(final, final), ((BRIDGE, 1),))
            parts.extend(_shared(shares, s.start, s.end))
    return track(_resolve(parts), start, end)


def track(shapes: Iterable[Timed], start: int, end: int | None = None) -> tuple[Timed, ...]:
    """A contiguous track from ``start`` through shapes in time order.

    Gaps before, between and after the shapes are ``sil``; a shape that overlaps the
    one before it is cut to start where that one ends; equal neighbours merge; empty
    entries are dropped.

    Args:
        shapes: Names of :data:`VISEMES` and their spans, in time order.
        start: Where the track starts.
        end: Where it ends, if later than the last shape's end.

    Returns:
        Entries whose ``start`` is the previous one's ``end``, the first at ``start``
        (empty when nothing lasts a sample).
    """
    out: list[Timed] = []
    t = start
    for shape in shapes:
        a = max(shape.start, t)
        b = max(shape.end, a)
        _put(out, SILENCE, t, a)
        _put(out, shape.text, a, b)
        t = b
    if end is not None:
        _put(out, SILENCE, t, end)
    return tuple(out)


def moved(visemes: Iterable[Timed], at: Callable[[int], int]) -> tuple[Timed, ...]:
    """A track on another axis or rate (``at`` maps sample positions, never decreasing).

    Entries that become empty are dropped and the neighbours they separated merge,
    so the result keeps every property of :func:`track`.
    """
    out: list[Timed] = []
    for v in visemes:
        _put(out, v.text, at(v.start), at(v.end))
    return tuple(out)


def _put(out: list[Timed], shape: str, a: int, b: int) -> None:
    if b <= a:
        return
    if out and out[-1].text == shape and out[-1].end == a:
        out[-1] = Timed(shape, out[-1].start, b)
    else:
        out.append(Timed(shape, a, b))


def _code_points(p: Timed) -> list[_Part]:
    """A phoneme's code points (NFD), its time cut evenly among them."""
    points = unicodedata.normalize("NFD", p.text) or " "
    return list(zip(points, *_cuts(p.start, p.end, [1] * len(points)), strict=True))


def _shared(shares: Sequence[tuple[str, int]], a: int, b: int) -> list[_Part]:
    """A final's shapes, each with its share of ``[a, b)``."""
    return list(zip((s for s, _ in shares), *_cuts(a, b, [w for _, w in shares]), strict=True))


def _cuts(a: int, b: int, weights: Sequence[int]) -> tuple[list[int], list[int]]:
    """Starts and ends of consecutive pieces of ``[a, b)`` in proportion to ``weights``."""
    total = sum(weights)
    bounds = [a]
    running = 0
    for w in weights:
        running += w
        bounds.append(a + round((b - a) * running / total))
    return bounds[:-1], bounds[1:]


def _resolve(parts: Sequence[_Part]) -> list[Timed]:
    """Parts whose HOLD, AHEAD and BRIDGE markers are turned into their neighbours' shapes."""
    following: list[str | None] = [None] * len(parts)
    nxt: str | None = None  # the next real shape, through AHEAD and BRIDGE parts
    for j in range(len(parts) - 1, -1, -1):
        following[j] = nxt
        shape = parts[j][0]
        if shape == HOLD:
            nxt = None
        elif shape not in (AHEAD, BRIDGE):
            nxt = shape
    out: list[Timed] = []
    previous = SILENCE
    for (shape, a, b), after in zip(parts, following):
        coming = after if after != SILENCE else None
        if shape == AHEAD:
            shape = coming or previous
        elif shape == HOLD:
            shape = previous
        elif shape == BRIDGE:
            if previous != SILENCE and coming is not None:
                mid = (a + b) // 2
                out.append(Timed(previous, a, mid))
                a, shape = mid, coming
            else:
                shape = previous
        out.append(Timed(shape, a, b))
        previous = shape
    return out
