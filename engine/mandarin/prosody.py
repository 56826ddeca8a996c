"""Emotions and prosody controls as the Mandarin model's own inputs.

The same vocabulary and profiles as the English voice (``engine/emotion.py``),
realized without a signal stage:

* rate → the duration divisor (``speed``); pauses → a per-symbol duration factor on
  pause symbols;
* pitch level (semitones) → the pitch predictor's values are z-scores of F0 in Hz
  over the training speaker (mean ``m``, deviation ``s``), so multiplying every F0 by
  ``r = 2^(n/12)`` multiplies their spread by ``r`` and adds ``m · (r − 1) / s``;
* pitch range → a further factor on the values' spread around each sentence's mean;
* vocal effort → a shift of the energy predictor's values, in proportion to the
  emotion's loudness change; loudness itself → an output gain (on top of the gain
  that matches the English voice's level).

``F0_MEAN_HZ`` and ``F0_STD_HZ`` were fitted by regressing the F0 measured in the
voice's output on the predicted values (``docs/performance.md`` has the command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..emotion import prosody
from ..interface import Controls

__all__ = ["F0_MEAN_HZ", "F0_STD_HZ", "ModelControls", "model_controls"]

F0_MEAN_HZ: Final = 220.0
"""The voice's mean F0 (what normalized pitch 0 sounds at)."""
F0_STD_HZ: Final = 0.13 * F0_MEAN_HZ
"""Hz per normalized pitch unit (only the ratio to the mean matters)."""
LEVEL_DB: Final = -3.6
"""Gain that brings the voice to the English voice's speech level, so that mixed-language
utterances play at one level (the two levels are measured in docs/performance.md)."""
VOICE_LEVEL_RANGE_ST: Final = (-4.0, 4.0)
"""How far a registered voice may move this voice's pitch level: beyond it the model's
speech breaks up (measured in docs/performance.md), so a much lower or higher reference
moves it this far toward itself."""
ENERGY_PER_DB: Final = 0.05
"""Normalized energy units per dB of an emotion's loudness change (vocal effort)."""


@dataclass(frozen=True, slots=True)
class ModelControls:
    """One utterance's inputs to the Mandarin model."""

    speed: float
    pause_scale: float
    pitch_shift: float
    pitch_scale: float
    energy_shift: float
    gain: float
    """Linear factor on the output samples."""


def model_controls(controls: Controls) -> ModelControls:
    """The model inputs realizing ``controls`` (emotion, intensity, speed, pitch, volume,
    and a registered voice's pitch level and range).

    The composed rate, pitch level and loudness are limited as ``prosody`` limits them.

    Raises:
        ValueError: a control out of range (the message names it).
    """
    p = prosody(
        controls.emotion,
        controls.intensity,
        controls.speed,
        controls.pitch_st,
        controls.volume_db,
    )
    voice = controls.voice
    lo, hi = VOICE_LEVEL_RANGE_ST
    voice_st = min(max(voice.f0_shift_st, lo), hi) if voice is not None else 0.0
    level_st = p.f0_shift_st + voice_st
    spread = p.f0_range * (voice.f0_range if voice is not None else 1.0)
    ratio = 2.0 ** (level_st / 12.0)
    shift = F0_MEAN_HZ * (ratio - 1.0) / F0_STD_HZ
    # The emotion's share of the loudness, not the user's volume (nor what composing
    # them was limited to): vocal effort comes from the emotion alone.
    effort_db = prosody(controls.emotion, controls.intensity).gain_db
    return ModelControls(
        speed=1.0 / p.length_scale,
        pause_scale=p.pause_scale,
        pitch_shift=shift,
        pitch_scale=spread * ratio,
        energy_shift=ENERGY_PER_DB * effort_db,
        gain=math.pow(10.0, (p.gain_db + LEVEL_DB) / 20.0),
    )
