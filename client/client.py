"""A small asyncio client for voxlive servers, for bot authors.

One WebSocket carries many utterances at once. A single reader task takes every
message off the socket and hands it to the utterance it belongs to: audio frames by
the ``stream`` announced in ``started``, control messages by ``id`` (SPEC.md §4–§8).
Each utterance is an async iterator of events that ends with its ``done``::

    import asyncio

    from voxlive.client import Client
    from voxlive.protocol.messages import AudioFrame

    async def main() -> None:
        async with Client.connect("ws://127.0.0.1:8765") as c:
            # Whole text in, audio collected:
            result = await c.synthesize("Hello chat!", seed=7)
            result.save_wav("hello.wav")

            # With an emotion (a name or a synonym, any case) and the other controls;
            # result.emotion is what the server applied ("happy"):
            result = await c.synthesize("We won!", emotion="开心", intensity=0.9, pitch=1.0)

            # Whole text in, events out as they come (play frames as they arrive):
            async for event in c.speak("Thanks for the follow!", speed=1.1):
                if isinstance(event, AudioFrame):
                    play(event.pcm)

            # Text streamed in (e.g. from an LLM), audio streamed out:
            stream = await c.open_stream()
            for piece in ("Welcome back, ", "everyone. ", "Let's go!"):
                await stream.append(piece)
            await stream.end()
            async for event in stream:
                ...

    asyncio.run(main())

Utterances run concurrently: start several with ``speak`` (it sends at once and
returns the iterator) and consume each in its own task. ``await c.cancel(id)`` stops
one, ``await c.cancel()`` all of them; each still ends with its ``done``
(status ``cancelled``).

Failures: errors the server reports about an utterance are yielded as ``Error``
events followed by ``done`` (status ``failed``, ``expired``, …). When the connection
fails or closes, or the server breaks the protocol, every waiting iterator and call
raises ``ClientError`` (with the close code), so nothing waits forever on a dead socket.

Events of an utterance are buffered without bound until it is iterated; consume (or
cancel) what you start.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypedDict, TypeVar, Unpack, assert_never

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from voxlive.protocol.codec import SAMPLE_WIDTH, decode_server, encode_client
from voxlive.protocol.errors import ProtocolError
from voxlive.protocol.messages import (
    AudioFrame,
    AudioSpec,
    Cancel,
    ClientMessage,
    Done,
    End,
    Error,
    Hello,
    Marks,
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
    Welcome,
)
from voxlive.protocol.types import (
    PROTOCOL_VERSION,
    AudioFormat,
    CloseCode,
    ErrorCode,
    Priority,
    Status,
    StreamId,
    UtteranceId,
    VoiceScope,
)

from .errors import ClientError
from .result import Result
from .utterance import Stream, Utterance

__all__ = ["REJECTED_CODES", "Client", "SpeakKwargs"]

logger = logging.getLogger(__name__)

REJECTED_CODES: Final[frozenset[ErrorCode]] = frozenset(
    {"invalid_message", "unsupported", "duplicate_id", "too_many_inflight"}
)
"""Error codes with which the server refuses to open an utterance at all.

No ``done`` follows such an error, so the client ends the utterance itself with a
``Done`` of status ``failed`` and no stream. The client checks text length and
emptiness before sending, so ``empty_text`` and ``text_too_long`` always come from
an utterance the server did open (and will end with its own ``done``).
"""

_Answer = TypeVar("_Answer", VoiceReady, VoiceListing, VoiceDeleted)
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_MAX_RECEIVE_BYTES: Final = 16 * 1024 * 1024
_KEPT_ERRORS: Final = 100
_CHUNK_OVERHEAD: Final = 256  # msgpack map and fields around one voice.register chunk


class SpeakKwargs(TypedDict, total=False):
    """Options of ``speak``, ``synthesize`` and ``open_stream``; see ``SpeakOptions``."""

    voice: str | None
    emotion: str | None
    intensity: float
    speed: float
    pitch: float
    volume: float
    priority: Priority
    deadline_ms: int | None
    timestamps: bool
    seed: int | None


@dataclass(slots=True)
class _Outgoing:
    data: bytes | str
    sent: asyncio.Future[None] | None


class _Connecting:
    """What ``Client.connect`` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, url: str, hello: Hello, open_timeout_s: float) -> None:
        self._args = (url, hello, open_timeout_s)
        self._client: Client | None = None

    def __await__(self) -> Generator[Any, None, Client]:
        return Client._open(*self._args).__await__()

    async def __aenter__(self) -> Client:
        self._client = await Client._open(*self._args)
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()


class Client:
    """One connection to a voxlive server; see the module docstring.

    Create it with ``Client.connect``. Every method runs on the event loop that
    connected it.
    """

    def __init__(self, ws: ClientConnection, welcome: Welcome) -> None:
        self.welcome = welcome
        """The server's ``welcome``: negotiated audio, limits and capabilities."""
        self.errors: collections.deque[Error] = collections.deque(maxlen=_KEPT_ERRORS)
        """Recent errors that name no utterance in flight (the last 100)."""
        self._ws = ws
        self._width = SAMPLE_WIDTH[welcome.audio.format]
        self._inflight: dict[UtteranceId, Utterance] = {}
        self._streams: dict[StreamId, Utterance] = {}
        self._ids = itertools.count(1)
        self._requests: dict[
            UtteranceId, asyncio.Future[VoiceReady | VoiceListing | VoiceDeleted]
        ] = {}
        self._request_ids = itertools.count(1)
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._sending: _Outgoing | None = None
        self._error: ClientError | None = None
        self._closing = False
        self._writer = asyncio.create_task(self._write())
        self._reader = asyncio.create_task(self._read())

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        sample_rate: int | None = None,
        format: AudioFormat = "s16le",
        frame_ms: int = 40,
        token: str | None = None,
        open_timeout_s: float = 10.0,
    ) -> _Connecting:
        """Connect and say ``hello``: ``async with Client.connect(url) as c`` or ``await``.

        Args:
            url: ``ws://host:port`` (or ``wss://``).
            sample_rate: Output rate in Hz; ``None`` is the voice's own rate.
            format: ``s16le`` or ``f32le`` PCM in audio frames.
            frame_ms: Target duration of one audio frame, in ms.
            token: ``hello.token``, when the server requires one.
            open_timeout_s: Limit for the connection and the ``welcome``, in seconds.

        Returns:
            An awaitable async context manager; awaiting it gives the ``Client``.
            Leaving the ``async with`` block closes the connection.

        Raises:
            ClientError: (when awaited) the server cannot be reached, or refused the
                ``hello`` (``code`` is then the server's error code, e.g. ``auth_failed``).
        """
        audio = AudioSpec(sample_rate=sample_rate, format=format, frame_ms=frame_ms)
        return _Connecting(
            url, Hello(version=PROTOCOL_VERSION, token=token, audio=audio), open_timeout_s
        )

    @classmethod
    async def _open(cls, url: str, hello: Hello, open_timeout_s: float) -> Client:
        try:
            ws = await connect(
                url,
                open_timeout=open_timeout_s,
                max_size=_MAX_RECEIVE_BYTES,
                compression=None,  # PCM does not compress; deflate only adds latency
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ClientError(f"cannot connect to {url}: {exc}", code="connect_failed") from exc
        try:
            welcome = await asyncio.wait_for(cls._greet(ws, hello), open_timeout_s)
        except BaseException:
            await ws.close()
            raise
        return cls(ws, welcome)

    @staticmethod
    async def _greet(ws: ClientConnection, hello: Hello) -> Welcome:
        try:
            await ws.send(encode_client(hello))
            reply = decode_server(await ws.recv())
        except ConnectionClosed as exc:
            message = f"the server closed the connection during hello (code {ws.close_code})"
            raise ClientError(message, close_code=ws.close_code) from exc
        except ProtocolError as exc:
            raise ClientError(f"invalid reply to hello: {exc}", code="protocol_violation") from exc
        if isinstance(reply, Error):
            # The server closes right after refusing (SPEC.md §7): learn the close code.
            try:
                await asyncio.wait_for(ws.wait_closed(), 2.0)
            except TimeoutError:
                pass
            message = f"the server refused the session: {reply.code}: {reply.message}"
            raise ClientError(message, code=reply.code, close_code=ws.close_code)
        if not isinstance(reply, Welcome):
            message = f"expected welcome, got {type(reply).__name__}"
            raise ClientError(message, code="protocol_violation")
        return reply

    async def close(self) -> None:
        """Close the connection (code 1000); utterances still in flight raise ``ClientError``.

        Closing a closed client does nothing. Never raises.
        """
        self._closing = True
        await self._ws.close()
        await asyncio.wait([self._reader, self._writer])

    async def wait_closed(self) -> None:
        """Wait until the connection is gone, whoever closed it. Never raises."""
        await asyncio.wait([self._reader])

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- properties ----------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz, as negotiated."""
        rate = self.welcome.audio.sample_rate
        assert rate is not None, "welcome.audio.sample_rate is always set"
        return rate

    @property
    def format(self) -> AudioFormat:
        """PCM encoding of audio frames, as negotiated."""
        return self.welcome.audio.format

    @property
    def closed(self) -> bool:
        """Whether the connection is gone (closed by either side, or failed)."""
        return self._error is not None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code, once closed."""
        return self._ws.close_code

    @property
    def inflight(self) -> frozenset[UtteranceId]:
        """Ids of the utterances started and not yet done."""
        return frozenset(self._inflight)

    # -- utterances ----------------------------------------------------------------------

    def speak(
        self, text: str, *, id: str | None = None, **options: Unpack[SpeakKwargs]
    ) -> Utterance:
        """Send one complete text now; iterate the result for its events.

        Args:
            text: What to say.
            id: Utterance id (1–64 of ``A-Z a-z 0-9 . _ : -``); generated when ``None``.
            **options: ``emotion`` (a name of ``welcome.capabilities.emotions`` or a
                synonym, any case), ``intensity`` (0–1), ``speed`` (0.25–4), ``pitch``
                (semitones, −12–12), ``volume`` (dB, −30–12), ``seed``, ``priority``,
                ``deadline_ms``, ``timestamps``, … (see ``SpeakOptions`` and SPEC.md
                §4.4). The server checks them: an emotion or option it does not support
                ends the utterance with an ``unsupported`` error and ``done`` (failed).

        Returns:
            The utterance, an async iterator of ``Event`` ending with ``Done``; its
            ``emotion`` and ``intensity`` say what the server applied, once started.

        Raises:
            ValueError: empty or too long text, a malformed or in-flight ``id``, or
                an option the codec cannot encode (NaN).
            TypeError: an unknown option name.
            ClientError: the connection is closed.
        """
        self._check_open()
        self.check_text(text)
        utterance = Utterance(self, self._claim(id))
        data = encode_client(Speak(utterance.id, text, SpeakOptions(**options)))
        self._inflight[utterance.id] = utterance
        self._outbox.put_nowait(_Outgoing(data, None))
        return utterance

    async def synthesize(
        self, text: str, *, id: str | None = None, **options: Unpack[SpeakKwargs]
    ) -> Result:
        """Speak ``text`` and return all of its audio and messages once it is done.

        A failed utterance is returned too: look at ``result.ok`` / ``result.errors``.

        Raises:
            ValueError: see ``speak``.
            ClientError: the connection failed before the utterance was done.
        """
        return await self.speak(text, id=id, **options).collect()

    async def open_stream(self, *, id: str | None = None, **options: Unpack[SpeakKwargs]) -> Stream:
        """Start an utterance whose text comes in pieces (``append``, ``flush``, ``end``).

        Raises:
            ValueError: a malformed or in-flight ``id``.
            ClientError: the connection is closed.
        """
        self._check_open()
        stream = Stream(self, self._claim(id), SpeakOptions(**options))
        self._inflight[stream.id] = stream
        return stream

    async def cancel(self, id: str | None = None) -> None:
        """Stop one utterance, or every utterance in flight when ``id`` is ``None``.

        Each still ends with its ``done`` (status ``cancelled``). An id that is not in
        flight (already done) is ignored.

        Raises:
            ClientError: the connection is closed.
        """
        self._check_open()
        if id is None:
            targets = list(self._inflight.values())
        elif (one := self._inflight.get(UtteranceId(id))) is not None:
            targets = [one]
        else:
            return
        unopened = [u for u in targets if not u._opened]
        for u in targets:
            if isinstance(u, Stream):
                u._accepting = False
        for u in unopened:
            self._finish_locally(u, "cancelled")
        if len(unopened) < len(targets):
            await self._send(Cancel(None if id is None else UtteranceId(id)))

    # -- voices (SPEC.md §4.6) -----------------------------------------------------------

    async def register_voice(
        self,
        source: str | Path | bytes,
        *,
        name: str | None = None,
        scope: VoiceScope = "session",
        chunk_bytes: int = 48 * 1024,
    ) -> VoiceReady:
        """Upload a reference clip (WAV, FLAC, OGG, MP3, AIFF) and register its voice.

        Args:
            source: The file's path or its bytes.
            name: Voice id wanted (1–64 of ``A-Z a-z 0-9 . _ : -``); the server picks
                one when ``None``.
            scope: ``session`` (forgotten when this connection closes) or ``persistent``.
            chunk_bytes: Audio bytes per ``voice.register`` message (kept under
                ``limits.max_message_bytes``).

        Returns:
            The server's ``voice.ready``: the voice id to use in ``speak(voice=...)``,
            whether the clip was known already, and what was measured on it.

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is larger than ``limits.max_reference_bytes``, or a
                bad ``name``/``chunk_bytes``.
            ClientError: the server refused the clip (``code`` is ``too_short``,
                ``silent``, ``unsupported_format``, …), or the connection is closed.
        """
        self._check_open()
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        limits = self.welcome.limits
        if len(data) > limits.max_reference_bytes:
            limit = limits.max_reference_bytes
            raise ValueError(f"too_large: {len(data)} bytes; the limit is {limit}")
        if name is not None and not _ID_PATTERN.fullmatch(name):
            raise ValueError(f"voice name {name!r}: use 1-64 characters of A-Z a-z 0-9 . _ : -")
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        size = min(chunk_bytes, limits.max_message_bytes - _CHUNK_OVERHEAD)
        pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        id, reply = self._request()
        for seq, piece in enumerate(pieces):
            final = seq == len(pieces) - 1
            first = seq == 0
            chunk = VoiceRegister(
                id,
                piece,
                seq=seq,
                final=final,
                name=name if first else None,
                scope=scope if first else "session",
            )
            self._outbox.put_nowait(_Outgoing(encode_client(chunk), None))
        return await self._answer(id, reply, VoiceReady)

    async def list_voices(self) -> list[VoiceInfo]:
        """Return the registered voices this connection may use (persistent and its own).

        Raises:
            ClientError: the server refused, or the connection is closed.
        """
        self._check_open()
        id, reply = self._request()
        self._outbox.put_nowait(_Outgoing(encode_client(VoiceList(id)), None))
        return list((await self._answer(id, reply, VoiceListing)).voices)

    async def delete_voice(self, voice: str) -> bool:
        """Delete a registered voice; return ``False`` if no such voice was visible.

        Raises:
            ValueError: ``voice`` is not a valid voice id.
            ClientError: the server refused, or the connection is closed.
        """
        self._check_open()
        if not _ID_PATTERN.fullmatch(voice):
            raise ValueError(f"voice {voice!r} is not a valid voice id")
        id, reply = self._request()
        self._outbox.put_nowait(_Outgoing(encode_client(VoiceDelete(id, voice)), None))
        return (await self._answer(id, reply, VoiceDeleted)).deleted

    def _request(
        self,
    ) -> tuple[UtteranceId, asyncio.Future[VoiceReady | VoiceListing | VoiceDeleted]]:
        id = UtteranceId(f"voxlive-req-{next(self._request_ids)}")
        reply: asyncio.Future[VoiceReady | VoiceListing | VoiceDeleted]
        reply = asyncio.get_running_loop().create_future()
        self._requests[id] = reply
        return id, reply

    async def _answer(
        self,
        id: UtteranceId,
        reply: asyncio.Future[VoiceReady | VoiceListing | VoiceDeleted],
        kind: type[_Answer],
    ) -> _Answer:
        try:
            answer = await reply
        finally:
            self._requests.pop(id, None)
        if not isinstance(answer, kind):
            message = f"expected {kind.__name__} for {id}, got {type(answer).__name__}"
            raise ClientError(message, code="protocol_violation")
        return answer

    def check_text(self, text: str, *, allow_blank: bool = False) -> None:
        """Check a text against what the server accepts, before sending it.

        Raises:
            ValueError: empty (or only whitespace, unless ``allow_blank``), or longer
                than ``welcome.limits.max_text_chars``.
        """
        if not text or (text.isspace() and not allow_blank):
            raise ValueError("empty_text: there is nothing to say")
        limit = self.welcome.limits.max_text_chars
        if len(text) > limit:
            raise ValueError(f"text_too_long: {len(text)} characters; the limit is {limit}")

    # -- internals -------------------------------------------------------------------------

    def _claim(self, id: str | None) -> UtteranceId:
        if id is None:
            while (new := UtteranceId(f"u{next(self._ids)}")) in self._inflight:
                pass
            return new
        if not _ID_PATTERN.fullmatch(id):
            raise ValueError(f"utterance id {id!r}: use 1-64 characters of A-Z a-z 0-9 . _ : -")
        if id in self._inflight:
            raise ValueError(f"utterance {id} is already in flight")
        return UtteranceId(id)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error.copy()

    async def _send(self, msg: ClientMessage) -> None:
        self._check_open()
        sent = asyncio.get_running_loop().create_future()
        self._outbox.put_nowait(_Outgoing(encode_client(msg), sent))
        await sent

    def _finish_locally(self, u: Utterance, status: Status) -> None:
        if self._inflight.get(u.id) is u:
            del self._inflight[u.id]
        u._finish(Done(id=u.id, stream=None, status=status))

    async def _write(self) -> None:
        """Send queued messages in order (one writer keeps ``speak`` and ``cancel`` ordered)."""
        try:
            while True:
                item = self._sending = await self._outbox.get()
                await self._ws.send(item.data)
                self._sending = None
                if item.sent is not None and not item.sent.done():
                    item.sent.set_result(None)
        except ConnectionClosed:
            pass  # the reader sees the close and tells everyone waiting

    async def _read(self) -> None:
        """The one reader: demultiplex until the connection ends, then fail what is left."""
        try:
            async for data in self._ws:
                self._receive(data)
            error = self._closed_error()
        except ConnectionClosed:
            error = self._closed_error()
        except ProtocolError as exc:
            logger.warning("server sent an invalid message: %s", exc)
            error = ClientError(
                f"the server sent an invalid message: {exc}",
                code="protocol_violation",
                close_code=CloseCode.PROTOCOL_ERROR,
            )
            await self._ws.close(CloseCode.PROTOCOL_ERROR, "invalid message")
        except Exception:
            logger.error("client reader failed", exc_info=True)
            error = ClientError("client reader failed", close_code=CloseCode.INTERNAL_ERROR)
            await self._ws.close(CloseCode.INTERNAL_ERROR)
        self._fail_all(error)

    def _closed_error(self) -> ClientError:
        code, reason = self._ws.close_code, self._ws.close_reason
        if self._closing:
            return ClientError("the client closed the connection", close_code=code)
        detail = f": {reason}" if reason else ""
        return ClientError(f"the connection closed (code {code}{detail})", close_code=code)

    def _fail_all(self, error: ClientError) -> None:
        self._error = error
        for u in self._inflight.values():
            u._put(error.copy())
        self._inflight.clear()
        self._streams.clear()
        for reply in self._requests.values():
            if not reply.done():
                reply.set_exception(error.copy())
        self._requests.clear()
        waiting = [self._sending] if self._sending is not None else []
        while not self._outbox.empty():
            waiting.append(self._outbox.get_nowait())
        for item in waiting:
            if item.sent is not None and not item.sent.done():
                item.sent.set_exception(error.copy())
        self._writer.cancel()

    def _receive(self, data: bytes | str) -> None:
        msg = decode_server(data)
        match msg:
            case AudioFrame():
                if (u := self._streams.get(msg.stream)) is not None:
                    u._frame(msg, self._width)
                else:
                    logger.warning("dropped an audio frame of unknown stream %d", msg.stream)
            case Started():
                self._on_started(msg)
            case Marks():
                if (u := self._inflight.get(msg.id)) is not None:
                    u._put(msg)
            case Done():
                self._on_done(msg)
            case Error():
                self._on_error(msg)
            case Welcome():
                logger.warning("ignored a second welcome")
            case VoiceReady() | VoiceListing() | VoiceDeleted():
                reply = self._requests.get(msg.id)
                if reply is not None and not reply.done():
                    reply.set_result(msg)
                else:
                    logger.warning("ignored %s for unknown request %s", type(msg).__name__, msg.id)
            case _:
                assert_never(msg)

    def _on_started(self, msg: Started) -> None:
        u = self._inflight.get(msg.id)
        if u is None or u.stream is not None:
            logger.warning("ignored started for %s, which is not waiting to start", msg.id)
            return
        self._streams[msg.stream] = u
        u._start(msg)

    def _on_done(self, msg: Done) -> None:
        u = self._inflight.pop(msg.id, None)
        if u is None:
            logger.debug("ignored done for %s, which is not in flight", msg.id)
            return
        if u.stream is not None:
            self._streams.pop(u.stream, None)
        if isinstance(u, Stream) and u._opened and u._accepting:
            # The server ended the stream before our end: the id stays reserved until
            # we send end (SPEC.md §4.3), which also tells it no more text will come.
            self._outbox.put_nowait(_Outgoing(encode_client(End(u.id)), None))
        u._finish(msg)

    def _on_error(self, msg: Error) -> None:
        reply = None if msg.id is None else self._requests.get(msg.id)
        if reply is not None and not reply.done():
            reply.set_exception(ClientError(f"{msg.code}: {msg.message}", code=msg.code))
            return
        u = None if msg.id is None else self._inflight.get(msg.id)
        if u is None:
            logger.warning("server error %s: %s", msg.code, msg.message)
            self.errors.append(msg)
            return
        u._put(msg)
        if msg.code in REJECTED_CODES and u.stream is None:
            # The session refused to open it, and no done will follow (see REJECTED_CODES).
            self._finish_locally(u, "failed")
