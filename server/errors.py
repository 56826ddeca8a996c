"""Engine error codes onto wire error codes (SPEC.md §6), in one place.

The engine names why it refused an input with a ``code`` string of its own
(``engine.reference.ReferenceAudioError``, ``engine.frontend.TextError``); the wire's
codes are defined in ``protocol.types``. Neither package imports the other, so the
server translates here. Today every engine code has a wire code of the same name; the
table is still built and checked (``tests/server/test_errors.py``) so that an engine
code without a wire counterpart is caught by a test, not sent as an unknown code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, get_args

from voxlive.engine.frontend import TextErrorCode
from voxlive.engine.reference import ReferenceAudioErrorCode
from voxlive.protocol.types import ERROR_CODES, ErrorCode

__all__ = ["ENGINE_CODES", "WIRE_CODES", "wire_code"]

ENGINE_CODES: Final[tuple[str, ...]] = (
    *get_args(ReferenceAudioErrorCode),
    *get_args(TextErrorCode),
)
"""Every code an engine error may carry."""

_BY_NAME: Final[dict[str, ErrorCode]] = {code: code for code in ERROR_CODES}

WIRE_CODES: Final[Mapping[str, ErrorCode]] = MappingProxyType(
    {code: _BY_NAME[code] for code in ENGINE_CODES if code in _BY_NAME}
)
"""Engine code → the wire code sent for it."""


def wire_code(engine_code: str) -> ErrorCode:
    """The wire code for an engine error's ``code``.

    An engine code missing from :data:`WIRE_CODES` (which the tests forbid) is sent
    as ``internal`` rather than as a code clients do not know.
    """
    return WIRE_CODES.get(engine_code, "internal")
