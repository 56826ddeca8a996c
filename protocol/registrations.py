"""Bookkeeping of one connection's ``voice.register`` requests (SPEC.md §4.6).

A registration is **uploading** from its chunk ``seq`` 0 until its ``final`` chunk, then
**pending** until the server answers it (``voice.ready`` or an ``error``). Both count
against ``limits.max_registrations``. Request ids are their own namespace: a request
may share its id with an utterance.

Like ``Utterances``, every method checks before it changes anything except where noted:
a rejected chunk of an upload in progress **ends that upload** (the data it carried is
lost, so the rest could never assemble into the client's file).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from .errors import InvalidMessage, InvalidState
from .messages import (
    Error,
    Limits,
    ServerMessage,
    VoiceDeleted,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
)
from .types import UtteranceId

__all__ = ["REGISTRATION_RETRY_AFTER_MS", "Registrations", "VoiceAnswers"]

REGISTRATION_RETRY_AFTER_MS: Final = 1000
"""``retry_after_ms`` of a ``voice.register`` refused with ``too_many_inflight`` (SPEC.md
§4.6): a slot frees with the next answer; analysing one clip takes about a second on a
CPU server."""


@dataclass(slots=True)
class _Upload:
    first: VoiceRegister
    """Chunk 0: carries ``name``, ``scope`` and ``consent``."""
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    next_seq: int = 1


class Registrations:
    """The ``voice.register`` requests in flight on one connection.

    Args:
        limits: ``max_registrations`` and ``max_reference_bytes`` are enforced here.
    """

    __slots__ = ("_limits", "_pending", "_uploads")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._uploads: dict[UtteranceId, _Upload] = {}
        self._pending: set[UtteranceId] = set()

    @property
    def ids(self) -> frozenset[UtteranceId]:
        """Requests uploading or waiting for their answer."""
        return frozenset(self._uploads) | frozenset(self._pending)

    @property
    def uploading(self) -> frozenset[UtteranceId]:
        """Requests whose final chunk has not arrived yet."""
        return frozenset(self._uploads)

    def receive(self, chunk: VoiceRegister) -> VoiceRegister | None:
        """Account for one chunk; return the assembled request once it is complete.

        Raises:
            InvalidMessage: ``duplicate_id`` (chunk 0 of a request in flight),
                ``too_many_inflight``, ``too_large`` (the upload passed
                ``max_reference_bytes``), ``invalid_message`` (a later chunk of no upload
                in progress, out of order, or carrying ``name``/``scope``/``consent``).
        """
        upload = self._uploads.get(chunk.id)
        if chunk.seq == 0:
            if upload is not None or chunk.id in self._pending:
                self._uploads.pop(chunk.id, None)
                message = f"registration {chunk.id} is already in flight"
                raise InvalidMessage(message, code="duplicate_id", id=chunk.id)
            if len(self._uploads) + len(self._pending) >= self._limits.max_registrations:
                message = f"{self._limits.max_registrations} registrations are already in flight"
                raise InvalidMessage(
                    message,
                    code="too_many_inflight",
                    id=chunk.id,
                    retry_after_ms=REGISTRATION_RETRY_AFTER_MS,
                )
            upload = _Upload(chunk)
        else:
            if upload is None:
                message = f"chunk {chunk.seq} of registration {chunk.id}, which is not uploading"
                raise InvalidMessage(message, id=chunk.id)
            self._check_later(upload, chunk)
        return self._add(upload, chunk)

    def _check_later(self, upload: _Upload, chunk: VoiceRegister) -> None:
        problem = None
        if chunk.seq != upload.next_seq:
            problem = f"expected chunk {upload.next_seq}, got {chunk.seq}"
        elif chunk.name is not None or chunk.scope != "session" or chunk.consent is not None:
            problem = "name, scope and consent are allowed only on chunk 0"
        if problem is not None:
            del self._uploads[chunk.id]
            message = f"registration {chunk.id}: {problem}; the upload is abandoned"
            raise InvalidMessage(message, id=chunk.id)

    def _add(self, upload: _Upload, chunk: VoiceRegister) -> VoiceRegister | None:
        size = upload.size + len(chunk.audio)
        if size > self._limits.max_reference_bytes:
            self._uploads.pop(chunk.id, None)
            limit = self._limits.max_reference_bytes
            message = f"the upload passed {limit} bytes, the limit; it is abandoned"
            raise InvalidMessage(message, code="too_large", id=chunk.id)
        upload.parts.append(chunk.audio)
        upload.size = size
        upload.next_seq = chunk.seq + 1
        if not chunk.final:
            self._uploads[chunk.id] = upload
            return None
        self._uploads.pop(chunk.id, None)
        self._pending.add(chunk.id)
        return replace(upload.first, audio=b"".join(upload.parts), seq=0, final=True)

    def answer(self, id: UtteranceId) -> None:
        """The server answered registration ``id``: its id and slot are free.

        Raises:
            InvalidState: ``id`` is not waiting for an answer.
        """
        if id not in self._pending:
            raise InvalidState(f"registration {id} is not waiting for an answer")
        self._pending.remove(id)


class VoiceAnswers:
    """The server session's answers to voice requests (SPEC.md §4.6).

    Part of :class:`~voxlive.protocol.session.Session`, which provides the state below.
    """

    _registrations: Registrations
    _outgoing: list[bytes | str]

    def _can_send(self) -> bool:
        raise NotImplementedError

    def _encode(self, message: ServerMessage) -> bytes | str:
        raise NotImplementedError

    @property
    def registrations(self) -> frozenset[UtteranceId]:
        """Ids of ``voice.register`` requests uploading or waiting for their answer."""
        return self._registrations.ids

    @property
    def uploading(self) -> frozenset[UtteranceId]:
        """Ids of ``voice.register`` requests whose final chunk has not arrived."""
        return self._registrations.uploading

    def send_voice_ready(self, ready: VoiceReady) -> None:
        """Answer a ``VoiceRegister`` event: the voice is registered.

        Raises:
            InvalidState: before ``hello``; ``ready.id`` is not a registration waiting
                for its answer; a number in the summary is not finite.
        """
        if self._can_send():
            data = self._encode(ready)
            self._registrations.answer(ready.id)
            self._outgoing.append(data)

    def send_voice_error(self, error: Error) -> None:
        """Answer a ``VoiceRegister`` event with an error (``too_short``, ``silent``, …),
        sent with ``about: "request"``.

        Raises:
            InvalidState: before ``hello``; ``error.id`` is not a registration waiting
                for its answer.
        """
        if self._can_send():
            if error.id is None:
                raise InvalidState("a registration error must carry the request id")
            data = self._encode(replace(error, about="request"))
            self._registrations.answer(error.id)
            self._outgoing.append(data)

    def send_voice_list(self, listing: VoiceListing) -> None:
        """Answer a ``VoiceList`` event.

        Raises:
            InvalidState: before ``hello``, or a number in a summary is not finite.
        """
        if self._can_send():
            self._outgoing.append(self._encode(listing))

    def send_voice_deleted(self, deleted: VoiceDeleted) -> None:
        """Answer a ``VoiceDelete`` event.

        Raises:
            InvalidState: before ``hello``.
        """
        if self._can_send():
            self._outgoing.append(self._encode(deleted))
