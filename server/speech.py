"""OpenAI-compatible speech over HTTP: ``POST /v1/audio/speech``, ``GET /v1/models``,
``GET /v1/audio/voices`` (README "HTTP speech API").

A request is one utterance in a session of its own: the handler speaks the wire
protocol (``hello``, then ``speak``) to the server's own session code over an
in-memory socket, so an HTTP request passes the same keys, limits, blocked words,
registered-voice ownership, batcher, watermark and metrics as a WebSocket's. The
audio frames it gets back are encoded in the asked format and sent as the body while
synthesis runs (chunked); an error before the first audio is an HTTP status with
OpenAI's error shape, one after it ends the body early.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import re
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.protocol import State

from voxlive.engine.emotion import SYNONYMS, resolve
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    AudioFrame,
    AudioSpec,
    Done,
    Error,
    Hello,
    Speak,
    SpeakOptions,
)
from voxlive.protocol.types import CloseCode, UtteranceId

from .http import HttpError, HttpRequest, HttpResponse
from .keys import bearer

__all__ = ["FORMATS", "MODELS", "OPENAI_VOICES", "SpeechApi", "instructions_emotion"]

logger = logging.getLogger(__name__)

MODELS: Final = ("voxlive", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""Names ``model`` may take: voxlive's, and OpenAI's (all the same engine here)."""
OPENAI_VOICES: Final = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse",
)  # fmt: skip
"""OpenAI's voice names: each speaks the built-in voice of the input's language."""
FORMATS: Final = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}
"""``response_format`` → Content-Type (pcm: 16-bit little-endian mono, no header)."""
DEFAULT_RATE: Final = 24000
"""OpenAI's rate, the default of ``sample_rate``."""
OPUS_RATES: Final = (8000, 12000, 16000, 24000, 48000)
MP3_KBPS: Final = 64
"""MP3 bit rate (mono speech)."""
_STRENGTH_WORDS: Final = {
    "slightly": 0.4, "somewhat": 0.5, "a bit": 0.4, "a little": 0.4, "mildly": 0.4,
    "very": 1.0, "extremely": 1.0, "really": 0.9, "super": 1.0, "so": 0.9,
}  # fmt: skip
_EXTRA_WORDS: Final = {
    "cheerfully": "happy", "happily": "happy", "joyfully": "happy", "upbeat": "happy",
    "warm": "happy", "warmly": "happy", "friendly": "happy", "energetic": "excited",
    "excitedly": "excited", "enthusiastically": "excited", "sadly": "sad", "gloomy": "sad",
    "melancholic": "sad", "angrily": "angry", "furiously": "angry", "calmly": "calm",
    "soothing": "calm", "gently": "calm", "gentle": "calm", "soft": "calm", "softly": "calm",
    "surprised": "surprised", "nervously": "fearful", "nervous": "fearful",
    "fearfully": "fearful", "scared": "fearful",
}  # fmt: skip
"""Words of ``instructions`` the emotion vocabulary's synonyms do not cover."""


def instructions_emotion(instructions: str) -> tuple[str | None, float | None]:
    """The emotion (and intensity) free-text ``instructions`` ask for (README table).

    The first word that is an emotion, one of its synonyms (English or Chinese), or an
    adverb of one (``cheerfully``), names it; ``slightly``/``a bit`` before it make the
    intensity 0.4, ``very``/``extremely`` 1.0. None: no emotion word.
    """
    text = instructions.lower()
    for match in re.finditer(r"[a-z]+|[\u4e00-\u9fff]+", text):
        word = match.group()
        name = _EXTRA_WORDS.get(word)
        if name is None:
            for candidate in (word, word.removesuffix("ly"), word.removesuffix("ily") + "y"):
                try:
                    name = resolve(candidate)
                    break
                except ValueError:
                    continue
        if name is None and not word.isascii():  # Chinese runs: a synonym inside one
            name = next((n for w, n in SYNONYMS.items() if not w.isascii() and w in word), None)
        if name is None or name == "neutral":
            continue
        before = text[max(0, match.start() - 12) : match.start()]
        strength = next((v for k, v in _STRENGTH_WORDS.items() if before.endswith(k + " ")), None)
        return name, strength
    return None, None


@dataclass(frozen=True, slots=True)
class _Params:
    text: str
    options: SpeakOptions
    fmt: str
    rate: int


def _error(
    status: int, code: str, message: str, param: str | None = None, retry_ms: int | None = None
) -> HttpError:
    headers: tuple[tuple[str, str], ...] = ()
    if retry_ms is not None:
        headers = (("Retry-After", str(max(1, math.ceil(retry_ms / 1000)))),)
    return HttpError(status, code, message, headers, param=param)


def parse_speech(body: bytes, max_chars: int) -> _Params:
    """The request body → what to say and how.

    Raises:
        HttpError: 400 for a malformed or invalid field (``param`` names it), 413 for an
            input over ``max_chars``.
    """
    if len(body) > 12 * max_chars + 64 * 1024:  # an escaped character is ≤ 12 bytes
        raise _error(413, "too_large", f"the body has {len(body)} bytes", "input")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _error(400, "invalid_json", "the body must be a JSON object")
    known = {
        "model", "input", "voice", "response_format", "speed", "instructions", "stream_format",
        "emotion", "intensity", "pitch", "volume", "seed", "lang", "sample_rate",
    }  # fmt: skip
    for key in data:
        if key not in known:
            raise _error(400, "unknown_parameter", f"unknown parameter {key!r}", key)

    def field(name: str, kind: type | tuple[type, ...], required: bool = False) -> Any:
        value = data.get(name)
        if value is None:
            if required:
                raise _error(400, "missing_parameter", f"{name} is required", name)
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            raise _error(400, "invalid_type", f"{name} has the wrong type", name)
        return value

    model = field("model", str, required=True)
    if model not in MODELS:
        raise _error(400, "unknown_model", f"model must be one of {', '.join(MODELS)}", "model")
    text = field("input", str, required=True)
    if not text.strip():
        raise _error(400, "empty_text", "input is empty", "input")
    if len(text) > max_chars:
        message = f"input has {len(text)} characters, the limit is {max_chars}"
        raise _error(413, "text_too_long", message, "input")
    voice = field("voice", str, required=True)
    fmt = field("response_format", str) or "mp3"
    if fmt not in FORMATS:
        message = f"response_format must be one of {', '.join(FORMATS)}"
        raise _error(400, "unsupported_format", message, "response_format")
    stream_format = field("stream_format", str)
    if stream_format not in (None, "audio"):
        message = "stream_format must be audio (server-sent events are not served)"
        raise _error(400, "unsupported_stream_format", message, "stream_format")
    rate = field("sample_rate", int) or DEFAULT_RATE
    if not 8000 <= rate <= 48000:
        raise _error(400, "invalid_value", "sample_rate must be 8000–48000", "sample_rate")
    if fmt == "opus" and rate not in OPUS_RATES:
        rates = ", ".join(map(str, OPUS_RATES))
        raise _error(400, "invalid_value", f"opus needs sample_rate {rates}", "sample_rate")
    emotion = field("emotion", str)
    intensity = field("intensity", (int, float))
    instructions = field("instructions", str)
    if emotion is None and instructions:
        emotion, strength = instructions_emotion(instructions)
        if intensity is None:
            intensity = strength
    lang = field("lang", str)
    named = None if voice in OPENAI_VOICES else voice
    try:
        options = SpeakOptions(
            voice=named,
            lang=lang if lang is not None else ("auto" if named is None else None),
            emotion=emotion,
            intensity=None if intensity is None else float(intensity),
            speed=float(field("speed", (int, float)) or 1.0),
            pitch=float(field("pitch", (int, float)) or 0.0),
            volume=float(field("volume", (int, float)) or 0.0),
            seed=field("seed", int),
        )
    except (TypeError, ValueError) as exc:
        raise _error(400, "invalid_value", str(exc)) from None
    return _Params(text, options, fmt, rate)


# -- encoders ------------------------------------------------------------------------


class _Encoder:
    """16-bit PCM frames in, the format's bytes out, as soon as it has them."""

    def __init__(self, fmt: str, rate: int) -> None:
        self.fmt, self.rate = fmt, rate
        self._sink: _Sink | None = None
        self._file: Any = None
        self._lame: Any = None
        if fmt == "mp3":  # LAME itself: plain frames, no header to finish at the end
            import lameenc

            self._lame = lameenc.Encoder()
            self._lame.set_bit_rate(MP3_KBPS)
            self._lame.set_in_sample_rate(rate)
            self._lame.set_channels(1)
            self._lame.set_quality(2)
        elif fmt in ("flac", "opus"):
            import soundfile as sf

            self._sink = _Sink()
            container, subtype = {"flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}[fmt]
            self._file = sf.SoundFile(
                self._sink, mode="w", samplerate=rate, channels=1, format=container,
                subtype=subtype,
            )  # fmt: skip

    def header(self) -> bytes:
        if self.fmt != "wav":
            return b""
        unknown = 0xFFFFFFFF  # streamed: sizes unknown (players read to the end)
        fmt_chunk = struct.pack("<HHIIHH", 1, 1, self.rate, self.rate * 2, 2, 16)
        return (
            b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<I", 16)
            + fmt_chunk + b"data" + struct.pack("<I", unknown)
        )  # fmt: skip

    def encode(self, pcm: bytes | memoryview) -> bytes:
        if self._lame is not None:
            return bytes(self._lame.encode(pcm))
        if self._file is None:
            return bytes(pcm)
        assert self._sink is not None
        self._file.write(np.frombuffer(pcm, "<i2"))
        # FLAC is sent whole: its header holds the length, which streamed FLAC leaves
        # unknown, and libsndfile (so Python's soundfile) cannot read such a stream.
        return b"" if self.fmt == "flac" else self._sink.take()

    def finish(self) -> bytes:
        if self._lame is not None:
            return bytes(self._lame.flush())
        if self._file is None:
            return b""
        assert self._sink is not None
        self._file.close()
        return self._sink.take()


class _Sink(io.RawIOBase):
    """A file libsndfile writes into while what it wrote goes out: a write over bytes
    already sent (a header finished at close) is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self._sent = 0  # bytes handed out
        self._buffer = bytearray()  # bytes from _sent on
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        at = self._pos - self._sent
        if at < 0:  # over what went out already
            chunk, at = chunk[-at:], 0
        end = at + len(chunk)
        if end > len(self._buffer):
            self._buffer.extend(b"\0" * (end - len(self._buffer)))
        self._buffer[at:end] = chunk
        self._pos += len(bytes(data))
        return len(bytes(data))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        size = self._sent + len(self._buffer)
        self._pos = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset}.get(
            whence, size + offset
        )
        return self._pos

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._sent += len(out)
        self._buffer.clear()
        return out


# -- the in-memory socket ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Closed:
    code: int
    reason: str


class _Socket:
    """What a session's :class:`~.connection.Connection` reads from and writes to, for
    one HTTP request: the client's messages are given, the server's queued decoded."""

    def __init__(self, request: HttpRequest, messages: list[str]) -> None:
        self.request = Request(request.path, Headers(request.headers))
        self.remote_address = (request.peer or "unknown", 0)
        self.state = State.OPEN
        self.close_timeout: float | None = 2.0
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self._messages = list(messages)
        self._over = asyncio.Event()

    def __aiter__(self) -> _Socket:
        return self

    async def __anext__(self) -> str:
        if self._messages:
            return self._messages.pop(0)
        await self._over.wait()
        raise StopAsyncIteration

    async def send(self, data: bytes | str) -> None:
        message = decode_server(data)
        self.events.put_nowait(message)
        if isinstance(message, Done):
            self._over.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self.events.put_nowait(_Closed(int(code), reason))
        self._over.set()

    def end(self) -> None:
        """The HTTP client is gone (or its answer is complete): the session ends."""
        self._over.set()


_STATUS: Final = {
    "invalid_message": 400, "unsupported": 400, "unknown_emotion": 400, "empty_text": 400,
    "unsupported_language": 400, "unknown_voice": 400, "text_rejected": 400,
    "text_too_long": 413, "message_too_big": 413, "rate_limited": 429, "overloaded": 503,
    "expired": 503, "auth_failed": 401,
}  # fmt: skip
"""A session error's code → the HTTP status it answers (500 for any other)."""


def _from_error(error: Error) -> HttpError:
    status = _STATUS.get(error.code, 500)
    return _error(status, error.code, error.message, retry_ms=error.retry_after_ms)


def _from_close(closed: _Closed) -> HttpError:
    if closed.code == CloseCode.AUTH_FAILED:
        return _error(401, "auth_failed", "send an API key: Authorization: Bearer <key>")
    if closed.code == CloseCode.TRY_AGAIN_LATER:
        return _error(503, "overloaded", closed.reason or "too many sessions", retry_ms=1000)
    return _error(503, "closed", closed.reason or "the server closed the session")


class SpeechApi:
    """The routes (module docstring).

    Args:
        run_session: runs one session on a socket until it ends (``App.run_session``).
        voices: the built-in voices' names and languages.
        max_chars: the longest ``input``.
        registered: the persistent registered voices a request's key may use (its
            tenant's; without keys, those of keyless sessions), as ``(name, scope)``.
    """

    def __init__(
        self,
        run_session: Callable[[Any], Coroutine[Any, Any, None]],
        voices: list[tuple[str, str]],
        max_chars: int,
        registered: Callable[[HttpRequest], Coroutine[Any, Any, list[tuple[str, str]]]],
    ) -> None:
        self._run_session = run_session
        self._voices = voices
        self._max_chars = max_chars
        self._registered = registered

    async def speech(self, request: HttpRequest) -> HttpResponse:
        params = parse_speech(request.body, self._max_chars)
        values = request.header_values("authorization")
        token = bearer(values[0]) if len(values) == 1 else None
        hello = Hello(version=1, token=token, audio=AudioSpec(params.rate, "s16le", 40))
        speak = Speak(UtteranceId("speech"), params.text, params.options)
        messages = [encode_client(hello, binary=False), encode_client(speak, binary=False)]
        socket = _Socket(request, [str(m) for m in messages])
        session = asyncio.create_task(self._run_session(socket))
        try:
            first = await self._first_audio(socket)
        except BaseException:
            socket.end()
            await asyncio.gather(session, return_exceptions=True)
            raise
        encoder = _Encoder(params.fmt, params.rate)
        body = encoder.header() + (encoder.encode(first.pcm) if first is not None else b"")
        stream = self._rest(socket, session, encoder, done=first is None)
        headers = (("X-Voxlive-Sample-Rate", str(params.rate)),)
        return HttpResponse(200, body, FORMATS[params.fmt], headers, stream=stream)

    async def _first_audio(self, socket: _Socket) -> AudioFrame | None:
        """The first frame; None when the utterance completed without audio.

        Raises:
            HttpError: the session refused or failed the utterance first.
        """
        while True:
            event = await socket.events.get()
            if isinstance(event, AudioFrame):
                return event
            if isinstance(event, Error):
                raise _from_error(event)
            if isinstance(event, _Closed):
                raise _from_close(event)
            if isinstance(event, Done):
                if event.status == "completed":
                    return None
                if event.status == "failed" and event.samples == 0:
                    # Nothing speakable (emoji only, say): a done with warnings, no error
                    # (SPEC.md §4.7).
                    why = "; ".join(event.warnings) or "the input holds nothing speakable"
                    raise _error(400, "empty_text", why, "input")
                raise _error(500, event.status, f"the utterance ended {event.status}")

    async def _rest(
        self, socket: _Socket, session: asyncio.Task[None], encoder: _Encoder, done: bool
    ) -> AsyncIterator[bytes]:
        try:
            while not done:
                event = await socket.events.get()
                if isinstance(event, AudioFrame):
                    yield encoder.encode(event.pcm)
                elif isinstance(event, Done):
                    if event.status != "completed":
                        raise RuntimeError(f"the utterance ended {event.status} mid-stream")
                    break
                elif isinstance(event, Error):
                    raise RuntimeError(f"{event.code}: {event.message}")
                elif isinstance(event, _Closed):
                    raise RuntimeError(f"the session closed ({event.code}) mid-stream")
            yield encoder.finish()
        finally:
            socket.end()
            await asyncio.gather(session, return_exceptions=True)

    async def models(self, request: HttpRequest) -> HttpResponse:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "voxlive"} for m in MODELS]
        return HttpResponse.json(200, {"object": "list", "data": data})

    async def voices(self, request: HttpRequest) -> HttpResponse:
        builtin = [
            {"id": name, "name": name, "language": language, "kind": "builtin"}
            for name, language in self._voices
        ]
        aliases = [
            {"id": v, "name": v, "language": "auto", "kind": "openai_alias"} for v in OPENAI_VOICES
        ]
        registered = [
            {"id": name, "name": name, "language": "auto", "kind": "registered", "scope": scope}
            for name, scope in await self._registered(request)
        ]
        data = builtin + aliases + registered
        return HttpResponse.json(200, {"object": "list", "data": data})
