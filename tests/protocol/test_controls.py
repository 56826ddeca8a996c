"""The controls table (``protocol/controls.py``) is what the codec enforces (SPEC.md §4.4)."""

from __future__ import annotations

import json

import pytest

from voxlive.protocol import Append, InvalidMessage, Limits, Speak, SpeakOptions, decode_client
from voxlive.protocol.controls import CONTROLS, INTENSITY, PITCH, SEED, SPEED, Control
from voxlive.protocol.schema import client_to_wire

from .helpers import raw, uid

SPEAK = {"type": "speak", "id": "u1", "text": "hi"}


def decode_options(**fields: object) -> SpeakOptions:
    message = decode_client(raw(SPEAK | fields), Limits())
    assert isinstance(message, Speak)
    return message.options


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.name)
def test_the_codec_accepts_each_controls_bounds(control: Control[float] | Control[int]) -> None:
    for bound in (control.min, control.max):
        assert getattr(decode_options(**{control.name: bound}), control.name) == bound


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.name)
def test_the_codec_refuses_just_outside_each_controls_range(
    control: Control[float] | Control[int],
) -> None:
    step = 1 if isinstance(control.min, int) else 0.01
    for outside in (control.min - step, control.max + step):
        with pytest.raises(InvalidMessage, match=f"speak.{control.name}"):
            decode_options(**{control.name: outside})


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.name)
def test_a_left_out_control_takes_the_tables_default(control: Control[float] | Control[int]):
    assert getattr(decode_options(), control.name) == control.default
    assert getattr(SpeakOptions(), control.name) == control.default


def test_an_unset_intensity_is_left_out_of_the_wire_map() -> None:
    assert INTENSITY.default is None
    assert "intensity" not in client_to_wire(Speak(uid("u1"), "hi"))
    assert "intensity" not in client_to_wire(Append(uid("u1"), "hi", SpeakOptions()))
    assert client_to_wire(Speak(uid("u1"), "hi", SpeakOptions(intensity=0.0)))["intensity"] == 0


def test_a_sent_intensity_round_trips_and_a_null_one_is_refused() -> None:
    assert decode_options(intensity=0.4).intensity == 0.4
    with pytest.raises(InvalidMessage, match="speak.intensity"):
        decode_options(intensity=None)
    data = json.dumps(SPEAK | {"intensity": None})
    with pytest.raises(InvalidMessage):
        decode_client(data, Limits())


def test_check_names_the_label_the_range_and_the_unit() -> None:
    assert PITCH.check(12.0, "--pitch") == 12.0
    with pytest.raises(ValueError, match=r"^--pitch must be in \[-12, 12\] semitones, got 20.0$"):
        PITCH.check(20.0, "--pitch")
    with pytest.raises(ValueError, match=r"^speed must be in \[0.25, 4\], got nan$"):
        SPEED.check(float("nan"))
    assert SEED.range_text == f"[0, {2**63 - 1}]"


def test_flag_help_shows_range_and_default() -> None:
    assert SPEED.flag_help() == "speaking rate, 1 = normal ([0.25, 4], default 1)"
    assert INTENSITY.flag_help().endswith("([0, 1])")
    assert INTENSITY.flag_help("0.7").endswith("([0, 1], default 0.7)")
    with pytest.raises(LookupError):
        _ = INTENSITY.default_value
