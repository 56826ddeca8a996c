"""Conversion between message dataclasses and their wire maps (SPEC.md §4–§5).

This module knows field names, types, defaults and ranges; ``codec.py`` knows bytes.
Client messages are read strictly (unknown fields are an error) because a typo such as
``sped`` must not be ignored silently. Server messages are read leniently (unknown
fields are skipped) so that clients keep working when a later server adds fields.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Final, assert_never

from .controls import DEADLINE_MS, INTENSITY, PITCH, SEED, SPEED, VOLUME, Control
from .errors import UnknownRequest, UnsupportedVersion
from .fields import MISSING, Fields, Missing, show
from .messages import (
    Append,
    AudioSpec,
    Cancel,
    Capabilities,
    ClientMessage,
    Done,
    End,
    Error,
    Flush,
    Hello,
    Limits,
    Marks,
    Phoneme,
    ServerMessage,
    Speak,
    SpeakOptions,
    Started,
    VoiceDelete,
    VoiceDeleted,
    VoiceInfo,
    VoiceList,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
    VoiceSummary,
    Welcome,
    Word,
)
from .types import (
    AUDIO_FORMATS,
    ERROR_CODES,
    PRIORITIES,
    STATUSES,
    SUPPORTED_VERSIONS,
    VOICE_SCOPES,
    AudioFormat,
    StreamId,
)

__all__ = [
    "OPTION_FIELDS",
    "client_from_wire",
    "client_to_wire",
    "server_from_wire",
    "server_to_wire",
]

Wire = dict[str, object]

OPTION_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(SpeakOptions))
"""Names of the optional fields of ``speak`` and of the first ``append``."""

MAX_TOKEN_CHARS: Final = 512
U32_MAX: Final = 2**32 - 1
I64_MAX: Final = 2**63 - 1
_ANY_LEN: Final = sys.maxsize
_MAX_MS: Final = 1e12


# --- client messages: wire -> dataclass (strict) -------------------------------------------


def client_from_wire(kind: str, f: Fields, limits: Limits) -> ClientMessage:
    """Build the client message of type ``kind`` from its map.

    Args:
        kind: The map's ``type`` value.
        f: Reader over the whole map (``type`` included).
        limits: Bounds for text lengths.

    Raises:
        UnknownRequest: ``kind`` is not a client message type.
        UnsupportedVersion: a ``hello`` asks for a version this package does not speak.
        InvalidMessage: a field is missing, unknown, ill-typed or out of range, or the
            text is empty or too long (codes ``empty_text`` / ``text_too_long``).
    """
    match kind:
        case "hello":
            return _hello(f)
        case "speak":
            return _speak(f, limits)
        case "append":
            return _append(f, limits)
        case "flush" | "end":
            id = f.id = f.get_id()
            f.check_known(("type", "id"))
            return Flush(id) if kind == "flush" else End(id)
        case "cancel":
            f.id = f.get_opt_id()
            f.check_known(("type", "id"))
            return Cancel(f.id)
        case "voice.register":
            return _voice_register(f)
        case "voice.list":
            f.id = f.get_id()
            f.check_known(("type", "id"))
            return VoiceList(f.id)
        case "voice.delete":
            f.id = f.get_id()
            f.check_known(("type", "id", "voice"))
            return VoiceDelete(f.id, f.get_id("voice"))
    raise UnknownRequest(f"unknown message type {show(kind)}")


def _hello(f: Fields) -> Hello:
    # SPEC.md §3: the version is read before anything else, so that a hello from a
    # newer client (with fields v1 does not know) gets unsupported_version.
    version = f.get_int("version", lo=0, hi=U32_MAX)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise UnsupportedVersion(f"version {version} is not supported; supported: {supported}")
    f.check_known(("type", "version", "token", "audio"))
    token = f.get_opt_str("token", max_len=MAX_TOKEN_CHARS)
    audio = f.get_map("audio")
    return Hello(version, token, AudioSpec() if audio is None else _audio_spec(audio))


def _audio_spec(f: Fields) -> AudioSpec:
    f.check_known(("sample_rate", "format", "frame_ms"))
    return AudioSpec(
        sample_rate=f.get_opt_int("sample_rate", lo=8000, hi=48000),
        format=f.get_choice("format", AUDIO_FORMATS, "s16le"),
        frame_ms=f.get_int("frame_ms", 40, lo=10, hi=200),
    )


def _speak(f: Fields, limits: Limits) -> Speak:
    id = f.id = f.get_id()
    f.check_known(("type", "id", "text", *OPTION_FIELDS))
    text = _text(f, limits)
    if text.isspace():
        raise f.error("speak.text has nothing to say (only whitespace)", "empty_text")
    return Speak(id, text, _options(f))


def _append(f: Fields, limits: Limits) -> Append:
    id = f.id = f.get_id()
    f.check_known(("type", "id", "text", *OPTION_FIELDS))
    text = _text(f, limits)
    has_options = any(f.has(name) for name in OPTION_FIELDS)
    return Append(id, text, _options(f) if has_options else None)


def _voice_register(f: Fields) -> VoiceRegister:
    id = f.id = f.get_id()
    f.check_known(("type", "id", "audio", "seq", "final", "name", "scope"))
    return VoiceRegister(
        id,
        f.get_bytes("audio"),
        seq=f.get_int("seq", lo=0, hi=U32_MAX),
        final=f.get_bool("final"),
        name=f.get_opt_id("name"),
        scope=f.get_choice("scope", VOICE_SCOPES, "session"),
    )


def _text(f: Fields, limits: Limits) -> str:
    text = f.get_str("text", max_len=_ANY_LEN)
    if not text:
        raise f.error("text must not be empty", "empty_text")
    if len(text) > limits.max_text_chars:
        raise f.error(
            f"text has {len(text)} characters; the limit is {limits.max_text_chars}",
            "text_too_long",
        )
    return text


def _options(f: Fields) -> SpeakOptions:
    return SpeakOptions(
        voice=f.get_opt_str("voice", max_len=128),
        emotion=f.get_opt_str("emotion", max_len=128),
        intensity=f.get_float_or_unset(INTENSITY.name, lo=INTENSITY.min, hi=INTENSITY.max),
        speed=_float(f, SPEED),
        pitch=_float(f, PITCH),
        volume=_float(f, VOLUME),
        priority=f.get_choice("priority", PRIORITIES, "normal"),
        deadline_ms=f.get_opt_int(DEADLINE_MS.name, lo=DEADLINE_MS.min, hi=DEADLINE_MS.max),
        timestamps=f.get_bool("timestamps", False),
        seed=f.get_opt_int(SEED.name, lo=SEED.min, hi=SEED.max),
    )


def _float(f: Fields, control: Control[float]) -> float:
    return f.get_float(control.name, control.default_value, lo=control.min, hi=control.max)


# --- client messages: dataclass -> wire ----------------------------------------------------


def client_to_wire(msg: ClientMessage) -> Wire:
    """Return the wire map of a client message (every field present, nulls included)."""
    match msg:
        case Hello(version, token, audio):
            return _typed("hello", version=version, token=token, audio=_flat(audio))
        case Speak(id, text, options):
            return _typed("speak", id=id, text=text) | _flat_options(options)
        case Append(id, text, options):
            return _typed("append", id=id, text=text) | _flat_options(options)
        case Flush(id):
            return _typed("flush", id=id)
        case End(id):
            return _typed("end", id=id)
        case Cancel(id):
            return _typed("cancel", id=id)
        case VoiceRegister():
            return _typed("voice.register") | _flat(msg)
        case VoiceList(id):
            return _typed("voice.list", id=id)
        case VoiceDelete(id, voice):
            return _typed("voice.delete", id=id, voice=voice)
        case _:
            assert_never(msg)


def _typed(kind: str, **values: object) -> Wire:
    return {"type": kind, **values}


def _flat_options(options: SpeakOptions | None) -> Wire:
    """Return the options' map; an unset ``intensity`` is left out (SPEC.md §4.4: the
    field is not nullable, and left out it takes the server's default)."""
    wire = _flat(options)
    if wire.get(INTENSITY.name, 0.0) is None:
        del wire[INTENSITY.name]
    return wire


def _flat(value: Any) -> Wire:
    """Return a dataclass's fields as a map (``{}`` for ``None``)."""
    if value is None:
        return {}
    return {f.name: getattr(value, f.name) for f in fields(value)}


# --- server messages: dataclass -> wire ----------------------------------------------------


def server_to_wire(msg: ServerMessage) -> Wire:
    """Return the wire map of a server message (every field present, nulls included)."""
    match msg:
        case Welcome():
            return _welcome(msg)
        case Marks():
            words = [_flat(word) for word in msg.words]
            phonemes = [_flat(phoneme) for phoneme in msg.phonemes]
            return _typed("marks") | _flat(msg) | {"words": words, "phonemes": phonemes}
        case Started(id, stream, queue_ms, emotion, intensity):
            # The v1.3 echo is left out when unset: older servers' maps stay as they were.
            wire = _typed("started", id=id, stream=stream, queue_ms=queue_ms)
            if emotion is not None:
                wire["emotion"] = emotion
            if intensity is not None:
                wire["intensity"] = intensity
            return wire
        case Done():
            return _typed("done") | _flat(msg)
        case Error():
            return _typed("error") | _flat(msg)
        case VoiceReady():
            return _typed("voice.ready") | _flat(msg) | {"summary": dict(msg.summary)}
        case VoiceListing(id, voices):
            listed = [_flat(v) | {"summary": dict(v.summary)} for v in voices]
            return _typed("voice.list", id=id, voices=listed)
        case VoiceDeleted():
            return _typed("voice.deleted") | _flat(msg)
        case _:
            assert_never(msg)


def _welcome(msg: Welcome) -> Wire:
    caps = msg.capabilities
    capabilities = _flat(caps) | {
        "emotions": list(caps.emotions),
        "voices": list(caps.voices),
        "formats": list(caps.formats),
        "emotion_aliases": dict(caps.emotion_aliases),
    }
    return _typed(
        "welcome",
        version=msg.version,
        session=msg.session,
        audio=_flat(msg.audio) | {"channels": 1},
        limits=_flat(msg.limits),
        capabilities=capabilities,
    )


# --- server messages: wire -> dataclass (lenient) ------------------------------------------


def server_from_wire(kind: str, f: Fields) -> ServerMessage:
    """Build the server message of type ``kind`` from its map; unknown fields are skipped.

    Raises:
        UnknownRequest: ``kind`` is not a server message type.
        InvalidMessage: a field is missing, ill-typed or out of range.
    """
    reader = _SERVER_READERS.get(kind)
    if reader is None:
        raise UnknownRequest(f"unknown message type {show(kind)}")
    return reader(f)


def _welcome_from(f: Fields) -> Welcome:
    audio, limits, caps = (_require_map(f, name) for name in ("audio", "limits", "capabilities"))
    emotions = caps.get_str_list("emotions", max_len=_ANY_LEN)
    return Welcome(
        version=f.get_int("version", lo=0, hi=U32_MAX),
        session=f.get_str("session", max_len=_ANY_LEN),
        audio=AudioSpec(
            sample_rate=audio.get_int("sample_rate", lo=8000, hi=48000),
            format=audio.get_choice("format", AUDIO_FORMATS),
            frame_ms=audio.get_int("frame_ms", lo=1, hi=U32_MAX),
        ),
        limits=Limits(**{name: _limit(limits, name) for name in _LIMITS}),
        capabilities=Capabilities(
            emotions=emotions,
            voices=caps.get_str_list("voices", max_len=_ANY_LEN),
            timestamps=caps.get_bool("timestamps"),
            default_sample_rate=caps.get_int("default_sample_rate", lo=8000, hi=48000),
            pitch=caps.get_bool("pitch"),
            volume=caps.get_bool("volume"),
            formats=_formats(caps),
            voice_registration=caps.get_bool("voice_registration", False),
            emotion_aliases=_emotion_aliases(caps, emotions),
        ),
    )


_LIMITS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Limits))
_LIMITS_V1: Final = frozenset(
    {"max_message_bytes", "max_text_chars", "max_inflight", "max_pending_text_chars"}
)


def _limit(limits: Fields, name: str) -> int:
    # Limits added in v1.2 are absent from older servers' welcome: take the default.
    default: int | Missing = MISSING if name in _LIMITS_V1 else getattr(Limits(), name)
    return limits.get_int(name, default, lo=1, hi=I64_MAX)


def _require_map(f: Fields, name: str) -> Fields:
    nested = f.get_map(name)
    if nested is None:
        raise f.error(f"{name} is required")
    return nested


def _formats(caps: Fields) -> tuple[AudioFormat, ...]:
    # Formats a later server adds are skipped: this client could not decode them anyway.
    formats = caps.get_str_list("formats", max_len=_ANY_LEN)
    known = tuple(fmt for fmt in AUDIO_FORMATS if fmt in formats)
    if not known:
        raise caps.error("capabilities.formats names no known format")
    return known


def _emotion_aliases(caps: Fields, emotions: tuple[str, ...]) -> dict[str, str]:
    # Absent from servers before v1.3. Lenient like ``_formats``: an entry this client
    # could not use (not a string, blank, or naming no listed emotion) is skipped.
    aliases = caps.get_map("emotion_aliases")
    if aliases is None:
        return {}
    return {
        alias: name
        for alias, name in aliases.items()
        if isinstance(alias, str) and alias.strip() and name in emotions
    }


def _started_from(f: Fields) -> Started:
    return Started(
        id=f.get_id(),
        stream=StreamId(f.get_int("stream", lo=0, hi=U32_MAX)),
        queue_ms=f.get_float("queue_ms", lo=0.0, hi=_MAX_MS),
        emotion=f.get_opt_str("emotion", max_len=_ANY_LEN),
        intensity=f.get_opt_float(INTENSITY.name, lo=INTENSITY.min, hi=INTENSITY.max),
    )


def _marks_from(f: Fields) -> Marks:
    return Marks(
        id=f.get_id(),
        stream=StreamId(f.get_int("stream", lo=0, hi=U32_MAX)),
        offset=f.get_int("offset", lo=0, hi=U32_MAX),
        words=tuple(Word(*_span(w, "text")) for w in f.get_map_list("words")),
        phonemes=tuple(Phoneme(*_span(p, "p")) for p in f.get_map_list("phonemes")),
    )


def _span(f: Fields, label: str) -> tuple[str, int, int]:
    return (
        f.get_str(label, max_len=_ANY_LEN),
        f.get_int("start", lo=0, hi=I64_MAX),
        f.get_int("end", lo=0, hi=I64_MAX),
    )


def _done_from(f: Fields) -> Done:
    stream = f.get_opt_int("stream", lo=0, hi=U32_MAX)
    return Done(
        id=f.get_id(),
        stream=None if stream is None else StreamId(stream),
        status=f.get_choice("status", STATUSES),
        samples=f.get_int("samples", lo=0, hi=I64_MAX),
        audio_ms=f.get_float("audio_ms", lo=0.0, hi=_MAX_MS),
        first_audio_ms=f.get_opt_float("first_audio_ms", lo=0.0, hi=_MAX_MS),
        rtf=f.get_opt_float("rtf", lo=0.0, hi=_MAX_MS),
    )


def _error_from(f: Fields) -> Error:
    return Error(
        code=f.get_choice("code", ERROR_CODES),
        message=f.get_str("message", max_len=_ANY_LEN),
        id=f.get_opt_id(),
        retryable=f.get_bool("retryable", False),
        retry_after_ms=f.get_opt_int("retry_after_ms", lo=0, hi=I64_MAX),
    )


def _voice_ready_from(f: Fields) -> VoiceReady:
    return VoiceReady(
        id=f.get_id(),
        voice=f.get_str("voice", max_len=_ANY_LEN),
        cached=f.get_bool("cached"),
        summary=_summary(f),
    )


def _summary(f: Fields) -> VoiceSummary:
    # Lenient: keys a client cannot read (non-scalar values) are skipped.
    summary = f.get_map("summary")
    if summary is None:
        return {}
    return {
        key: value
        for key, value in summary.items()
        if isinstance(key, str) and isinstance(value, str | int | float | bool)
    }


def _voice_list_from(f: Fields) -> VoiceListing:
    voices = tuple(
        VoiceInfo(
            voice=v.get_str("voice", max_len=_ANY_LEN),
            scope=v.get_choice("scope", VOICE_SCOPES),
            summary=_summary(v),
        )
        for v in f.get_map_list("voices")
    )
    return VoiceListing(id=f.get_id(), voices=voices)


def _voice_deleted_from(f: Fields) -> VoiceDeleted:
    return VoiceDeleted(
        id=f.get_id(),
        voice=f.get_str("voice", max_len=_ANY_LEN),
        deleted=f.get_bool("deleted"),
    )


_SERVER_READERS: Final[dict[str, Callable[[Fields], ServerMessage]]] = {
    "welcome": _welcome_from,
    "started": _started_from,
    "marks": _marks_from,
    "done": _done_from,
    "error": _error_from,
    "voice.ready": _voice_ready_from,
    "voice.list": _voice_list_from,
    "voice.deleted": _voice_deleted_from,
}
