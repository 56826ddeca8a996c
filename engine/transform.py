"""What the expressive stage changes in a voice: :class:`VoiceTransform` and its helpers.

One value describes both a registered voice's adaptation (pitch level and range,
formant scale, tilt) and an utterance's expression (pitch, contour, breathiness,
level); :meth:`VoiceTransform.then` composes them so the stage (``psola.py``) runs
once. :func:`contour_window` says where a phrase-end pitch movement lands and
:func:`soft_limit` keeps a louder voice below full scale, the same way for every
chunk of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

__all__ = [
    "CONTOUR_S",
    "LIMIT_KNEE",
    "VoiceTransform",
    "contour_window",
    "soft_limit",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceTransform:
    """How to move a voice. The identity changes nothing."""

    f0_shift_st: float = 0.0
    """Pitch level change in semitones."""
    f0_range: float = 1.0
    """Scale of the log-F0 excursions around the median (1 keeps the intonation)."""
    formant_scale: float = 1.0
    """Formant frequency scale: > 1 raises formants (a shorter vocal tract)."""
    tilt_db_per_octave: float = 0.0
    """Spectral tilt added above 500 Hz: < 0 darker, > 0 brighter."""
    gain_db: float = 0.0
    """Level change (soft-limited below full scale)."""
    breathiness: float = 0.0
    """Breath noise in −0.9…0.9: > 0 breathier; < 0 asks for a clearer voice."""
    end_contour_st: float = 0.0
    """Pitch movement over each phrase's end (see :func:`contour_window`)."""

    def is_identity(self) -> bool:
        return self == VoiceTransform()

    def needs_stage(self) -> bool:
        """Whether the waveform must be reshaped (a pure gain change need not be)."""
        return replace(self, gain_db=0.0) != VoiceTransform()

    def then(self, other: VoiceTransform) -> VoiceTransform:
        """This transform followed by ``other`` (same pitch centre), as one transform.

        Pitch shifts, tilts, gains, breathiness and contours add; ranges and
        formant scales multiply.
        """
        return VoiceTransform(
            f0_shift_st=self.f0_shift_st + other.f0_shift_st,
            f0_range=self.f0_range * other.f0_range,
            formant_scale=self.formant_scale * other.formant_scale,
            tilt_db_per_octave=self.tilt_db_per_octave + other.tilt_db_per_octave,
            gain_db=self.gain_db + other.gain_db,
            breathiness=max(-0.9, min(0.9, self.breathiness + other.breathiness)),
            end_contour_st=self.end_contour_st + other.end_contour_st,
        )

    def to_dict(self) -> dict[str, float]:
        """The fields a voice profile stores (the speaker's, not an utterance's)."""
        return {
            "f0_shift_st": self.f0_shift_st,
            "f0_range": self.f0_range,
            "formant_scale": self.formant_scale,
            "tilt_db_per_octave": self.tilt_db_per_octave,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoiceTransform:
        """Raises: ValueError on unknown keys."""
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown transform keys: {sorted(unknown)}")
        return replace(cls(), **{k: float(v) for k, v in d.items()})


LIMIT_KNEE: Final = 0.8


def soft_limit(x: np.ndarray) -> np.ndarray:
    """Sample-wise soft limiter: identity below ``LIMIT_KNEE``, then a tanh knee to 1.

    Stateless, so chunks limited one by one equal the whole signal limited.
    """
    x = np.asarray(x, np.float32)
    mag = np.abs(x)
    over = mag > LIMIT_KNEE
    if not over.any():
        return x
    head = 1.0 - LIMIT_KNEE
    out = x.copy()
    out[over] = np.sign(x[over]) * (LIMIT_KNEE + head * np.tanh((mag[over] - LIMIT_KNEE) / head))
    return out


CONTOUR_S: Final = 0.5
"""Length of a phrase-end pitch movement (at most half the phrase), seconds."""


def contour_window(
    transform: VoiceTransform, sample_rate: int, start: int, end: int
) -> tuple[int, int] | None:
    """Where a phrase spanning samples ``[start, end)`` gets its end contour, or None.

    The last :data:`CONTOUR_S` of the phrase (at most its second half); None when
    the transform has no end contour or the phrase is empty.
    """
    if not transform.end_contour_st or end <= start:
        return None
    length = min(int(CONTOUR_S * sample_rate), (end - start) // 2)
    return (end - length, end) if length > 0 else None
