"""One utterance seen from the client: its events in order, and streamed-text input.

The client's reader hands each utterance its messages (``_start``, ``_put``,
``_frame``, ``_finish``); the application iterates them. Frames must come in order
with contiguous offsets (SPEC.md §8); anything else ends the utterance with a
``ClientError`` of code ``protocol_violation``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Self, assert_never

from voxlive.protocol.messages import (
    Append,
    AudioFrame,
    Done,
    End,
    Error,
    Flush,
    Marks,
    SpeakOptions,
    Started,
)
from voxlive.protocol.types import StreamId, UtteranceId

from .errors import ClientError
from .result import Result

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Event", "Stream", "Utterance"]

logger = logging.getLogger(__name__)

Event = AudioFrame | Started | Marks | Done | Error
"""What iterating an utterance yields; the last event is always a ``Done``."""


class Utterance:
    """The events of one utterance, in order: ``async for event in utterance``.

    Iteration ends after the ``Done`` event, or raises ``ClientError`` if the
    connection fails first or the server sends this utterance's audio out of order.
    """

    _opened = True  # the server was told about it (a speak is sent at once)

    def __init__(self, client: Client, id: UtteranceId) -> None:
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
        self._client = client
        self._queue: asyncio.Queue[Event | ClientError] = asyncio.Queue()
        self._next_seq = 0
        self._next_offset = 0
        self._broken = False
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
        c = self._client
        return Result(self.id, bytes(pcm), c.sample_rate, c.format, done, started, marks, errors)

    async def cancel(self) -> None:
        """Ask the server to stop this utterance; its ``done`` says ``cancelled``.

        Raises:
            ClientError: the connection is closed.
        """
        await self._client.cancel(self.id)

    # -- called by the client's reader ------------------------------------------------

    def _put(self, item: Event | ClientError) -> None:
        if not self._broken:
            self._queue.put_nowait(item)

    def _frame(self, frame: AudioFrame, width: int) -> None:
        if self._broken:
            return
        expected = (self._next_seq, self._next_offset)
        if (frame.seq, frame.offset) != expected:
            # SPEC.md §8: frames of a stream come in order with contiguous offsets.
            message = (
                f"utterance {self.id}: stream {frame.stream} sent (seq, offset) "
                f"{(frame.seq, frame.offset)}, expected {expected}"
            )
            logger.warning("protocol violation: %s", message)
            self._put(ClientError(message, code="protocol_violation"))
            self._broken = True
            return
        self._next_seq += 1
        self._next_offset += len(frame.pcm) // width
        self._put(frame)

    def _start(self, started: Started) -> None:
        self.stream = started.stream
        self.emotion = started.emotion
        self.intensity = started.intensity
        self._put(started)

    def _finish(self, done: Done) -> None:
        self.done = done
        self._put(done)


class Stream(Utterance):
    """An utterance whose text is streamed in: ``append`` … ``flush`` … ``end``.

    The options go with the first non-empty ``append``, which opens the utterance on
    the server. Iterate it like any ``Utterance``.
    """

    def __init__(self, client: Client, id: UtteranceId, options: SpeakOptions) -> None:
        super().__init__(client, id)
        self._options = options
        self._opened = False
        self._accepting = True
        self._chars = 0

    async def append(self, text: str) -> None:
        """Add text; complete sentences are synthesized at once. Empty text is ignored.

        Raises:
            RuntimeError: the stream was ended or cancelled, or is already done.
            ValueError: the piece, or all pieces together, exceed the server's limits.
            ClientError: the connection is closed.
        """
        self._check_accepting("append")
        if not text:
            return
        limits = self._client.welcome.limits
        self._client.check_text(text, allow_blank=True)
        if self._chars + len(text) > limits.max_pending_text_chars:
            raise ValueError(
                f"stream {self.id} would exceed {limits.max_pending_text_chars} characters"
            )
        self._chars += len(text)
        options = None if self._opened else self._options
        self._opened = True
        await self._client._send(Append(self.id, text, options))

    async def flush(self) -> None:
        """Synthesize the buffered text now, complete sentence or not.

        Raises:
            RuntimeError: the stream was ended or cancelled, or is already done.
            ClientError: the connection is closed.
        """
        self._check_accepting("flush")
        if self._opened:
            await self._client._send(Flush(self.id))

    async def end(self) -> None:
        """No more text: synthesize the rest; the stream then ends with ``done``.

        A stream that never got any text ends at once with status ``completed``.

        Raises:
            RuntimeError: the stream was already ended or cancelled, or is done.
            ClientError: the connection is closed.
        """
        self._check_accepting("end")
        self._accepting = False
        if self._opened:
            await self._client._send(End(self.id))
        else:
            self._client._finish_locally(self, "completed")

    def _check_accepting(self, action: str) -> None:
        if not self._accepting:
            raise RuntimeError(f"cannot {action}: stream {self.id} was ended or cancelled")
        if self.done is not None:
            # The server forgot the id: a late append would open a new utterance.
            raise RuntimeError(f"cannot {action}: stream {self.id} is done ({self.done.status})")
