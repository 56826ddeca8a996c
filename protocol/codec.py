"""Bytes on the wire: msgpack and JSON control messages, binary audio frames.

Client control messages come as a binary WebSocket frame holding a msgpack map or as a
text frame holding a JSON object (SPEC.md §2). Server control messages use the encoding
of the client's ``hello``. Audio frames are binary and start with the byte ``0x01``,
which no msgpack map can start with (SPEC.md §8).

Decoding is done in two steps, ``parse_client`` (size, syntax, map, ``type``) and then
``schema.client_from_wire`` (fields), so that ``Session`` can tell "not a hello" from
"an invalid hello" before the fields are read. ``decode_client`` does both.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Final

import msgpack

from .errors import MalformedMessage, MessageTooBig
from .fields import Fields
from .messages import AudioFrame, ClientMessage, Limits, ServerMessage
from .schema import U32_MAX, client_from_wire, client_to_wire
from .server_schema import server_from_wire, server_to_wire
from .types import AudioFormat, StreamId

__all__ = [
    "AUDIO_FRAME_KIND",
    "AUDIO_HEADER_LEN",
    "FLAG_CANCELLED",
    "FLAG_LAST",
    "SAMPLE_WIDTH",
    "decode_audio_frame",
    "decode_client",
    "decode_server",
    "encode_audio_frame",
    "encode_client",
    "encode_server",
    "parse_client",
]

AUDIO_FRAME_KIND: Final = 0x01
"""First byte of every audio frame."""
FLAG_LAST: Final = 0x01
"""Audio frame flag bit 0: final frame of the stream."""
FLAG_CANCELLED: Final = 0x02
"""Audio frame flag bit 1: the utterance was cancelled and this frame fades out."""
AUDIO_HEADER_LEN: Final = 16
"""Length of the v1 audio frame header; clients skip ``header_len`` bytes instead."""
SAMPLE_WIDTH: Final[dict[AudioFormat, int]] = {"s16le": 2, "f32le": 4}
"""Bytes per PCM sample of each format."""

# kind u8, flags u8, header_len u16, stream u32, seq u32, offset u32 (SPEC.md §8.1).
_HEADER: Final = struct.Struct("<BBHIII")
_UTF8_MAX_BYTES_PER_CHAR: Final = 4


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[object, object]]) -> dict[object, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


# --- client -> server ----------------------------------------------------------------------


def parse_client(data: bytes | str, limits: Limits) -> tuple[str, Fields]:
    """Check the size of a client frame, decode it and read its ``type``.

    Args:
        data: The payload of one WebSocket message: ``bytes`` for a binary frame
            (msgpack), ``str`` for a text frame (JSON).
        limits: ``max_message_bytes`` is checked before anything is decoded.

    Returns:
        The ``type`` value and a strict reader over the map.

    Raises:
        MessageTooBig: the payload is larger than ``limits.max_message_bytes``.
        MalformedMessage: the payload is not msgpack/JSON, not a map, or has no string
            ``type``.
    """
    _check_size(data, limits.max_message_bytes)
    obj = _load_json(data) if isinstance(data, str) else _load_msgpack(data)
    return _read_type(obj)


def decode_client(data: bytes | str, limits: Limits) -> ClientMessage:
    """Decode and validate one client control message.

    Raises:
        MessageTooBig: see ``parse_client``.
        MalformedMessage: see ``parse_client``.
        UnknownRequest: the ``type`` is not a client message type.
        UnsupportedVersion: a ``hello`` asks for a version this package does not speak.
        InvalidMessage: a field is missing, unknown, ill-typed or out of range.
    """
    kind, fields = parse_client(data, limits)
    return client_from_wire(kind, fields, limits)


def encode_client(msg: ClientMessage, binary: bool = True) -> bytes | str:
    """Encode a client control message (for Python clients and tests).

    Args:
        msg: The message.
        binary: ``True`` for msgpack bytes, ``False`` for a JSON string.

    Raises:
        ValueError: a number is NaN or infinite, or a string is not valid Unicode.
    """
    return _dump(client_to_wire(msg), binary)


def _check_size(data: bytes | str, limit: int) -> None:
    size = len(data)
    if isinstance(data, str) and size <= limit < size * _UTF8_MAX_BYTES_PER_CHAR:
        # A character takes 1-4 UTF-8 bytes: only strings near the limit need counting.
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise MessageTooBig(f"message of {size} bytes exceeds the limit of {limit} bytes")


def _load_msgpack(data: bytes) -> object:
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, object_pairs_hook=_unique_pairs
        )
    except _DuplicateKey as exc:
        raise MalformedMessage("a msgpack map has a duplicate key") from exc
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedMessage("payload is not a valid msgpack value") from exc


def _load_json(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise MalformedMessage("a JSON object has a duplicate key") from exc
    except Exception as exc:  # ValueError, RecursionError for deep nesting
        raise MalformedMessage("payload is not a valid JSON value") from exc


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _read_type(obj: object) -> tuple[str, Fields]:
    if not isinstance(obj, dict):
        raise MalformedMessage("a message must be a map (JSON object)")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("a message must have a string 'type' field")
    return kind, Fields(obj, kind)


# --- server -> client ----------------------------------------------------------------------


def encode_server(msg: ServerMessage, binary: bool) -> bytes | str:
    """Encode a server control message.

    Args:
        msg: The message.
        binary: ``True`` for msgpack bytes, ``False`` for a JSON string.

    Raises:
        ValueError: a number is NaN or infinite, or a string is not valid Unicode.
    """
    return _dump(server_to_wire(msg), binary)


def decode_server(data: bytes | str) -> ServerMessage | AudioFrame:
    """Decode one server WebSocket message (for Python clients and tests).

    Raises:
        MalformedMessage: not an audio frame, msgpack or JSON map with a string ``type``.
        UnknownRequest: the ``type`` is not a server message type.
        InvalidMessage: a field is missing, ill-typed or out of range.
    """
    if isinstance(data, str):
        obj = _load_json(data)
    elif data[:1] == bytes((AUDIO_FRAME_KIND,)):
        return decode_audio_frame(data)
    else:
        obj = _load_msgpack(data)
    kind, fields = _read_type(obj)
    return server_from_wire(kind, fields)


def _dump(wire: dict[str, object], binary: bool) -> bytes | str:
    _check_finite(wire)
    if binary:
        packed: bytes = msgpack.packb(wire, use_bin_type=True)
        return packed
    return json.dumps(
        wire, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_base64
    )


def _base64(value: object) -> str:
    # JSON has no binary type: bytes (voice.register audio) travel as base64 (SPEC.md §4.6).
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode a value of type {type(value).__name__} as JSON")


def _check_finite(value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("messages cannot carry NaN or infinite numbers")
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            _check_finite(item)


# --- audio frames --------------------------------------------------------------------------


def encode_audio_frame(frame: AudioFrame) -> bytes:
    """Encode an audio frame: the 16-byte header, then the PCM bytes (SPEC.md §8).

    Raises:
        ValueError: ``stream``, ``seq`` or ``offset`` does not fit in a u32, or the PCM is
            empty on a frame that is not ``last``.
    """
    for name in ("stream", "seq", "offset"):
        value = getattr(frame, name)
        if not 0 <= value <= U32_MAX:
            raise ValueError(f"audio frame {name} {value} does not fit in a u32")
    if not frame.pcm and not frame.last:
        raise ValueError("only the last frame of a stream may be empty")
    flags = (FLAG_LAST if frame.last else 0) | (FLAG_CANCELLED if frame.cancelled else 0)
    header = _HEADER.pack(
        AUDIO_FRAME_KIND, flags, AUDIO_HEADER_LEN, frame.stream, frame.seq, frame.offset
    )
    return header + frame.pcm


def decode_audio_frame(data: bytes) -> AudioFrame:
    """Decode an audio frame, skipping ``header_len`` bytes of header.

    Unknown flag bits and header bytes past the v1 fields are ignored, as SPEC.md §8.2
    asks of every client.

    Raises:
        MalformedMessage: the data is shorter than a header, does not start with
            ``0x01``, or ``header_len`` is below 16 or past the end of the data.
    """
    if len(data) < AUDIO_HEADER_LEN:
        raise MalformedMessage(f"an audio frame has at least {AUDIO_HEADER_LEN} bytes")
    kind, flags, header_len, stream, seq, offset = _HEADER.unpack_from(data)
    if kind != AUDIO_FRAME_KIND:
        raise MalformedMessage(f"an audio frame starts with {AUDIO_FRAME_KIND:#04x}")
    if not AUDIO_HEADER_LEN <= header_len <= len(data):
        raise MalformedMessage(f"audio frame header_len {header_len} is out of range")
    return AudioFrame(
        stream=StreamId(stream),
        seq=seq,
        offset=offset,
        pcm=bytes(data[header_len:]),
        last=bool(flags & FLAG_LAST),
        cancelled=bool(flags & FLAG_CANCELLED),
    )
