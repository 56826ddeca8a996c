"""One utterance seen from the client: its events in order, and streamed-text input.

The connection hands each utterance its events (``deliver``), already checked by the
protocol session (frames in order with contiguous offsets, SPEC.md §8; an utterance the
server broke the rules for gets a ``ClientError`` of code ``protocol_violation``); the
application iterates them. A ``Stream`` sends its text through the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Self, assert_never

from voxlive.protocol.client_session import UtteranceEvent
from voxlive.protocol.errors import InvalidState
from voxlive.protocol.messages import AudioFrame, Done, Error, Marks, Started
from voxlive.protocol.types import StreamId, UtteranceId

from .connection import Connection
from .errors import ClientError
from .result import Result

__all__ = ["Event", "Stream", "Utterance"]

Event = UtteranceEvent
"""What iterating an utterance yields; the last event is always a ``Done``."""


class Utterance:
    """The events of one utterance, in order: ``async for event in utterance``.

    Iteration ends after the ``Done`` event, or raises ``ClientError`` if the
    connection fails first or the server sends this utterance's audio out of order.
    """

    def __init__(self, connection: Connection, id: UtteranceId) -> None:
        self.id = id
        """The utterance id, given or generated (``u1``, ``u2``, …)."""
        self.stream: StreamId | None = None
        """The audio stream id, once ``started`` arrived."""
        self.emotion: str | None = None
        """The canonical emotion the server applied (``happy`` for ``开心``), from
        ``started``; ``None`` before it, or when the server did not say (SPEC.md §5.2)."""
        self.intensity: float | None = None
        """The emotion intensity the server applied, from ``started``; ``None`` before
        it, or when the server did not say."""
        self.done: Done | None = None
        """The ``done`` message, once it arrived."""
        self._connection = connection
        self._queue: asyncio.Queue[Event | ClientError] = asyncio.Queue()
        self._failed = False
        self._ended = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        """Return the next event.

        Raises:
            StopAsyncIteration: after ``Done``.
            ClientError: the connection failed, or the audio arrived out of order.
        """
        if self._ended:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, ClientError):
            self._ended = True
            raise item
        if isinstance(item, Done):
            self._ended = True
        return item

    async def collect(self) -> Result:
        """Read the (remaining) events and return them with the joined audio.

        Raises:
            ClientError: see ``__anext__``.
        """
        pcm = bytearray()
        started: Started | None = None
        marks: list[Marks] = []
        errors: list[Error] = []
        done: Done | None = None
        async for event in self:
            match event:
                case AudioFrame():
                    pcm += event.pcm
                case Started():
                    started = event
                case Marks():
                    marks.append(event)
                case Error():
                    errors.append(event)
                case Done():
                    done = event
                case _:
                    assert_never(event)
        assert done is not None, "iteration ends with done or raises"
        audio = self._connection.session.welcome.audio
        rate = audio.sample_rate
        assert rate is not None, "welcome.audio.sample_rate is always set"
        return Result(self.id, bytes(pcm), rate, audio.format, done, started, marks, errors)

    async def cancel(self) -> None:
        """Ask the server to stop this utterance; its ``done`` says ``cancelled``.

        Raises:
            ClientError: the connection is closed.
        """
        await self._connection.cancel(self.id)

    def deliver(self, item: Event | ClientError) -> None:
        """Take the next event (called by the connection, not by applications).

        After a ``ClientError`` nothing more is queued; a later ``Done`` is still
        recorded in ``done``.
        """
        match item:
            case Started():
                self.stream, self.emotion, self.intensity = (
                    item.stream,
                    item.emotion,
                    item.intensity,
                )
            case Done():
                self.done = item
            case _:
                pass
        if not self._failed:
            self._queue.put_nowait(item)
            self._failed = isinstance(item, ClientError)


class Stream(Utterance):
    """An utterance whose text is streamed in: ``append`` … ``flush`` … ``end``.

    The options go with the first non-empty ``append``, which opens the utterance on
    the server. Iterate it like any ``Utterance``.
    """

    def __init__(self, connection: Connection, id: UtteranceId) -> None:
        super().__init__(connection, id)
        self._input_ended = False

    async def append(self, text: str) -> None:
        """Add text; complete sentences are synthesized at once. Empty text is ignored.

        Raises:
            RuntimeError: the stream was ended or cancelled, or is already done.
            ValueError: the piece, or all pieces together, exceed the server's limits.
            ClientError: the connection is closed.
        """
        self._check_accepting("append")
        session = self._connection.session
        await self._send(lambda: session.send_append(self.id, text))

    async def flush(self) -> None:
        """Synthesize the buffered text now, complete sentence or not.

        Raises:
            RuntimeError: the stream was ended or cancelled, or is already done.
            ClientError: the connection is closed.
        """
        self._check_accepting("flush")
        session = self._connection.session
        await self._send(lambda: session.send_flush(self.id))

    async def end(self) -> None:
        """No more text: synthesize the rest; the stream then ends with ``done``.

        A stream that never got any text ends at once with status ``completed``.

        Raises:
            RuntimeError: the stream was already ended or cancelled, or is done.
            ClientError: the connection is closed.
        """
        self._check_accepting("end")
        self._input_ended = True
        session = self._connection.session
        await self._send(lambda: session.send_end(self.id))

    async def _send(self, build: Callable[[], None]) -> None:
        """Have the session build the message, then send it."""
        try:
            build()
        except InvalidState as exc:
            self._connection.check_open()  # a session broken by the server: say so
            raise RuntimeError(str(exc)) from exc
        await self._connection.submit()

    def _check_accepting(self, action: str) -> None:
        if self._input_ended:
            raise RuntimeError(f"cannot {action}: stream {self.id} was ended or cancelled")
        if self.done is not None:
            # The server forgot the id: a late append would open a new utterance.
            raise RuntimeError(f"cannot {action}: stream {self.id} is done ({self.done.status})")
