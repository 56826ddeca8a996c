"""The wire's control ranges (``protocol/controls.py``) are the ones the engine renders.

The protocol cannot import the engine, so the two tables are kept equal here: a value
the codec accepts must never be refused later by the engine, and the reverse.
"""

from __future__ import annotations

import pytest

from voxlive.engine import emotion
from voxlive.protocol.controls import INTENSITY, PITCH, SPEED, VOLUME, Control


@pytest.mark.parametrize(
    ("control", "engine_range"),
    [
        (INTENSITY, emotion.INTENSITY_RANGE),
        (SPEED, emotion.SPEED_RANGE),
        (PITCH, emotion.PITCH_RANGE_ST),
        (VOLUME, emotion.VOLUME_RANGE_DB),
    ],
    ids=lambda x: x.name if isinstance(x, Control) else "",
)
def test_the_wire_accepts_exactly_what_the_engine_renders(control, engine_range) -> None:
    assert (control.min, control.max) == engine_range
    if control.default is not None:
        name = {"pitch": "pitch_st", "volume": "volume_db"}.get(control.name, control.name)
        emotion.prosody("neutral", **{name: control.default})  # the default is renderable


def test_an_unset_intensity_is_the_engines_default() -> None:
    assert INTENSITY.default is None  # so the number lives only in the engine
    assert INTENSITY.contains(emotion.DEFAULT_INTENSITY)
