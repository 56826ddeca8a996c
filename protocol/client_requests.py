"""The client's voice requests in flight: building them and matching answers (SPEC.md §4.6).

A request id (``voxlive-req-1``, …) lives in its own namespace, apart from utterance
ids. Each request expects one kind of answer (``voice.ready`` for ``voice.register``,
…) or an ``error`` naming it; either ends it.
"""

from __future__ import annotations

import itertools
import json
from typing import Final, Literal

from .client_events import Answered, ClientEvent, Ignored, Violation, VoiceAnswer
from .errors import InvalidMessage
from .fields import Fields
from .messages import (
    Consent,
    Error,
    Limits,
    VoiceDelete,
    VoiceDeleted,
    VoiceList,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
)
from .schema import consent_from_wire, consent_to_wire
from .types import UtteranceId, VoiceScope

__all__ = ["CHUNK_OVERHEAD", "VoiceRequests", "check_consent", "is_id"]

CHUNK_OVERHEAD: Final = 256
"""Bytes of msgpack map and fields around the audio of one ``voice.register`` chunk."""

_Kind = Literal["register", "list", "delete"]
_ANSWERS: Final[dict[_Kind, type[VoiceAnswer]]] = {
    "register": VoiceReady,
    "list": VoiceListing,
    "delete": VoiceDeleted,
}


def is_id(value: str) -> bool:
    """Whether ``value`` is a valid utterance, request or voice id (SPEC.md §4.2)."""
    try:
        Fields({"id": value}, "id").get_id()
    except InvalidMessage:
        return False
    return True


def check_consent(consent: Consent) -> None:
    """Check ``consent`` as a server reads it (SPEC.md §4.6, v1.7).

    Raises:
        ValueError: it would be refused with ``invalid_message`` (the message says why).
    """
    try:
        consent_from_wire(consent_to_wire(consent))
    except InvalidMessage as exc:
        raise ValueError(exc.message) from None


class VoiceRequests:
    """Voice requests sent and not yet answered."""

    __slots__ = ("_ids", "_kinds")

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._kinds: dict[UtteranceId, _Kind] = {}

    def __contains__(self, id: object) -> bool:
        return id in self._kinds

    def register(
        self,
        audio: bytes,
        limits: Limits,
        *,
        name: str | None,
        scope: VoiceScope,
        chunk_bytes: int,
        consent: Consent | None = None,
    ) -> list[VoiceRegister]:
        """Return the chunks of a new ``voice.register`` upload, in order.

        Each chunk's audio is at most ``chunk_bytes``, and small enough for the whole
        message to stay under ``limits.max_message_bytes``. ``consent`` goes on chunk 0.

        Raises:
            ValueError: ``audio`` is larger than ``limits.max_reference_bytes``, or a bad
                ``name``/``chunk_bytes``/``consent`` (one the server would refuse).
        """
        if len(audio) > limits.max_reference_bytes:
            limit = limits.max_reference_bytes
            raise ValueError(f"too_large: {len(audio)} bytes; the limit is {limit}")
        if name is not None and not is_id(name):
            raise ValueError(f"voice name {name!r}: use 1-64 characters of A-Z a-z 0-9 . _ : -")
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        if consent is not None:
            check_consent(consent)
        # Chunk 0 carries the consent too: its JSON is at least as long as its msgpack.
        extra = 0 if consent is None else len(json.dumps(consent_to_wire(consent)))
        overhead = CHUNK_OVERHEAD + extra
        size = max(1, min(chunk_bytes, limits.max_message_bytes - overhead))
        pieces = [audio[i : i + size] for i in range(0, len(audio), size)] or [b""]
        id = self._new("register")
        return [
            VoiceRegister(
                id,
                piece,
                seq=seq,
                final=seq == len(pieces) - 1,
                name=name if seq == 0 else None,
                scope=scope if seq == 0 else "session",
                consent=consent if seq == 0 else None,
            )
            for seq, piece in enumerate(pieces)
        ]

    def list(self) -> VoiceList:
        """Return a new ``voice.list`` request."""
        return VoiceList(self._new("list"))

    def delete(self, voice: str) -> VoiceDelete:
        """Return a new ``voice.delete`` request.

        Raises:
            ValueError: ``voice`` is not a valid voice id.
        """
        if not is_id(voice):
            raise ValueError(f"voice {voice!r} is not a valid voice id")
        return VoiceDelete(self._new("delete"), voice)

    def answer(self, answer: VoiceAnswer | Error) -> ClientEvent:
        """End the request ``answer`` names, and say what the answer means.

        Returns:
            ``Answered``; ``Violation`` for an answer of the wrong kind; ``Ignored`` for
            an answer to no request in flight.
        """
        id = answer.id
        assert id is not None, "the session passes only errors naming a request"
        kind = self._kinds.pop(id, None)
        name = type(answer).__name__
        if kind is None:
            return Ignored(f"ignored {name} for unknown request {id}")
        if not isinstance(answer, Error | _ANSWERS[kind]):
            message = f"expected {_ANSWERS[kind].__name__} for {id}, got {name}"
            return Violation(message, request=id)
        return Answered(id, answer)

    def _new(self, kind: _Kind) -> UtteranceId:
        id = UtteranceId(f"voxlive-req-{next(self._ids)}")
        self._kinds[id] = kind
        return id
