"""The punctuation symbols of the phoneme inventory (Piper's espeak-ng phonemes).

Defined once: the front end, the expressive stage (pause scaling, phrase spans) and the
measurements all ask the same question, "is this phoneme punctuation?".
"""

from __future__ import annotations

from typing import Final

__all__ = ["PAUSE_PHONEMES", "SILENT_PHONEMES"]

PAUSE_PHONEMES: Final = frozenset(",.!?;:—…")
"""Punctuation phonemes that are pauses: their durations carry an emotion's pause factor."""

SILENT_PHONEMES: Final = PAUSE_PHONEMES | frozenset(" \"'()-")
"""Phonemes that carry no speech: pauses, word breaks, quotes, brackets and hyphens.
A sentence made only of these has nothing to say."""
