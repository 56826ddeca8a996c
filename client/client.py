"""A small asyncio client for voxlive servers, for bot authors.

One WebSocket carries many utterances at once. The protocol is kept by a sans-I/O
``ClientSession`` (``voxlive.protocol.client_session``); this package only moves bytes
between it and the socket (``connection.py``) and hands each utterance the events the
session sorted out for it (SPEC.md §4–§8). Each utterance is an async iterator of events
that ends with its ``done``::

    import asyncio

    from voxlive.client import Client
    from voxlive.protocol.messages import AudioFrame, Marks

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

            # Lip-sync: with timestamps, each Marks event carries words, phonemes and
            # visemes (v in sil PP FF TH DD kk CH SS nn RR aa E ih oh ou, SPEC.md §5.3),
            # in samples of the audio, before the audio frames they describe:
            async for event in c.speak("Hi there!", timestamps=True):
                if isinstance(event, Marks):
                    for v in event.visemes:
                        mouth.schedule(v.v, v.start / c.sample_rate, v.end / c.sample_rate)
            result = await c.synthesize("Hi there!", timestamps=True)
            result.visemes, result.viseme_at(11025)  # the track; the shape at sample 11025

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
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypedDict, TypeVar, Unpack

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from voxlive.protocol.client_session import (
    REJECTED_CODES,
    ClientSession,
    VoiceAnswer,
)
from voxlive.protocol.messages import (
    AudioSpec,
    Consent,
    Hello,
    SpeakOptions,
    VoiceDeleted,
    VoiceInfo,
    VoiceListing,
    VoiceReady,
    Welcome,
)
from voxlive.protocol.types import (
    PROTOCOL_VERSION,
    AudioFormat,
    Priority,
    UtteranceId,
    VoiceScope,
)

from .connection import Connection, greet, session_after
from .errors import ClientError
from .result import Result
from .utterance import Stream, Utterance

__all__ = ["REJECTED_CODES", "Client", "SpeakKwargs"]

_Answer = TypeVar("_Answer", VoiceReady, VoiceListing, VoiceDeleted)
_MAX_RECEIVE_BYTES: Final = 16 * 1024 * 1024


class SpeakKwargs(TypedDict, total=False):
    """Options of ``speak``, ``synthesize`` and ``open_stream``; see ``SpeakOptions``."""

    voice: str | None
    lang: str | None
    emotion: str | None
    intensity: float
    speed: float
    pitch: float
    volume: float
    priority: Priority
    deadline_ms: int | None
    timestamps: bool
    seed: int | None
    cache: bool


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

    Args:
        ws: An open WebSocket whose ``hello`` was answered with ``welcome``.
        welcome: That ``welcome``.
        session: The session that said ``hello``; ``None`` starts one from ``welcome``.
    """

    def __init__(
        self, ws: ClientConnection, welcome: Welcome, session: ClientSession | None = None
    ) -> None:
        if session is None:
            session = session_after(welcome)
        self.welcome = welcome
        """The server's ``welcome``: negotiated audio, limits and capabilities."""
        self._connection = Connection(ws, session)
        self.errors = self._connection.errors
        """Recent errors that name no utterance in flight (the last 100)."""

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
            session = await asyncio.wait_for(greet(ws, hello), open_timeout_s)
        except BaseException:
            await ws.close()
            raise
        return cls(ws, session.welcome, session)

    async def close(self) -> None:
        """Close the connection (code 1000); utterances still in flight raise ``ClientError``.

        Closing a closed client does nothing. Never raises.
        """
        await self._connection.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone, whoever closed it. Never raises."""
        await asyncio.wait([self._connection.reader])

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
        return self._connection.error is not None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code, once closed."""
        return self._connection.ws.close_code

    @property
    def inflight(self) -> frozenset[UtteranceId]:
        """Ids of the utterances started and not yet done."""
        return self._connection.inflight

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
                ``deadline_ms``, ``timestamps``, ``cache`` (False: never a replay of
                a repeated line), … (see ``SpeakOptions`` and SPEC.md
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
        self._connection.check_open()
        claimed = self._connection.session.send_speak(text, SpeakOptions(**options), id)
        utterance = Utterance(self._connection, claimed)
        self._connection.add(claimed, utterance)
        self._connection.push()
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
        self._connection.check_open()
        claimed = self._connection.session.open_stream(SpeakOptions(**options), id)
        stream = Stream(self._connection, claimed)
        self._connection.add(claimed, stream)
        return stream

    async def cancel(self, id: str | None = None) -> None:
        """Stop one utterance, or every utterance in flight when ``id`` is ``None``.

        Each still ends with its ``done`` (status ``cancelled``). An id that is not in
        flight (already done) is ignored.

        Raises:
            ClientError: the connection is closed.
        """
        await self._connection.cancel(None if id is None else UtteranceId(id))

    def check_text(self, text: str, *, allow_blank: bool = False) -> None:
        """Check a text against what the server accepts, before sending it.

        Raises:
            ValueError: empty (or only whitespace, unless ``allow_blank``), or longer
                than ``welcome.limits.max_text_chars``.
        """
        self._connection.session.check_text(text, allow_blank=allow_blank)

    # -- voices (SPEC.md §4.6) -----------------------------------------------------------

    async def register_voice(
        self,
        source: str | Path | bytes,
        *,
        name: str | None = None,
        scope: VoiceScope = "session",
        chunk_bytes: int = 48 * 1024,
        consent: Consent | None = None,
    ) -> VoiceReady:
        """Upload a reference clip (WAV, FLAC, OGG, MP3, AIFF) and register its voice.

        Args:
            source: The file's path or its bytes.
            name: Voice id wanted (1–64 of ``A-Z a-z 0-9 . _ : -``); the server picks
                one when ``None``.
            scope: ``session`` (forgotten when this connection closes) or ``persistent``.
            chunk_bytes: Audio bytes per ``voice.register`` message (kept under
                ``limits.max_message_bytes``).
            consent: The speaker's consent to the cloning (SPEC.md §4.6, v1.7), e.g.
                ``Consent(True, "Anna Li", "signed form", "2024-05-01")``; stored with the
                voice. A server whose ``capabilities.consent_required`` is set refuses
                a clip without one (``consent_required``).

        Returns:
            The server's ``voice.ready``: the voice id to use in ``speak(voice=...)``,
            whether the clip was known already, and what was measured on it.

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is larger than ``limits.max_reference_bytes``, or a
                bad ``name``/``chunk_bytes``/``consent`` (blank ``by``, ``at`` not ISO
                8601, …).
            ClientError: the server refused the clip (``code`` is ``too_short``,
                ``silent``, ``unsupported_format``, ``consent_required``, …), or the
                connection is closed.
        """
        self._connection.check_open()
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        session = self._connection.session
        id = session.send_voice_register(
            data, name=name, scope=scope, chunk_bytes=chunk_bytes, consent=consent
        )
        return await self._answer(id, VoiceReady)

    async def list_voices(self) -> list[VoiceInfo]:
        """Return the registered voices this connection may use (persistent and its own).

        Raises:
            ClientError: the server refused, or the connection is closed.
        """
        self._connection.check_open()
        id = self._connection.session.send_voice_list()
        return list((await self._answer(id, VoiceListing)).voices)

    async def delete_voice(self, voice: str) -> bool:
        """Delete a registered voice; return ``False`` if no such voice was visible.

        Raises:
            ValueError: ``voice`` is not a valid voice id.
            ClientError: the server refused, or the connection is closed.
        """
        self._connection.check_open()
        id = self._connection.session.send_voice_delete(voice)
        return (await self._answer(id, VoiceDeleted)).deleted

    async def _answer(self, id: UtteranceId, kind: type[_Answer]) -> _Answer:
        reply = self._connection.expect(id)
        self._connection.push()
        answer: VoiceAnswer = await reply
        assert isinstance(answer, kind), "the session matches answers to requests"
        return answer
