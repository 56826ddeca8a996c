"""Public type aliases, identifiers and constants of the voxlive protocol.

Every name here is part of the wire contract described in ``protocol/SPEC.md``: the
``Literal`` aliases list the exact strings that travel on the wire, and ``CloseCode``
lists the WebSocket close codes a server may use (SPEC.md §7).
"""

from __future__ import annotations

import enum
from typing import Final, Literal, NewType, get_args

__all__ = [
    "AUDIO_FORMATS",
    "ERROR_ABOUTS",
    "ERROR_CODES",
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "REFERENCE_ERROR_CODES",
    "STATUSES",
    "SUPPORTED_VERSIONS",
    "AudioFormat",
    "CloseCode",
    "ErrorAbout",
    "ErrorCode",
    "Priority",
    "ReferenceErrorCode",
    "Status",
    "StreamId",
    "UtteranceId",
    "VOICE_SCOPES",
    "VoiceScope",
]

UtteranceId = NewType("UtteranceId", str)
"""Client-chosen utterance id: 1–64 characters of ``[A-Za-z0-9._:-]`` (SPEC.md §4.2)."""

StreamId = NewType("StreamId", int)
"""Server-assigned numeric id of one utterance's audio (u32), announced in ``started``."""

Priority = Literal["realtime", "normal", "bulk"]
"""Scheduling class of an utterance."""

AudioFormat = Literal["s16le", "f32le"]
"""PCM sample encoding of audio frames: signed 16-bit or 32-bit float, little-endian."""

Status = Literal["completed", "cancelled", "expired", "failed"]
"""Final status of an utterance, reported in ``done``."""

ReferenceErrorCode = Literal[
    "too_large",
    "unsupported_format",
    "corrupt_audio",
    "too_long_declared",
    "too_short",
    "silent",
    "invalid_audio",
    "too_many_channels",
    "bad_sample_rate",
]
"""Codes with which a ``voice.register`` upload is refused for its audio (SPEC.md §6)."""

ErrorCode = Literal[
    "hello_required",
    "unsupported_version",
    "invalid_message",
    "malformed",
    "unknown_type",
    "message_too_big",
    "duplicate_id",
    "unknown_id",
    "too_many_inflight",
    "text_too_long",
    "empty_text",
    "unsupported_language",
    "unsupported",
    "overloaded",
    "unavailable",
    "expired",
    "internal",
    "slow_consumer",
    "auth_failed",
    "unknown_voice",
    "rate_limited",
    "text_rejected",
    "consent_required",
    ReferenceErrorCode,
]
"""Machine-readable ``code`` of an ``error`` message (SPEC.md §6)."""

ErrorAbout = Literal["utterance", "request"]
"""What the ``id`` of an ``error`` names (v1.6, SPEC.md §5.5): an utterance, or a voice
request (whose ids are a namespace of their own, §4.6)."""

VoiceScope = Literal["session", "persistent"]
"""Lifetime of a registered voice: until its session closes, or until deleted."""

PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
VOICE_SCOPES: Final[tuple[VoiceScope, ...]] = get_args(VoiceScope)
AUDIO_FORMATS: Final[tuple[AudioFormat, ...]] = get_args(AudioFormat)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ERROR_CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)
ERROR_ABOUTS: Final[tuple[ErrorAbout, ...]] = get_args(ErrorAbout)
REFERENCE_ERROR_CODES: Final[tuple[ReferenceErrorCode, ...]] = get_args(ReferenceErrorCode)

PROTOCOL_VERSION: Final = 1
"""The newest protocol version this package speaks."""

SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (1,)
"""Every version a ``hello`` may ask for (SPEC.md §3)."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes used by a voxlive server (SPEC.md §7)."""

    NORMAL = 1000
    """The session ended normally."""
    PROTOCOL_ERROR = 1002
    """The peer broke the protocol in a way no more specific code describes."""
    INVALID_DATA = 1007
    """A control message could not be decoded (``malformed``)."""
    POLICY_VIOLATION = 1008
    """A well-formed message was not allowed (before ``hello``, a second ``hello``, ...)."""
    MESSAGE_TOO_BIG = 1009
    """A control message exceeded ``limits.max_message_bytes``."""
    INTERNAL_ERROR = 1011
    """The server failed; the client may reconnect."""
    SERVICE_RESTART = 1012
    """The server is shutting down gracefully; reconnect later."""
    TRY_AGAIN_LATER = 1013
    """The server is overloaded and refused the session; reconnect later."""
    UNSUPPORTED_VERSION = 4001
    """No protocol version in common."""
    AUTH_FAILED = 4003
    """The ``hello`` token was rejected."""
    SLOW_CONSUMER = 4008
    """The client read audio too slowly and the server's send buffer overflowed."""
