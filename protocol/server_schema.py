"""Server messages on the wire: written strictly, read leniently (SPEC.md §5).

A client reads what a newer server sends: unknown keys are ignored and fields added
in later versions are optional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Final, assert_never

from .capabilities import BuiltinVoice, Watermark
from .controls import INTENSITY
from .errors import UnknownRequest
from .fields import MISSING, Fields, Missing, show
from .messages import (
    AudioSpec,
    Capabilities,
    Consent,
    Done,
    Error,
    Limits,
    Marks,
    Phoneme,
    ServerMessage,
    Started,
    Viseme,
    VoiceDeleted,
    VoiceInfo,
    VoiceListing,
    VoiceReady,
    VoiceSummary,
    Welcome,
    Word,
)
from .schema import ANY_LEN, I64_MAX, MAX_MS, U32_MAX, Wire, consent_to_wire, flat, typed
from .types import (
    AUDIO_FORMATS,
    ERROR_ABOUTS,
    ERROR_CODES,
    STATUSES,
    VOICE_SCOPES,
    AudioFormat,
    ErrorAbout,
    StreamId,
)

__all__ = ["server_from_wire", "server_to_wire"]


# --- server messages: dataclass -> wire ----------------------------------------------------


def server_to_wire(msg: ServerMessage) -> Wire:
    """Return the wire map of a server message (every field present, nulls included)."""
    match msg:
        case Welcome():
            return _welcome(msg)
        case Marks():
            words = [flat(word) for word in msg.words]
            phonemes = [flat(phoneme) for phoneme in msg.phonemes]
            visemes = [flat(viseme) for viseme in msg.visemes]
            lists = {"words": words, "phonemes": phonemes, "visemes": visemes}
            return typed("marks") | flat(msg) | lists
        case Started(id, stream, queue_ms, emotion, intensity):
            # The v1.3 echo is left out when unset: older servers' maps stay as they were.
            wire = typed("started", id=id, stream=stream, queue_ms=queue_ms)
            if emotion is not None:
                wire["emotion"] = emotion
            if intensity is not None:
                wire["intensity"] = intensity
            return wire
        case Done():
            return typed("done") | flat(msg) | {"warnings": list(msg.warnings)}
        case Error():
            return typed("error") | flat(msg)
        case VoiceReady():
            return typed("voice.ready") | flat(msg) | {"summary": dict(msg.summary)}
        case VoiceListing(id, voices):
            listed = [
                flat(v) | {"summary": dict(v.summary), "consent": _consent(v)} for v in voices
            ]
            return typed("voice.list", id=id, voices=listed)
        case VoiceDeleted():
            return typed("voice.deleted") | flat(msg)
        case _:
            assert_never(msg)


def _welcome(msg: Welcome) -> Wire:
    caps = msg.capabilities
    capabilities = flat(caps) | {
        "emotions": list(caps.emotions),
        "voices": list(caps.voices),
        "formats": list(caps.formats),
        "emotion_aliases": dict(caps.emotion_aliases),
        "builtin_voices": [flat(v) for v in caps.builtin_voices],
        "watermark": None if caps.watermark is None else flat(caps.watermark),
    }
    return typed(
        "welcome",
        version=msg.version,
        session=msg.session,
        audio=flat(msg.audio) | {"channels": 1},
        limits=flat(msg.limits),
        capabilities=capabilities,
    )


def _consent(voice: VoiceInfo) -> Wire | None:
    return None if voice.consent is None else consent_to_wire(voice.consent)


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
    emotions = caps.get_str_list("emotions", max_len=ANY_LEN)
    return Welcome(
        version=f.get_int("version", lo=0, hi=U32_MAX),
        session=f.get_str("session", max_len=ANY_LEN),
        audio=AudioSpec(
            sample_rate=audio.get_int("sample_rate", lo=8000, hi=48000),
            format=audio.get_choice("format", AUDIO_FORMATS),
            frame_ms=audio.get_int("frame_ms", lo=1, hi=U32_MAX),
        ),
        limits=Limits(**{name: _limit(limits, name) for name in _LIMITS}),
        capabilities=Capabilities(
            emotions=emotions,
            voices=caps.get_str_list("voices", max_len=ANY_LEN),
            timestamps=caps.get_bool("timestamps"),
            default_sample_rate=caps.get_int("default_sample_rate", lo=8000, hi=48000),
            pitch=caps.get_bool("pitch"),
            volume=caps.get_bool("volume"),
            formats=_formats(caps),
            voice_registration=caps.get_bool("voice_registration", False),
            emotion_aliases=_emotion_aliases(caps, emotions),
            builtin_voices=_builtin_voices(caps),
            # v1.7; absent before.
            consent_required=caps.get_bool("consent_required", False),
            watermark=_watermark(caps),
        ),
    )


def _watermark(caps: Fields) -> Watermark | None:
    # v1.7; absent (or null) before.
    watermark = caps.get_opt_map("watermark")
    if watermark is None:
        return None
    return Watermark(
        model=watermark.get_str("model", max_len=ANY_LEN),
        all_output=watermark.get_bool("all_output"),
    )


def _builtin_voices(caps: Fields) -> tuple[BuiltinVoice, ...]:
    # Absent from servers before v1.4.
    if not caps.has("builtin_voices"):
        return ()
    return tuple(
        BuiltinVoice(
            voice=v.get_str("voice", max_len=ANY_LEN),
            language=v.get_str("language", max_len=ANY_LEN),
            sample_rate=v.get_int("sample_rate", lo=1, hi=U32_MAX),
            license=v.get_str("license", max_len=ANY_LEN),
        )
        for v in caps.get_map_list("builtin_voices")
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
    formats = caps.get_str_list("formats", max_len=ANY_LEN)
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
        queue_ms=f.get_float("queue_ms", lo=0.0, hi=MAX_MS),
        emotion=f.get_opt_str("emotion", max_len=ANY_LEN),
        intensity=f.get_opt_float(INTENSITY.name, lo=INTENSITY.min, hi=INTENSITY.max),
    )


def _marks_from(f: Fields) -> Marks:
    return Marks(
        id=f.get_id(),
        stream=StreamId(f.get_int("stream", lo=0, hi=U32_MAX)),
        offset=f.get_int("offset", lo=0, hi=U32_MAX),
        words=tuple(Word(*_span(w, "text")) for w in f.get_map_list("words")),
        phonemes=tuple(Phoneme(*_span(p, "p")) for p in f.get_map_list("phonemes")),
        # Absent before v1.5.
        visemes=tuple(Viseme(*_span(v, "v")) for v in f.get_map_list("visemes"))
        if f.has("visemes")
        else (),
    )


def _span(f: Fields, label: str) -> tuple[str, int, int]:
    return (
        f.get_str(label, max_len=ANY_LEN),
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
        audio_ms=f.get_float("audio_ms", lo=0.0, hi=MAX_MS),
        first_audio_ms=f.get_opt_float("first_audio_ms", lo=0.0, hi=MAX_MS),
        rtf=f.get_opt_float("rtf", lo=0.0, hi=MAX_MS),
        # Absent before v1.4.
        warnings=f.get_str_list("warnings", max_len=ANY_LEN) if f.has("warnings") else (),
    )


def _error_from(f: Fields) -> Error:
    return Error(
        code=f.get_choice("code", ERROR_CODES),
        message=f.get_str("message", max_len=ANY_LEN),
        id=f.get_opt_id(),
        retryable=f.get_bool("retryable", False),
        retry_after_ms=f.get_opt_int("retry_after_ms", lo=0, hi=I64_MAX),
        about=_about(f),
    )


def _about(f: Fields) -> ErrorAbout | None:
    # v1.6; absent before. Lenient like ``_formats``: a value a later revision adds reads
    # as None (unknown), and the client falls back to matching the id.
    value = dict(f.items()).get("about")
    return next((about for about in ERROR_ABOUTS if about == value), None)


def _voice_ready_from(f: Fields) -> VoiceReady:
    return VoiceReady(
        id=f.get_id(),
        voice=f.get_str("voice", max_len=ANY_LEN),
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
            voice=v.get_str("voice", max_len=ANY_LEN),
            scope=v.get_choice("scope", VOICE_SCOPES),
            summary=_summary(v),
            consent=_consent_from(v),
        )
        for v in f.get_map_list("voices")
    )
    return VoiceListing(id=f.get_id(), voices=voices)


def _consent_from(voice: Fields) -> Consent | None:
    # v1.7; absent before, null for a voice registered without one. Lenient: keys a
    # later revision adds are skipped.
    consent = voice.get_opt_map("consent")
    if consent is None:
        return None
    return Consent(
        granted=consent.get_bool("granted"),
        by=consent.get_str("by", max_len=ANY_LEN),
        method=consent.get_str("method", max_len=ANY_LEN),
        at=consent.get_str("at", max_len=ANY_LEN),
        statement=consent.get_opt_str("statement", max_len=ANY_LEN),
    )


def _voice_deleted_from(f: Fields) -> VoiceDeleted:
    return VoiceDeleted(
        id=f.get_id(),
        voice=f.get_str("voice", max_len=ANY_LEN),
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
