"""Protocol exceptions, each carrying the error code and close code it maps to.

As in h11 (``error_status_hint``) every exception knows how it ends up on the wire:
``code`` is the ``error.code`` sent to the peer and ``close_code`` is the WebSocket close
code that follows, or ``None`` when the connection stays open (SPEC.md §6–§7).

Peer input never raises out of ``Session``: it catches these and turns them into an
``Error`` message plus, maybe, a close code. ``InvalidState`` is different: it reports
local misuse of the API (a server bug) and is meant to propagate.
"""

from __future__ import annotations

from typing import ClassVar

from .messages import Error
from .types import CloseCode, ErrorAbout, ErrorCode, UtteranceId

__all__ = [
    "AuthFailed",
    "CloseCode",
    "InvalidMessage",
    "InvalidState",
    "MalformedMessage",
    "MessageTooBig",
    "NotAdmitted",
    "PolicyViolation",
    "ProtocolError",
    "UnknownRequest",
    "UnsupportedVersion",
]


class ProtocolError(Exception):
    """Base class of every protocol error.

    Args:
        message: Human-readable detail; it is sent to the peer, so it must not contain
            secrets or unsanitized peer input.
        code: Overrides the class's default ``code``.
        id: The utterance concerned, if any.
        retry_after_ms: Set for a refusal that may succeed later (``too_many_inflight``):
            the error is then ``retryable`` with this hint.

    Attributes:
        code: The ``error.code`` sent to the peer.
        close_code: The close code that follows the error, or ``None`` to stay open.
        id: The utterance concerned, or ``None``.
        retry_after_ms: The retry hint, or ``None`` when retrying cannot help.
        about: What ``id`` names (v1.6, SPEC.md §5.5); set by the session that reports
            the error, which knows the message it came from.
    """

    default_code: ClassVar[ErrorCode] = "invalid_message"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.PROTOCOL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        id: UtteranceId | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code if code is not None else self.default_code
        self.close_code: CloseCode | None = self.default_close_code
        self.id = id
        self.retry_after_ms = retry_after_ms
        self.about: ErrorAbout | None = None

    def to_error(self) -> Error:
        """Return the ``error`` message that reports this exception to the peer."""
        retryable = self.retry_after_ms is not None
        return Error(self.code, self.message, self.id, retryable, self.retry_after_ms, self.about)


class MalformedMessage(ProtocolError):
    """The frame is not msgpack/JSON, not a map, or has no string ``type``. Closes 1007."""

    default_code: ClassVar[ErrorCode] = "malformed"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.INVALID_DATA


class MessageTooBig(ProtocolError):
    """The frame is larger than ``limits.max_message_bytes``. Closes 1009."""

    default_code: ClassVar[ErrorCode] = "message_too_big"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.MESSAGE_TOO_BIG


class UnsupportedVersion(ProtocolError):
    """``hello.version`` is not one this server speaks. Closes 4001."""

    default_code: ClassVar[ErrorCode] = "unsupported_version"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.UNSUPPORTED_VERSION


class UnknownRequest(ProtocolError):
    """The ``type`` names no message of this protocol version. Stays open."""

    default_code: ClassVar[ErrorCode] = "unknown_type"
    default_close_code: ClassVar[CloseCode | None] = None


class InvalidMessage(ProtocolError):
    """A message, or the utterance it names, was rejected. Stays open.

    ``code`` is ``invalid_message`` (a missing, extra or ill-typed field) unless a more
    precise one applies: ``empty_text``, ``text_too_long``, ``unsupported``,
    ``duplicate_id``, ``unknown_id`` or ``too_many_inflight``.
    """

    default_code: ClassVar[ErrorCode] = "invalid_message"
    default_close_code: ClassVar[CloseCode | None] = None


class NotAdmitted(ProtocolError):
    """The server's policy refused to open an utterance. Stays open; no ``done`` follows.

    Raised by a session's ``admit`` hook: ``rate_limited`` (retryable, with
    ``retry_after_ms``) or ``text_rejected`` (SPEC.md §6).
    """

    default_code: ClassVar[ErrorCode] = "rate_limited"
    default_close_code: ClassVar[CloseCode | None] = None


class PolicyViolation(ProtocolError):
    """A well-formed message the connection cannot go on after. Closes 1008.

    Used for a message before ``hello`` (``hello_required``), a second or invalid
    ``hello`` (``invalid_message``) and a ``hello`` asking for an unsupported audio
    format (``unsupported``).
    """

    default_code: ClassVar[ErrorCode] = "hello_required"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.POLICY_VIOLATION


class AuthFailed(ProtocolError):
    """The ``hello`` token was rejected. Closes 4003."""

    default_code: ClassVar[ErrorCode] = "auth_failed"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.AUTH_FAILED


class InvalidState(ProtocolError, AssertionError):
    """The local side misused the API (a bug in the caller, never peer input)."""

    default_code: ClassVar[ErrorCode] = "internal"
    default_close_code: ClassVar[CloseCode | None] = CloseCode.INTERNAL_ERROR
