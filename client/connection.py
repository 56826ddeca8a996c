"""The I/O half of the client: bytes between the WebSocket and the ``ClientSession``.

One writer task sends what the session queued, in order (so ``speak`` and ``cancel``
keep their order); one reader task feeds the session what arrives. The session's events
are handed to the public objects they concern: utterance events to their ``Utterance``,
answers to the voice request waiting for them. No protocol rule lives here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Final, Protocol, assert_never

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voxlive.protocol.client_session import (
    Answered,
    ClientEvent,
    ClientSession,
    Ignored,
    Received,
    Refused,
    Unclaimed,
    UtteranceEvent,
    Violation,
    VoiceAnswer,
)
from voxlive.protocol.codec import encode_server
from voxlive.protocol.messages import Done, Error, Hello, Welcome
from voxlive.protocol.types import CloseCode, UtteranceId

from .errors import ClientError

__all__ = ["Connection", "Recipient", "greet", "session_after"]

logger = logging.getLogger(__name__)

_KEPT_ERRORS: Final = 100


class Recipient(Protocol):
    """What receives the events of one utterance (``Utterance`` does)."""

    def deliver(self, item: UtteranceEvent | ClientError) -> None:
        """Take the next event, or the error that ends the utterance."""


@dataclass(slots=True)
class _Outgoing:
    data: bytes | str
    sent: asyncio.Future[None] | None


class Connection:
    """The WebSocket, its session, and the tasks that pump between them.

    Args:
        ws: An open WebSocket whose handshake (``hello``/``welcome``) is done.
        session: The session that did it, now open.
    """

    def __init__(self, ws: ClientConnection, session: ClientSession) -> None:
        self.session = session
        """The protocol state; call its ``send_*`` methods, then ``push`` or ``submit``."""
        self.errors: collections.deque[Error] = collections.deque(maxlen=_KEPT_ERRORS)
        """Recent errors that name no utterance or request in flight."""
        self.error: ClientError | None = None
        """Why the connection is gone, once it is."""
        self.closing = False
        """Whether the client itself is closing the connection."""
        self._ws = ws
        self._recipients: dict[UtteranceId, Recipient] = {}
        self._answers: dict[UtteranceId, asyncio.Future[VoiceAnswer]] = {}
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._sending: _Outgoing | None = None
        self._violation: str | None = None
        self._writer = asyncio.create_task(self._write())
        self.reader = asyncio.create_task(self._read())
        """The reader task: done once the connection is gone."""

    @property
    def ws(self) -> ClientConnection:
        """The WebSocket."""
        return self._ws

    @property
    def inflight(self) -> frozenset[UtteranceId]:
        """Ids of the utterances started and not yet done (none once closed)."""
        return frozenset() if self.error is not None else self.session.inflight

    def check_open(self) -> None:
        """Raise why the connection is gone, if it is.

        Raises:
            ClientError: the connection is closed.
        """
        if self.error is not None:
            raise self.error.copy()

    def add(self, id: UtteranceId, recipient: Recipient) -> None:
        """Route the events of utterance ``id`` to ``recipient`` until its ``Done``."""
        self._recipients[id] = recipient

    def expect(self, id: UtteranceId) -> asyncio.Future[VoiceAnswer]:
        """Return the future the answer to voice request ``id`` will resolve."""
        answer: asyncio.Future[VoiceAnswer] = asyncio.get_running_loop().create_future()
        self._answers[id] = answer
        return answer

    def push(self) -> None:
        """Queue what the session has to send and deliver its events; do not wait."""
        for data in self.session.data_to_send():
            self._outbox.put_nowait(_Outgoing(data, None))
        self._deliver(self.session.events_received())

    async def submit(self) -> None:
        """Like ``push``, then wait until the last message queued is on the wire.

        Raises:
            ClientError: there is something to send and the connection is closed.
        """
        outgoing = self.session.data_to_send()
        self._deliver(self.session.events_received())
        if not outgoing:
            return
        self.check_open()
        sent = asyncio.get_running_loop().create_future()
        for n, data in enumerate(outgoing, 1):
            self._outbox.put_nowait(_Outgoing(data, sent if n == len(outgoing) else None))
        await sent

    async def cancel(self, id: UtteranceId | None) -> None:
        """Stop one utterance, or all of them; see ``Client.cancel``.

        Raises:
            ClientError: the connection is closed.
        """
        self.check_open()
        self.session.send_cancel(id)
        await self.submit()

    async def close(self) -> None:
        """Close the WebSocket (code 1000) and wait for both tasks. Never raises."""
        self.closing = True
        await self._ws.close()
        await asyncio.wait([self.reader, self._writer])

    # --- events ------------------------------------------------------------------------

    def _deliver(self, events: list[ClientEvent]) -> None:
        for event in events:
            match event:
                case Received(id, item):
                    recipient = self._recipients.get(id)
                    if recipient is not None:
                        if isinstance(item, Done):
                            del self._recipients[id]
                        recipient.deliver(item)
                case Answered(id, answer):
                    self._answer(id, answer)
                case Violation(message, utterance, request):
                    self._on_violation(message, utterance, request)
                case Unclaimed(error):
                    logger.warning("server error %s: %s", error.code, error.message)
                    self.errors.append(error)
                case Ignored(reason):
                    logger.warning("%s", reason)
                case Welcome() | Refused():
                    pass  # the handshake is over before a Connection exists
                case _:
                    assert_never(event)

    def _answer(self, id: UtteranceId, answer: VoiceAnswer | Error) -> None:
        future = self._answers.pop(id, None)
        if future is None or future.done():
            return
        if isinstance(answer, Error):
            error = ClientError(f"{answer.code}: {answer.message}", code=answer.code)
            future.set_exception(error)
        else:
            future.set_result(answer)

    def _on_violation(
        self, message: str, utterance: UtteranceId | None, request: UtteranceId | None
    ) -> None:
        logger.warning("protocol violation: %s", message)
        error = ClientError(message, code="protocol_violation")
        if utterance is not None and (recipient := self._recipients.get(utterance)) is not None:
            recipient.deliver(error)
        elif request is not None and (future := self._answers.pop(request, None)) is not None:
            if not future.done():
                future.set_exception(error)
        elif utterance is None and request is None:
            self._violation = message

    # --- tasks -------------------------------------------------------------------------

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
        """The one reader: feed the session until the connection ends, then fail the rest."""
        try:
            error = await self._receive_all()
        except ConnectionClosed:
            error = self._closed_error()
        except Exception:
            logger.error("client reader failed", exc_info=True)
            error = ClientError("client reader failed", close_code=CloseCode.INTERNAL_ERROR)
            await self._ws.close(CloseCode.INTERNAL_ERROR)
        self._fail_all(error)

    async def _receive_all(self) -> ClientError:
        async for data in self._ws:
            self.session.receive_data(data)
            self.push()
            code = self.session.close_code()
            if code is not None:
                message = self._violation or "the server broke the protocol"
                await self._ws.close(code, "invalid message")
                return ClientError(message, code="protocol_violation", close_code=code)
        return self._closed_error()

    def _closed_error(self) -> ClientError:
        code, reason = self._ws.close_code, self._ws.close_reason
        if self.closing:
            return ClientError("the client closed the connection", close_code=code)
        detail = f": {reason}" if reason else ""
        return ClientError(f"the connection closed (code {code}{detail})", close_code=code)

    def _fail_all(self, error: ClientError) -> None:
        self.error = error
        for recipient in self._recipients.values():
            recipient.deliver(error.copy())
        self._recipients.clear()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(error.copy())
        self._answers.clear()
        waiting = [self._sending] if self._sending is not None else []
        while not self._outbox.empty():
            waiting.append(self._outbox.get_nowait())
        for item in waiting:
            if item.sent is not None and not item.sent.done():
                item.sent.set_exception(error.copy())
        self._writer.cancel()


async def greet(ws: ClientConnection, hello: Hello) -> ClientSession:
    """Say ``hello`` and return the session once the ``welcome`` arrived.

    Raises:
        ClientError: the server closed, refused the ``hello`` or answered nonsense.
    """
    session = ClientSession()
    session.send_hello(hello)
    try:
        for data in session.data_to_send():
            await ws.send(data)
        session.receive_data(await ws.recv())  # always one event before welcome
    except ConnectionClosed as exc:
        message = f"the server closed the connection during hello (code {ws.close_code})"
        raise ClientError(message, close_code=ws.close_code) from exc
    match session.events_received()[0]:
        case Welcome():
            return session
        case Refused(Error(code=code, message=text)):
            # The server closes right after refusing (SPEC.md §7): learn the close code.
            try:
                await asyncio.wait_for(ws.wait_closed(), 2.0)
            except TimeoutError:
                pass
            message = f"the server refused the session: {code}: {text}"
            raise ClientError(message, code=code, close_code=ws.close_code)
        case Violation(message):
            raise ClientError(message, code="protocol_violation")
        case other:
            raise AssertionError(f"unexpected {other!r} during hello")


def session_after(welcome: Welcome) -> ClientSession:
    """A session that said ``hello`` and got ``welcome`` (for a handshake done elsewhere)."""
    session = ClientSession()
    session.send_hello(Hello(version=welcome.version, audio=welcome.audio))
    session.data_to_send()
    session.receive_data(encode_server(welcome, binary=True))
    session.events_received()
    return session
