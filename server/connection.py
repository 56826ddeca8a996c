"""One WebSocket connection: bytes in → ``Session`` → utterances; frames out, bounded.

A reader loop feeds the sans-I/O ``Session`` and acts on its events; a writer
task drains the outbox. The batcher never waits on a socket: frames for a
client that stops reading pile up in its outbox, and past
``send_buffer_bytes`` for ``slow_consumer_timeout_s`` (or past four times that
at once) the client is closed with 4008 and its work cancelled.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from protocol.messages import Append, Cancel, Done, End, Error, Flush, Speak, SpeakOptions
from protocol.session import Session
from protocol.types import CloseCode, UtteranceId

from .utterance import Utterance

if TYPE_CHECKING:
    from .app import App

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

SLOW_CLOSE_TIMEOUT_S = 10.0


def _token_checker(expected: str) -> Callable[[str | None], bool]:
    def check(token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), expected.encode())

    return check


class Connection:
    """See module docstring."""

    def __init__(self, app: App, ws: ServerConnection, key: str) -> None:
        self.app = app
        self.ws = ws
        self.key = key
        token = app.config.token
        self.session = Session(
            app.limits,
            app.capabilities,
            key,
            authenticate=None if token is None else _token_checker(token),
        )
        self.utterances: dict[UtteranceId, Utterance] = {}
        self.outbox: deque[bytes | str] = deque()
        self.outbox_bytes = 0
        self.wakeup = asyncio.Event()
        self.over_since: float | None = None
        self.closing = False
        self._writer: asyncio.Task[None] | None = None
        self.log = logging.LoggerAdapter(logger, {"session": key})

    async def run(self) -> None:
        writer = self._writer = asyncio.create_task(self._write())
        try:
            async for data in self.ws:
                self.session.receive_data(data)
                for event in self.session.events_received():
                    self._dispatch(event)
                self.flush()
                if self.session.close_code() is not None:
                    break
        except ConnectionClosed:
            pass
        except Exception:
            self.log.error("session failed", exc_info=True)
            self.session.close(CloseCode.INTERNAL_ERROR)
        finally:
            self.cancel_all()
            await self._close(writer)

    # -- events ----------------------------------------------------------------------

    def _dispatch(self, event: Speak | Append | Flush | End | Cancel) -> None:
        match event:
            case Speak():
                if u := self._open(event.id, event.options):
                    u.speak(event.text)
            case Append():
                u = self._open(event.id, event.options) if event.options else None
                u = u or self.utterances.get(event.id)
                if u is not None:
                    u.append(event.text)
            case Flush():
                if u := self.utterances.get(event.id):
                    u.flush()
            case End():
                if u := self.utterances.get(event.id):
                    u.end()
            case Cancel():
                if event.id is None:
                    self.cancel_all()
                elif u := self.utterances.get(event.id):
                    u.cancel()

    def _open(self, uid: UtteranceId, options: SpeakOptions) -> Utterance | None:
        if self.app.draining:
            error = Error("overloaded", "server is shutting down", uid, True, 1000)
            self.session.send_error(error)
            self.session.send_done(Done(id=uid, stream=None, status="failed"))
            return None
        u = Utterance(self, uid, self.app.next_stream(), options, time.monotonic())
        u.paused = self.over_since is not None
        self.utterances[uid] = u
        return u

    def forget(self, u: Utterance) -> None:
        if self.utterances.get(u.id) is u:
            del self.utterances[u.id]

    def cancel_all(self) -> None:
        for u in list(self.utterances.values()):
            u.cancel()

    # -- output ----------------------------------------------------------------------

    def flush(self) -> None:
        """Move what the session wants sent into the outbox; watch for a client not reading."""
        if self.closing:
            self.session.data_to_send()
            return
        for data in self.session.data_to_send():
            self.outbox.append(data)
            self.outbox_bytes += len(data)
        if self.outbox:
            self.wakeup.set()
        limit = self.app.config.send_buffer_bytes
        if self.outbox_bytes > 4 * limit:
            self.kill("send buffer overflow")
        elif self.outbox_bytes > limit and self.over_since is None:
            self.over_since = time.monotonic()
            self._pause(True)
            self.app.loop.call_later(self.app.config.slow_consumer_timeout_s, self._check_slow)

    def _pause(self, paused: bool) -> None:
        """While the client lags, the batcher makes no more audio for it."""
        for u in self.utterances.values():
            u.paused = paused

    def _check_slow(self) -> None:
        timeout = self.app.config.slow_consumer_timeout_s
        if self.over_since is not None and time.monotonic() - self.over_since >= timeout * 0.99:
            self.kill("not reading")

    def kill(self, reason: str) -> None:
        """Close a client that does not read: its work is cancelled, its queued audio dropped."""
        if self.closing:
            return
        self.log.warning("closing slow consumer (%d bytes queued): %s", self.outbox_bytes, reason)
        self.closing = True
        for u in list(self.utterances.values()):
            u.finished = True
            for job in u.jobs:
                job.cancelled = True
        self.utterances.clear()
        self.outbox.clear()
        self.outbox_bytes = 0
        self.session.close(CloseCode.SLOW_CONSUMER)
        if self._writer is not None:
            self._writer.cancel()  # it may be parked in a send; the close frame goes next
        # Give a client that only stalled time to read up to the close frame.
        self.ws.close_timeout = SLOW_CLOSE_TIMEOUT_S
        asyncio.ensure_future(self.ws.close(CloseCode.SLOW_CONSUMER, reason))

    async def _write(self) -> None:
        limit = self.app.config.send_buffer_bytes
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.outbox:
                    data = self.outbox.popleft()
                    await self.ws.send(data)
                    self.outbox_bytes -= len(data)
                    if self.over_since is not None and self.outbox_bytes <= limit:
                        self.over_since = None
                        self._pause(False)
        except ConnectionClosed:
            pass

    async def drained(self) -> None:
        while self.outbox and not self.closing:
            await asyncio.sleep(0.01)

    async def _close(self, writer: asyncio.Task[None]) -> None:
        code = self.session.close_code() or CloseCode.NORMAL
        try:
            await asyncio.wait_for(self.drained(), 2.0)
        except TimeoutError:
            pass
        writer.cancel()
        self.closing = True
        await self.ws.close(code)
