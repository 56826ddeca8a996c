"""How one utterance is performed: emotion, speed, pitch, volume and voice together.

An :class:`Expression` turns the controls of one utterance into what the two
stages need: engine requests (length scale, duration noise, per-phoneme pause
scales) and, when anything is left for it, one expressive stage that moves pitch
level/range/contour, spectral tilt, breathiness and level *and* the voice
adaptation of a registered voice in the same pass. The stage is PSOLA
(``psola.py``: the engine's own waveform, re-spaced), the stage registered
voices are fitted on (``adapt.py``). Neutral speech in the bundled voice has no
stage at all: its samples are the engine's, bit for bit.

    expr = Expression.create(emotion="happy", intensity=0.8, center_hz=probe_f0)
    request = expr.request(sentence, params)     # per sentence, into a batch
    stage = expr.stage(sample_rate)              # per utterance; None = untouched
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from .emotion import DEFAULT_INTENSITY, SPEED_RANGE, Prosody, prosody, resolve
from .frontend import FrontendResult
from .layout import PAUSE_PHONEMES, pause_scales, phrase_span
from .marked import Watermarker
from .psola import PsolaAdapter
from .transform import VoiceTransform
from .voice import SynthesisParams, SynthesisRequest, Voice

__all__ = [
    "PAUSE_PHONEMES",
    "Expression",
    "Stage",
    "check_rate",
    "pause_scales",
    "phrase_span",
    "render",
]


class Stage(Protocol):
    """One utterance's streaming stage: output exactly as long as its input."""

    def phrase(self, start: int, end: int) -> None:
        """Speech of a phrase spans input samples ``[start, end)`` (before feeding them)."""

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; returns the adapted samples now final."""

    def flush(self) -> np.ndarray:
        """End of input: the rest."""


@dataclass(frozen=True, slots=True)
class Expression:
    """One utterance's controls, resolved (see module docstring)."""

    emotion: str
    """Canonical emotion name (synonyms resolved)."""
    intensity: float
    prosody: Prosody
    transform: VoiceTransform | None
    """The stage's transform (voice ∘ emotion); None: no stage."""
    center_hz: float
    """Pitch centre of range scaling: the bundled voice's median F0."""
    speed: float = 1.0
    pitch_st: float = 0.0
    volume_db: float = 0.0
    voice: VoiceTransform | None = None

    @classmethod
    def create(
        cls,
        *,
        emotion: str | None = None,
        intensity: float = DEFAULT_INTENSITY,
        speed: float = 1.0,
        pitch_st: float = 0.0,
        volume_db: float = 0.0,
        voice: VoiceTransform | None = None,
        center_hz: float = 100.0,
    ) -> Expression:
        """Resolve the controls.

        Args:
            emotion: a tag or synonym (None: neutral).
            voice: a registered voice's fitted transform (None: the bundled voice).

        Raises:
            ValueError: unknown emotion (the message lists the supported ones), or a
                control out of range.
        """
        name = "neutral" if emotion is None else resolve(emotion)
        p = prosody(name, intensity, speed, pitch_st, volume_db)
        emotive = VoiceTransform(
            f0_shift_st=p.f0_shift_st,
            f0_range=p.f0_range,
            tilt_db_per_octave=p.tilt_db_per_octave,
            gain_db=p.gain_db,
            breathiness=p.breathiness,
            end_contour_st=p.end_contour_st,
        )
        combined = emotive if voice is None else voice.then(emotive)
        transform = None if combined.is_identity() else combined
        return cls(name, intensity, p, transform, center_hz, speed, pitch_st, volume_db, voice)

    def with_voice(self, voice: VoiceTransform) -> Expression:
        """The same controls spoken in a registered voice (``voice``: its fitted transform)."""
        if self.voice is not None:
            raise ValueError("this expression already has a voice")
        return Expression.create(
            emotion=self.emotion,
            intensity=self.intensity,
            speed=self.speed,
            pitch_st=self.pitch_st,
            volume_db=self.volume_db,
            voice=voice,
            center_hz=self.center_hz,
        )

    def params(self, base: SynthesisParams) -> SynthesisParams:
        """The engine controls for this utterance (its rate)."""
        return replace(base, length_scale=base.length_scale * self.prosody.length_scale)

    def request(
        self, ids: Sequence[int], phonemes: Sequence[str], params: SynthesisParams
    ) -> SynthesisRequest:
        """One sentence's engine request; ``params`` already went through :meth:`params`."""
        scales = pause_scales(len(ids), phonemes, self.prosody.pause_scale)
        return SynthesisRequest(ids, params, scales)

    def stage(self, sample_rate: int) -> Stage | None:
        """A fresh streaming stage for one utterance, or None (output untouched).

        The one place the stage is chosen: PSOLA, for the bundled voice and a
        registered one alike (the voice's transform and the emotion's in one pass).
        """
        if self.transform is None:
            return None
        return PsolaAdapter(self.transform, sample_rate, self.center_hz)


def check_rate(expression: Expression, params: SynthesisParams, where: str = "") -> None:
    """Refuse a speed that, with the emotion's own rate, leaves the engine's range.

    The speed is the expression's and the base ``params``' together (callers put
    it in either place).

    The expression's own speed is already limited to the engine's range when it is
    composed (``emotion.prosody``); a speed in ``params`` (the in-process API) is not.

    Raises:
        ValueError: the combined rate is outside the engine's (names both causes).
    """
    try:
        expression.params(params)
    except ValueError:
        speed = expression.speed / params.length_scale
        lo, hi = SPEED_RANGE
        raise ValueError(
            f"{where}speed {speed:g} with emotion {expression.emotion!r} at intensity "
            f"{expression.intensity:g} is too far from normal (together they must stay "
            f"within {lo:g}–{hi:g}× the voice's rate)"
        ) from None


def render(
    voice: Voice,
    texts: Sequence[FrontendResult],
    expressions: Sequence[Expression],
    params: Sequence[SynthesisParams],
    max_batch: int = 8,
    timings: dict[str, float] | None = None,
    marker: Watermarker | None = None,
) -> list[np.ndarray]:
    """Whole audio of several texts, each performed by its own expression, in one batch.

    Sentence ``i`` of a text uses ``params.offset_seed(i)``, as :meth:`Voice.requests`.
    The stage runs the same streaming code as the server, on whole texts; ``marker``
    watermarks the texts it marks (``marked.py``), as one batch.
    ``timings``, if given, receives ``engine_s``, ``stage_s`` and ``mark_s`` (wall seconds).
    """
    groups = []
    for result, expr, base in zip(texts, expressions, params, strict=True):
        p = expr.params(base)
        groups.append(
            [
                expr.request(s.ids, s.phonemes, p.offset_seed(i))
                for i, s in enumerate(result.sentences)
            ]
        )
    durations: list[list[list[int]]] = []
    t0 = time.perf_counter()
    audio = voice.synthesize_groups(groups, max_batch=max_batch, durations=durations)
    t1 = time.perf_counter()
    out = []
    for result, expr, a, timing in zip(texts, expressions, audio, durations):
        stage = expr.stage(voice.sample_rate)
        if stage is None:
            out.append(a)
            continue
        at = 0
        for sentence, d in zip(result.sentences, timing):
            start, end = phrase_span(sentence.phonemes, d)
            stage.phrase(at + start, at + end)
            at += sum(d)
        out.append(np.concatenate([stage.process(a), stage.flush()]))
    t2 = time.perf_counter()
    if marker is not None:
        marked = [i for i, e in enumerate(expressions) if marker.marks(e.voice)]
        for i, a in zip(marked, marker.mark([out[i] for i in marked], voice.sample_rate)):
            out[i] = a
    if timings is not None:
        timings["engine_s"] = t1 - t0
        timings["stage_s"] = t2 - t1
        timings["mark_s"] = time.perf_counter() - t2
    return out
