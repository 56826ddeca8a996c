"""Emotion vocabulary and prosody profiles (the table the emotion stage realizes).

Directions follow the published emotional-prosody rules: Murray & Arnott (1993,
"Toward the simulation of emotion in synthetic speech", JASA 93(2)) and
Schröder (2001, "Emotional speech synthesis: a review", Eurospeech). Numbers
are the values at intensity 1, chosen inside the ranges those reviews report;
intensity scales every deviation from neutral linearly (0 = neutral).

| emotion   | rate  | pauses | F0 level | F0 range | loudness | tilt (effort) | contour     |
|-----------|-------|--------|----------|----------|----------|---------------|-------------|
| happy     | +10 % | ×0.85  | +2 st    | ×1.35    | +2 dB    | +1.5 dB/oct   | —           |
| excited   | +18 % | ×0.7   | +4 st    | ×1.6     | +4 dB    | +3 dB/oct     | —           |
| sad       | −18 % | ×1.5   | −2 st    | ×0.6     | −4 dB    | −3 dB/oct     | falling end |
| angry     | +8 %  | ×0.8   | +2.5 st  | ×1.3     | +5 dB    | +4 dB/oct     | falling end |
| calm      | −10 % | ×1.3   | −1 st    | ×0.75    | −2 dB    | −1.5 dB/oct   | —           |
| surprised | +5 %  | ×1.0   | +4 st    | ×1.6     | +2 dB    | +1 dB/oct     | rising end  |
| fearful   | +15 % | ×0.8   | +3 st    | ×1.45    | −1 dB    | +1 dB/oct     | —           |

Breathiness (aperiodicity) rises for sad and fearful, falls for angry.

How they are realized: rate → the engine's length scale; pauses → per-phoneme
duration scales on punctuation; the rest → the expressive stage chosen by
``engine/expression.py`` (PSOLA, with a registered voice's adaptation if any).
The duration noise is left alone: scaling it (for Murray & Arnott's "irregular"
rhythm of fear and anger) was measured to lengthen speech on average, undoing
most of those emotions' faster rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_INTENSITY",
    "EMOTIONS",
    "INTENSITY_RANGE",
    "PITCH_RANGE_ST",
    "SPEED_RANGE",
    "VOLUME_RANGE_DB",
    "SYNONYMS",
    "EmotionProfile",
    "Prosody",
    "check_range",
    "prosody",
    "resolve",
]

DEFAULT_INTENSITY: Final = 0.7
"""Intensity when none is asked for (the one place this number is stated)."""

INTENSITY_RANGE: Final = (0.0, 1.0)
SPEED_RANGE: Final = (0.25, 4.0)
"""Speaking-rate factors the engine renders: the inverse of its ``length_scale`` range."""
PITCH_RANGE_ST: Final = (-12.0, 12.0)
VOLUME_RANGE_DB: Final = (-30.0, 12.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmotionProfile:
    """Deviations from neutral at intensity 1."""

    rate: float = 1.0
    """Speaking-rate factor (> 1 faster)."""
    f0_shift_st: float = 0.0
    f0_range: float = 1.0
    """Factor on log-F0 excursions."""
    gain_db: float = 0.0
    tilt_db_per_octave: float = 0.0
    """Vocal effort: brighter (> 0) or darker spectrum."""
    breathiness: float = 0.0
    """Change of aperiodicity, −1…1 (> 0 breathier)."""
    end_contour_st: float = 0.0
    """F0 movement over a sentence's last phrase (> 0 rising, < 0 falling)."""
    pause: float = 1.0
    """Factor on pause lengths (punctuation)."""


EMOTIONS: Final[dict[str, EmotionProfile]] = {
    "neutral": EmotionProfile(),
    "happy": EmotionProfile(
        rate=1.10,
        f0_shift_st=2.0,
        f0_range=1.35,
        gain_db=2.0,
        tilt_db_per_octave=1.5,
        pause=0.85,
    ),
    "excited": EmotionProfile(
        rate=1.18,
        f0_shift_st=4.0,
        f0_range=1.6,
        gain_db=4.0,
        tilt_db_per_octave=3.0,
        pause=0.7,
    ),
    "sad": EmotionProfile(
        rate=0.82,
        f0_shift_st=-2.0,
        f0_range=0.6,
        gain_db=-4.0,
        tilt_db_per_octave=-3.0,
        breathiness=0.3,
        end_contour_st=-2.0,
        pause=1.5,
    ),
    "angry": EmotionProfile(
        rate=1.08,
        f0_shift_st=2.5,
        f0_range=1.3,
        gain_db=5.0,
        tilt_db_per_octave=4.0,
        breathiness=-0.2,
        end_contour_st=-1.5,
        pause=0.8,
    ),
    "calm": EmotionProfile(
        rate=0.90,
        f0_shift_st=-1.0,
        f0_range=0.75,
        gain_db=-2.0,
        tilt_db_per_octave=-1.5,
        pause=1.3,
    ),
    "surprised": EmotionProfile(
        rate=1.05,
        f0_shift_st=4.0,
        f0_range=1.6,
        gain_db=2.0,
        tilt_db_per_octave=1.0,
        end_contour_st=4.0,
    ),
    "fearful": EmotionProfile(
        rate=1.15,
        f0_shift_st=3.0,
        f0_range=1.45,
        gain_db=-1.0,
        tilt_db_per_octave=1.0,
        breathiness=0.25,
        pause=0.8,
    ),
}

SYNONYMS: Final[dict[str, str]] = {
    # English
    "joyful": "happy", "glad": "happy", "cheerful": "happy",
    "thrilled": "excited", "hyped": "excited", "enthusiastic": "excited",
    "unhappy": "sad", "sorrowful": "sad", "upset": "sad",
    "mad": "angry", "furious": "angry", "annoyed": "angry",
    "relaxed": "calm", "peaceful": "calm", "serene": "calm",
    "surprise": "surprised", "amazed": "surprised", "astonished": "surprised",
    "afraid": "fearful", "scared": "fearful", "fear": "fearful", "anxious": "fearful",
    # Chinese
    "中性": "neutral", "平常": "neutral",
    "开心": "happy", "高兴": "happy", "快乐": "happy", "愉快": "happy",
    "激动": "excited", "兴奋": "excited",
    "难过": "sad", "伤心": "sad", "悲伤": "sad",
    "生气": "angry", "愤怒": "angry", "恼火": "angry",
    "平静": "calm", "冷静": "calm",
    "惊讶": "surprised", "吃惊": "surprised", "惊奇": "surprised",
    "害怕": "fearful", "恐惧": "fearful", "紧张": "fearful",
}  # fmt: skip
"""Other tags (lowercase) and the emotion each stands for."""


def resolve(name: str) -> str:
    """The canonical emotion for a tag or synonym (case-insensitive for Latin script).

    Raises:
        ValueError: an unknown tag; the message lists the supported emotions.
    """
    key = name.strip().lower()
    if key in EMOTIONS:
        return key
    if key in SYNONYMS:
        return SYNONYMS[key]
    supported = ", ".join(EMOTIONS)
    raise ValueError(f"unknown emotion {name!r}; supported: {supported} (and synonyms)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prosody:
    """What one utterance asks of the engine and the expressive stage."""

    length_scale: float
    pause_scale: float
    """Extra factor on pause (punctuation) durations."""
    f0_shift_st: float
    f0_range: float
    gain_db: float
    tilt_db_per_octave: float
    breathiness: float
    end_contour_st: float
    limited: tuple[str, ...] = ()
    """What composition held to the engine's ranges (SPEC.md §4.4.1), for people: one
    line per control, naming the options that asked for more (empty: nothing held)."""

    @property
    def is_neutral(self) -> bool:
        """Nothing for the expressive stage to do (the engine output is used as is)."""
        return (
            self.f0_shift_st == 0.0
            and self.f0_range == 1.0
            and self.gain_db == 0.0
            and self.tilt_db_per_octave == 0.0
            and self.breathiness == 0.0
            and self.end_contour_st == 0.0
        )


def prosody(
    emotion: str = "neutral",
    intensity: float = DEFAULT_INTENSITY,
    speed: float = 1.0,
    pitch_st: float = 0.0,
    volume_db: float = 0.0,
) -> Prosody:
    """Compose an emotion at an intensity with explicit speed, pitch and volume.

    Deviations scale linearly with ``intensity`` (factors geometrically), then
    the explicit controls add on top. Neutral at any intensity with no
    pitch/volume change needs no stage.

    Each control is checked against its range, and the three composed ones (rate,
    pitch level, loudness) are held to the same ranges, so that every accepted
    combination is rendered: ``speed`` 4 with an emotion that speeds up speaks at 4×,
    and ``Prosody.limited`` says so (SPEC.md §4.4.1).

    Raises:
        ValueError: unknown emotion, or a control out of range.
    """
    check_range("intensity", intensity, INTENSITY_RANGE)
    check_range("speed", speed, SPEED_RANGE)
    check_range("pitch", pitch_st, PITCH_RANGE_ST, " semitones")
    check_range("volume", volume_db, VOLUME_RANGE_DB, " dB")
    name = resolve(emotion)
    p = EMOTIONS[name]
    k = intensity
    asked = f"with emotion {name} at intensity {k:g}"
    limited: list[str] = []
    rate = _hold(
        math.exp(k * math.log(p.rate)) * speed,
        SPEED_RANGE,
        lambda x, v: f"speaking rate limited to {v:g}× (speed {speed:g} {asked} asks for {x:.3g}×)",
        limited,
    )
    shift = _hold(
        k * p.f0_shift_st + pitch_st,
        PITCH_RANGE_ST,
        lambda x, v: (
            f"pitch limited to {v:+g} semitones (pitch {pitch_st:g} {asked} asks for {x:+.3g})"
        ),
        limited,
    )
    gain = _hold(
        k * p.gain_db + volume_db,
        VOLUME_RANGE_DB,
        lambda x, v: (
            f"loudness limited to {v:+g} dB (volume {volume_db:g} {asked} asks for {x:+.3g} dB)"
        ),
        limited,
    )
    return Prosody(
        length_scale=1.0 / rate,
        pause_scale=math.exp(k * math.log(p.pause)),
        f0_shift_st=shift,
        f0_range=math.exp(k * math.log(p.f0_range)),
        gain_db=gain,
        tilt_db_per_octave=k * p.tilt_db_per_octave,
        breathiness=k * p.breathiness,
        end_contour_st=k * p.end_contour_st,
        limited=tuple(limited),
    )


def _hold(
    value: float,
    bounds: tuple[float, float],
    note: Callable[[float, float], str],
    notes: list[str],
) -> float:
    """``value`` held to ``bounds``; when it had to be, ``note(value, held)`` goes to ``notes``."""
    held = min(max(value, bounds[0]), bounds[1])
    if held != value:
        notes.append(note(value, held))
    return held


def check_range(name: str, value: float, bounds: tuple[float, float], unit: str = "") -> None:
    """Check one control against the engine's range for it.

    Raises:
        ValueError: ``value`` is outside ``bounds`` or NaN (the message names ``name``).
    """
    lo, hi = bounds
    if not lo <= value <= hi:  # also refuses NaN
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}]{unit}, got {value}")
