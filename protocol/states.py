"""The connection's states and its one table of legal transitions (SPEC.md §9.1).

h11 rule: the connection state changes only through ``TRANSITIONS``; no code but
``Session._advance`` assigns ``Session._state``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["TRANSITIONS", "State", "Trigger"]


class State(enum.Enum):
    """Connection state (SPEC.md §9.1)."""

    AWAITING_HELLO = "awaiting_hello"
    """Only ``hello`` is accepted."""
    OPEN = "open"
    """``welcome`` was sent; utterance messages are accepted."""
    CLOSED = "closed"
    """A close code is set; input is ignored and nothing more is sent."""


class Trigger(enum.Enum):
    """What moves the connection from one state to another."""

    HELLO = "hello"
    """A valid ``hello`` was answered with ``welcome``."""
    FAIL = "fail"
    """The peer caused a connection-level error; the error message is queued."""
    CLOSE = "close"
    """The server called ``Session.close``."""


TRANSITIONS: Final[Mapping[tuple[State, Trigger], State]] = MappingProxyType(
    {
        (State.AWAITING_HELLO, Trigger.HELLO): State.OPEN,
        (State.AWAITING_HELLO, Trigger.FAIL): State.CLOSED,
        (State.AWAITING_HELLO, Trigger.CLOSE): State.CLOSED,
        (State.OPEN, Trigger.FAIL): State.CLOSED,
        (State.OPEN, Trigger.CLOSE): State.CLOSED,
    }
)
"""Every legal transition; anything else is a bug."""
