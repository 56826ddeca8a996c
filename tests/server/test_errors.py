"""Every engine error code has a wire error code (``server/errors.py``, SPEC.md §6)."""

from __future__ import annotations

from typing import get_args

import pytest

from voxlive.engine.frontend import TextErrorCode
from voxlive.engine.reference import ReferenceAudioErrorCode
from voxlive.protocol.types import ERROR_CODES, REFERENCE_ERROR_CODES
from voxlive.server.errors import ENGINE_CODES, WIRE_CODES, wire_code


@pytest.mark.parametrize("code", ENGINE_CODES)
def test_every_engine_code_maps_to_a_wire_code(code) -> None:
    assert code in WIRE_CODES
    assert wire_code(code) in ERROR_CODES


def test_reference_codes_map_onto_the_wires_reference_codes() -> None:
    assert sorted(wire_code(c) for c in get_args(ReferenceAudioErrorCode)) == sorted(
        REFERENCE_ERROR_CODES
    )


def test_text_codes_are_their_wire_namesakes() -> None:
    assert {c: wire_code(c) for c in get_args(TextErrorCode)} == {
        "empty_text": "empty_text",
        "text_too_long": "text_too_long",
        "unsupported_language": "unsupported_language",
    }


def test_an_unknown_engine_code_is_sent_as_internal() -> None:
    assert wire_code("no_such_code") == "internal"
