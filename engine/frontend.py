"""Text front end: chat text -> normalized English -> espeak-ng phonemes -> Piper ids.

The ladder is Piper's (``piper.phonemize_espeak`` + ``piper.phoneme_ids``): espeak-ng turns
each clause into IPA, the terminator is kept, ``, : ;`` get a trailing space, everything is
NFD-split into codepoints, and ids are ``^ _ (id _)* $``. For ordinary text our ids are
Piper's, id for id. Two things differ on purpose:

* Before espeak sees the text it is normalized for live chat: money, decades, clock times,
  URLs, hashtags, shorthand, emoji, markdown and so on (see :meth:`Frontend.normalize`).
* Nothing is skipped silently. Dropped emoji, foreign-script words and phonemes missing
  from the voice's id map come back in :attr:`FrontendResult.warnings`.

espeak-ng keeps global C state, so every call goes through one module-level lock.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, Final, Self, TypeAlias

from . import textnorm
from .interface import Sentence, Text, TextError, TextErrorCode
from .phonemes import SILENT_PHONEMES
from .sentences import split_sentences

__all__ = [
    "MAX_TEXT_CHARS",
    "Frontend",
    "FrontendResult",
    "Sentence",
    "TextError",
    "TextErrorCode",
]

MAX_TEXT_CHARS: Final = 5000
"""Default limit on the raw input length, in characters."""

_BOS: Final = "^"
_EOS: Final = "$"
_PAD: Final = "_"

_LANG_FLAG_RE: Final = re.compile(r"\([^)]+\)")
"""espeak-ng's ``(fr)`` language-switch flags, stripped exactly as Piper does."""

_WORD_RE: Final = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")

_ESPEAK_LOCK: Final = threading.Lock()
_espeak: ModuleType | None = None  # guarded by _ESPEAK_LOCK


FrontendResult: TypeAlias = Text
"""What :meth:`Frontend.process` made of one request (the engine interface's :class:`Text`)."""


class Frontend:
    """Turns user text into Piper phoneme ids for one espeak-ng voice.

    Thread-safe: instances are immutable and espeak-ng calls are serialized.
    """

    __slots__ = ("_id_map", "_max_phonemes", "_max_text_chars", "_voice")

    def __init__(
        self,
        phoneme_id_map: Mapping[str, Sequence[int]],
        espeak_voice: str = "en-us",
        max_text_chars: int = MAX_TEXT_CHARS,
        max_sentence_phonemes: int = 400,
    ) -> None:
        """Build a front end.

        Args:
            phoneme_id_map: The voice's ``phoneme_id_map`` (phoneme -> ids).
            espeak_voice: The espeak-ng voice name, e.g. ``"en-us"``.
            max_text_chars: Longest accepted input, in characters.
            max_sentence_phonemes: Longest :attr:`Sentence.phonemes`; longer sentences are split.

        Raises:
            ValueError: If a limit is below 1 or the map lacks ``^``, ``_`` or ``$``.
        """
        if max_text_chars < 1 or max_sentence_phonemes < 1:
            raise ValueError("max_text_chars and max_sentence_phonemes must be at least 1")
        missing = [s for s in (_BOS, _PAD, _EOS) if s not in phoneme_id_map]
        if missing:
            raise ValueError(f"phoneme_id_map lacks the special symbols {missing}")
        self._id_map = {k: tuple(int(i) for i in v) for k, v in phoneme_id_map.items()}
        self._voice = espeak_voice
        self._max_text_chars = max_text_chars
        self._max_phonemes = max_sentence_phonemes

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        max_text_chars: int = MAX_TEXT_CHARS,
        max_sentence_phonemes: int = 400,
    ) -> Self:
        """Build a front end from a Piper voice config (the ``.onnx.json`` dict).

        Args:
            config: The parsed voice config.
            max_text_chars: See :meth:`__init__`.
            max_sentence_phonemes: See :meth:`__init__`.

        Returns:
            The front end for that voice.

        Raises:
            ValueError: If the config is not an espeak voice, lacks ``phoneme_id_map`` or
                ``espeak.voice``, or uses ``vowel_clusters`` (not supported).
        """
        try:
            id_map = config["phoneme_id_map"]
            voice = config["espeak"]["voice"]
        except (KeyError, TypeError) as exc:
            raise ValueError("voice config lacks 'phoneme_id_map' or 'espeak.voice'") from exc
        if config.get("phoneme_type", "espeak") != "espeak":
            raise ValueError(f"phoneme_type {config['phoneme_type']!r} is not 'espeak'")
        if config.get("vowel_clusters"):
            raise ValueError("voice configs with 'vowel_clusters' are not supported")
        return cls(id_map, str(voice), max_text_chars, max_sentence_phonemes)

    def normalize(self, text: str) -> tuple[str, list[str]]:
        """Rewrite chat text into plain English that espeak-ng reads well.

        Args:
            text: Raw user text.

        Returns:
            The normalized text and warnings about what was dropped.

        Raises:
            TextError: ``text_too_long`` over the limit, ``unsupported_language`` if most
                letters are in a script other than Latin, ``empty_text`` if nothing
                speakable is left.
        """
        if len(text) > self._max_text_chars:
            raise TextError(
                "text_too_long",
                f"text is {len(text)} characters; the limit is {self._max_text_chars}",
            )
        if not text.strip():
            raise TextError("empty_text", "text is empty")
        warnings: list[str] = []
        cleaned = textnorm.clean_unicode(text, warnings)
        cleaned = self._filter_scripts(cleaned, warnings)
        normalized = textnorm.rewrite(cleaned, warnings)
        if not normalized:
            raise TextError("empty_text", _nothing_speakable(warnings))
        return normalized, warnings

    def process(self, text: str) -> FrontendResult:
        """Normalize, split, phonemize and map ``text`` to ids.

        Args:
            text: Raw user text.

        Returns:
            The sentences, each at most ``max_sentence_phonemes`` phonemes, and warnings.

        Raises:
            TextError: As :meth:`normalize`, or ``empty_text`` if no sentence has any sound.
            RuntimeError: If espeak-ng does not know the voice.
        """
        normalized, warnings = self.normalize(text)
        unknown: Counter[str] = Counter()
        sentences: list[Sentence] = []
        for piece in split_sentences(normalized):
            sentences.extend(self._phonemize_piece(piece, unknown))
        warnings.extend(_unknown_phoneme_warnings(unknown))
        if not sentences:
            raise TextError("empty_text", _nothing_speakable(warnings))
        return FrontendResult(sentences=sentences, warnings=warnings)

    def phonemes_to_ids(self, phonemes: Sequence[str]) -> tuple[list[int], list[str]]:
        """Map phonemes to ids exactly as ``piper.phoneme_ids.phonemes_to_ids`` does.

        Args:
            phonemes: Phonemes without BOS/EOS/PAD.

        Returns:
            ``^ _ (id _)* $`` ids, and one warning per distinct phoneme missing from the map
            (those are skipped, as Piper skips them).
        """
        id_map = self._id_map
        ids = [*id_map[_BOS], *id_map[_PAD]]
        unknown: Counter[str] = Counter()
        for phoneme in phonemes:
            if phoneme in id_map:
                ids.extend(id_map[phoneme])
                ids.extend(id_map[_PAD])
            else:
                unknown[phoneme] += 1
        ids.extend(id_map[_EOS])
        return ids, _unknown_phoneme_warnings(unknown)

    def _filter_scripts(self, text: str, warnings: list[str]) -> str:
        counts = textnorm.count_scripts(text)
        total = sum(counts.values())
        foreign = {name: n for name, n in counts.most_common() if name != "Latin"}
        if 2 * sum(foreign.values()) > total:
            detail = ", ".join(f"{name}: {n}" for name, n in foreign.items())
            raise TextError(
                "unsupported_language",
                f"text is mostly in a script this voice cannot speak ({detail} of {total} "
                f'letters); the voice "{self._voice}" speaks Latin-script text',
            )
        return textnorm.drop_foreign(text, foreign, warnings)

    def _phonemize_piece(self, piece: str, unknown: Counter[str]) -> list[Sentence]:
        chunks: list[list[str]] = []
        for group in _group_clauses(_espeak_clauses(self._voice, piece)):
            known = [[p for p in clause if self._known(p, unknown)] for clause in group]
            if _is_speakable(p for clause in known for p in clause):
                chunks.extend(_fit(known, self._max_phonemes))
        texts = _allocate_text(piece, chunks)
        return [
            Sentence(text=t, phonemes=c, ids=self.phonemes_to_ids(c)[0], words=_WORD_RE.findall(t))
            for t, c in zip(texts, chunks, strict=True)
        ]

    def _known(self, phoneme: str, unknown: Counter[str]) -> bool:
        if phoneme in self._id_map:
            return True
        unknown[phoneme] += 1
        return False


def _espeak_clauses(voice: str, text: str) -> list[tuple[str, str, bool]]:
    """Run espeak-ng on ``text`` under the global lock, initializing it on first use."""
    global _espeak
    with _ESPEAK_LOCK:
        if _espeak is None:
            # Imported lazily: ``piper`` pulls in onnxruntime, which importing engine need not.
            from piper import espeakbridge
            from piper.phonemize_espeak import ESPEAK_DATA_DIR

            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _espeak = espeakbridge
        _espeak.set_voice(voice)
        clauses: list[tuple[str, str, bool]] = _espeak.get_phonemes(text)
        return clauses


def _group_clauses(clauses: Iterable[tuple[str, str, bool]]) -> list[list[list[str]]]:
    """Clauses -> sentences of clause phoneme lists, as ``EspeakPhonemizer.phonemize``."""
    groups: list[list[list[str]]] = []
    current: list[list[str]] = []
    for phonemes, terminator, end_of_sentence in clauses:
        phonemes = _LANG_FLAG_RE.sub("", phonemes) + terminator
        if terminator in (",", ":", ";"):
            phonemes += " "
        current.append(list(unicodedata.normalize("NFD", phonemes)))
        if end_of_sentence:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _is_speakable(phonemes: Iterable[str]) -> bool:
    return any(p not in SILENT_PHONEMES for p in phonemes)


def _fit(clauses: list[list[str]], limit: int) -> list[list[str]]:
    """Join clauses into one sentence, or split it into pieces of at most ``limit`` phonemes.

    Splits at clause boundaries first, then at word boundaries, then anywhere.
    """
    flat = [p for clause in clauses for p in clause]
    if len(flat) <= limit:
        return [flat]
    chunks: list[list[str]] = [[]]
    for clause in clauses:
        for unit in _split_at_spaces(clause, limit) if len(clause) > limit else [clause]:
            # espeak-ng ends over-long clauses with no terminator; keep a word break there.
            gap = [" "] if chunks[-1] and chunks[-1][-1] not in SILENT_PHONEMES else []
            if len(chunks[-1]) + len(gap) + len(unit) > limit:
                chunks.append([])
                gap = []
            chunks[-1].extend(gap + unit)
    trimmed = (_strip_spaces(chunk) for chunk in chunks)
    return [chunk for chunk in trimmed if _is_speakable(chunk)]


def _split_at_spaces(phonemes: list[str], limit: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    for word in "".join(phonemes).split(" "):
        letters = list(word)
        while len(letters) > limit:  # a single word longer than the limit: cut anywhere
            chunks.extend([current, letters[:limit]] if current else [letters[:limit]])
            current, letters = [], letters[limit:]
        if current and len(current) + 1 + len(letters) > limit:
            chunks.append(current)
            current = []
        current += [" ", *letters] if current else letters
    chunks.append(current)
    return chunks


def _strip_spaces(phonemes: list[str]) -> list[str]:
    start, end = 0, len(phonemes)
    while start < end and phonemes[start] == " ":
        start += 1
    while end > start and phonemes[end - 1] == " ":
        end -= 1
    return phonemes[start:end]


def _allocate_text(piece: str, chunks: list[list[str]]) -> list[str]:
    """Share the words of ``piece`` among ``chunks`` in proportion to their phoneme words."""
    if len(chunks) <= 1:
        return [piece] * len(chunks)
    tokens = piece.split()
    weights = [max(1, len("".join(chunk).split())) for chunk in chunks]
    total, seen, start = sum(weights), 0, 0
    texts: list[str] = []
    for index, weight in enumerate(weights):
        seen += weight
        left = len(chunks) - index - 1  # chunks still to serve after this one
        room = len(tokens) - left  # leave at least one token for each of them
        end = min(round(seen / total * len(tokens)), room) if left else len(tokens)
        end = max(end, min(start + 1, room))  # take at least one token while any are spare
        texts.append(" ".join(tokens[start:end]))
        start = max(start, end)
    return texts


def _unknown_phoneme_warnings(unknown: Counter[str]) -> list[str]:
    return [
        f"skipped phoneme {p!r} (U+{ord(p[0]):04X}) {n} time{'s' if n > 1 else ''}: "
        "not in the voice's phoneme id map"
        for p, n in unknown.items()
    ]


def _nothing_speakable(warnings: list[str]) -> str:
    detail = f" ({'; '.join(warnings)})" if warnings else ""
    return f"text has nothing speakable after normalization{detail}"
