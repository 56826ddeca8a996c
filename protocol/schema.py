"""Conversion between message dataclasses and their wire maps (SPEC.md §4–§5).

This module knows field names, types, defaults and ranges; ``codec.py`` knows bytes.
Client messages are read strictly (unknown fields are an error) because a typo such as
``sped`` must not be ignored silently. Server messages are read leniently (unknown
fields are skipped) so that clients keep working when a later server adds fields.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, Final, assert_never

from .controls import DEADLINE_MS, INTENSITY, PITCH, SEED, SPEED, VOLUME, Control
from .errors import UnknownRequest, UnsupportedVersion
from .fields import Fields, show
from .messages import (
    Append,
    AudioSpec,
    Cancel,
    ClientMessage,
    Consent,
    End,
    Flush,
    Hello,
    Limits,
    Speak,
    SpeakOptions,
    VoiceDelete,
    VoiceList,
    VoiceRegister,
)
from .types import (
    AUDIO_FORMATS,
    PRIORITIES,
    SUPPORTED_VERSIONS,
    VOICE_SCOPES,
)

__all__ = [
    "CONSENT_FIELDS",
    "MAX_CONSENT_NAME_CHARS",
    "MAX_CONSENT_STATEMENT_CHARS",
    "OPTION_FIELDS",
    "client_from_wire",
    "client_to_wire",
    "consent_from_wire",
    "consent_to_wire",
    "flat",
    "flat_options",
    "is_iso_time",
    "typed",
]

Wire = dict[str, object]

OPTION_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(SpeakOptions))
"""Names of the optional fields of ``speak`` and of the first ``append``."""

MAX_TOKEN_CHARS: Final = 512
U32_MAX: Final = 2**32 - 1
I64_MAX: Final = 2**63 - 1
ANY_LEN: Final = sys.maxsize
MAX_MS: Final = 1e12

CONSENT_FIELDS: Final = ("granted", "by", "method", "at", "statement")
"""The keys of a ``voice.register.consent`` map (SPEC.md §4.6, v1.7)."""
MAX_CONSENT_NAME_CHARS: Final = 200
"""Longest ``consent.by`` and ``consent.method``, in code points."""
MAX_CONSENT_STATEMENT_CHARS: Final = 2000
"""Longest ``consent.statement``, in code points."""
_MAX_TIME_CHARS: Final = 64
_ISO_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # the date: YYYY-MM-DD
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"  # hh:mm[:ss[.fraction]]
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?",  # UTC, an offset, or local time
    re.ASCII,
)


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
    f.check_known(("type", "id", "audio", "seq", "final", "name", "scope", "consent"))
    consent = f.get_opt_map("consent")
    return VoiceRegister(
        id,
        f.get_bytes("audio"),
        seq=f.get_int("seq", lo=0, hi=U32_MAX),
        final=f.get_bool("final"),
        name=f.get_opt_id("name"),
        scope=f.get_choice("scope", VOICE_SCOPES, "session"),
        consent=None if consent is None else _consent(consent),
    )


def consent_from_wire(obj: Mapping[Any, object], where: str = "consent") -> Consent:
    """Read a consent map strictly (SPEC.md §4.6, v1.7), as the server reads a client's.

    Args:
        obj: The map (decoded from the wire, or stored by a server).
        where: Its name in error messages.

    Raises:
        InvalidMessage: a key is missing, unknown or ill-typed; ``by`` or ``method`` is
            blank or over 200 characters; ``at`` is not an ISO 8601 date or date-time;
            ``statement`` is over 2000 characters.
    """
    return _consent(Fields(obj, where))


def _consent(f: Fields) -> Consent:
    f.check_known(CONSENT_FIELDS)
    granted = f.get_bool("granted")
    by, method = (_attested(f, name) for name in ("by", "method"))
    at = f.get_str("at", max_len=_MAX_TIME_CHARS)
    if not is_iso_time(at):
        raise f.error(
            f"{f.where}.at must be an ISO 8601 date or date-time, such as 2024-05-01 or "
            "2024-05-01T12:30:00Z"
        )
    statement = f.get_opt_str("statement", max_len=MAX_CONSENT_STATEMENT_CHARS)
    return Consent(granted, by, method, at, statement)


def _attested(f: Fields, name: str) -> str:
    value = f.get_str(name, max_len=MAX_CONSENT_NAME_CHARS)
    if not value.strip():
        raise f.error(f"{f.where}.{name} must not be blank")
    return value


def is_iso_time(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 date (``2024-05-01``) or date-time in the extended
    format (``2024-05-01T12:30``, ``…:00Z``, ``…:00.250+02:00``) naming a real instant."""
    if len(text) > _MAX_TIME_CHARS or not _ISO_TIME.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.upper())  # month 13, hour 24, … fail here
    except ValueError:
        return False
    return True


def _text(f: Fields, limits: Limits) -> str:
    text = f.get_str("text", max_len=ANY_LEN)
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
        lang=f.get_opt_str("lang", max_len=35),
        emotion=f.get_opt_str("emotion", max_len=128),
        intensity=f.get_float_or_unset(INTENSITY.name, lo=INTENSITY.min, hi=INTENSITY.max),
        speed=_float(f, SPEED),
        pitch=_float(f, PITCH),
        volume=_float(f, VOLUME),
        priority=f.get_choice("priority", PRIORITIES, "normal"),
        deadline_ms=f.get_opt_int(DEADLINE_MS.name, lo=DEADLINE_MS.min, hi=DEADLINE_MS.max),
        timestamps=f.get_bool("timestamps", False),
        seed=f.get_opt_int(SEED.name, lo=SEED.min, hi=SEED.max),
        cache=f.get_bool("cache", True),
    )


def _float(f: Fields, control: Control[float]) -> float:
    return f.get_float(control.name, control.default_value, lo=control.min, hi=control.max)


# --- client messages: dataclass -> wire ----------------------------------------------------


def client_to_wire(msg: ClientMessage) -> Wire:
    """Return the wire map of a client message (every field present, nulls included)."""
    match msg:
        case Hello(version, token, audio):
            return typed("hello", version=version, token=token, audio=flat(audio))
        case Speak(id, text, options):
            return typed("speak", id=id, text=text) | flat_options(options)
        case Append(id, text, options):
            return typed("append", id=id, text=text) | flat_options(options)
        case Flush(id):
            return typed("flush", id=id)
        case End(id):
            return typed("end", id=id)
        case Cancel(id):
            return typed("cancel", id=id)
        case VoiceRegister(consent=consent):
            wire = typed("voice.register") | flat(msg)
            # Left out when unset: a server before v1.7 refuses unknown fields.
            del wire["consent"]
            return wire if consent is None else wire | {"consent": consent_to_wire(consent)}
        case VoiceList(id):
            return typed("voice.list", id=id)
        case VoiceDelete(id, voice):
            return typed("voice.delete", id=id, voice=voice)
        case _:
            assert_never(msg)


def consent_to_wire(consent: Consent) -> Wire:
    """The wire map of a consent (every key present, ``statement`` maybe ``null``)."""
    return flat(consent)


def typed(kind: str, **values: object) -> Wire:
    return {"type": kind, **values}


def flat_options(options: SpeakOptions | None) -> Wire:
    """Return the options' map; an unset ``intensity`` is left out (SPEC.md §4.4: the
    field is not nullable, and left out it takes the server's default)."""
    wire = flat(options)
    if wire.get(INTENSITY.name, 0.0) is None:
        del wire[INTENSITY.name]
    if "lang" in wire and wire["lang"] is None:
        del wire["lang"]  # v1.4: a server before it refuses unknown fields
    if wire.get("cache") is True:
        del wire["cache"]  # v1.8, likewise
    return wire


def flat(value: Any) -> Wire:
    """Return a dataclass's fields as a map (``{}`` for ``None``)."""
    if value is None:
        return {}
    return {f.name: getattr(value, f.name) for f in fields(value)}
