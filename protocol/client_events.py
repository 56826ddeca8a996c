"""What ``ClientSession.events_received`` returns (SPEC.md §4–§6, seen from the client).

Server messages about one utterance come wrapped in ``Received`` with the utterance's
id (audio frames name only their stream); answers to voice requests in ``Answered``.
The other events say what the session made of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .messages import (
    AudioFrame,
    Done,
    Error,
    Marks,
    Started,
    VoiceDeleted,
    VoiceListing,
    VoiceReady,
    Welcome,
)
from .types import ErrorCode, UtteranceId

__all__ = [
    "REJECTED_CODES",
    "Answered",
    "ClientEvent",
    "Ignored",
    "Received",
    "Refused",
    "Unclaimed",
    "UtteranceEvent",
    "Violation",
    "VoiceAnswer",
]

REJECTED_CODES: Final[frozenset[ErrorCode]] = frozenset(
    {
        "invalid_message",
        "unsupported",
        "duplicate_id",
        "too_many_inflight",
        "rate_limited",
        "text_rejected",
    }
)
"""Error codes with which the server refuses to open an utterance at all.

No ``done`` follows such an error, so the session ends the utterance itself with a
``Done`` of status ``failed`` and no stream. The session checks text length and
emptiness before sending, so ``text_too_long`` always comes from an utterance the server
did open (and will end with its own ``done``), and ``empty_text`` never comes for one
it sent: text with nothing speakable in it ends with a ``failed`` done and warnings
(SPEC.md §4.7). SPEC.md §6 says for every code whether a ``done`` follows.
"""

UtteranceEvent = AudioFrame | Started | Marks | Done | Error
"""What happens to one utterance, in order; the last one is always a ``Done``."""

VoiceAnswer = VoiceReady | VoiceListing | VoiceDeleted
"""The answer to a voice request that succeeded."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The server answered ``hello`` with an error; it closes the connection next (§7)."""

    error: Error


@dataclass(frozen=True, slots=True)
class Received:
    """One event of in-flight utterance ``id``; a ``Done`` event ends it (its id is free)."""

    id: UtteranceId
    event: UtteranceEvent


@dataclass(frozen=True, slots=True)
class Answered:
    """The answer to the voice request ``id`` (``send_voice_*``); the request is over."""

    id: UtteranceId
    answer: VoiceAnswer | Error


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """An error that names no utterance or request in flight."""

    error: Error


@dataclass(frozen=True, slots=True)
class Violation:
    """The server broke the protocol.

    With ``utterance`` or ``request`` set, only that one is given up (no more events
    for it, except its ``Done``); with neither, the connection is: ``close_code()`` is set.
    """

    message: str
    utterance: UtteranceId | None = None
    request: UtteranceId | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message about nothing the session waits for; dropped (the reason is for logs)."""

    reason: str


ClientEvent = Welcome | Refused | Received | Answered | Unclaimed | Violation | Ignored
"""Every event ``ClientSession.events_received`` returns."""
