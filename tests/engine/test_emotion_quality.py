"""Emotional speech sounds as clean as neutral, through the engine's own path.

The bundled voice's emotions, pitch and volume go through the PSOLA stage, and so
does a registered voice (its adaptation is fitted there; see ``test_adapt.py``).

Held-out sentences (``voxlive.bench.stages.HELD_OUT``: the stage was not tuned on
them), same seed, rendered by :meth:`Synthesizer.tts_batch` neutral and in each
emotion at full intensity; Distill-MOS judges every clip (``tests/mos.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.bench.stages import HELD_OUT
from voxlive.engine.expression import Expression
from voxlive.engine.psola import PsolaAdapter
from voxlive.engine.transform import VoiceTransform

from ..mos import mos

TEXTS = HELD_OUT[:4]
EMOTIONS = ("happy", "sad", "angry")
MAX_DROP = 0.3
"""How far an emotion's mean MOS may fall below neutral's on the same sentences."""


def test_the_stage_is_psola_in_the_bundled_voice_and_in_a_registered_one() -> None:
    rate = 22050
    assert Expression.create(center_hz=90.0).stage(rate) is None
    for controls in ({"emotion": "sad"}, {"pitch_st": 2.0}, {"volume_db": -6.0}):
        stage = Expression.create(center_hz=90.0, **controls).stage(rate)
        assert isinstance(stage, PsolaAdapter), controls
    fitted = VoiceTransform(f0_shift_st=3.0, formant_scale=1.1)
    for emotion in (None, "happy"):
        expr = Expression.create(emotion=emotion, voice=fitted, center_hz=90.0)
        stage = expr.stage(rate)
        assert isinstance(stage, PsolaAdapter), emotion
        assert stage.transform == expr.transform  # one pass: the voice's and the emotion's


@pytest.mark.slow
def test_emotions_score_within_a_small_margin_of_neutral() -> None:
    from voxlive.engine.synthesizer import Synthesizer

    synth = Synthesizer()
    rate = synth.sample_rate

    def mean_mos(emotion: str | None) -> float:
        audio = synth.tts_batch(TEXTS, [emotion] * len(TEXTS), seed=1, intensity=1.0)
        return float(np.mean([mos(a, rate) for a in audio]))

    neutral = mean_mos(None)
    scores = {name: mean_mos(name) for name in EMOTIONS}
    low = {name: s for name, s in scores.items() if s < neutral - MAX_DROP}
    assert not low, f"neutral {neutral:.3f}, emotions {scores}"
