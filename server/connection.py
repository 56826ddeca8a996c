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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from voxlive.protocol.messages import (
    Append,
    Cancel,
    Done,
    End,
    Error,
    Flush,
    SessionEvent,
    Speak,
    SpeakOptions,
    VoiceDelete,
    VoiceDeleted,
    VoiceList,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
)
from voxlive.protocol.session import Session
from voxlive.protocol.types import CloseCode, UtteranceId

from .utterance import Utterance
from .voices import RegistrationError, summary_of

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
        self.owner = f"{app.instance}:{key}"
        """Owner of this session's voices, unique across servers sharing a store."""
        self.tenant: str | None = None
        """The API key's tenant this session authenticated as (``None`` without keys):
        persistent voices are shared within a tenant and invisible to every other."""
        self.tasks: set[asyncio.Task[None]] = set()

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
            await self._forget_voices()
            await self._close(writer)

    async def _forget_voices(self) -> None:
        """Stop voice requests, then drop this session's voices (SPEC.md §4.6 scopes)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await self.app.voices.drop_session(self.owner)
        except Exception:
            self.log.error("dropping session voices failed", exc_info=True)

    # -- events ----------------------------------------------------------------------

    def _dispatch(self, event: SessionEvent) -> None:
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
            case VoiceRegister():
                self._spawn(self._register(event))
            case VoiceList():
                self._spawn(self._list(event))
            case VoiceDelete():
                self._spawn(self._delete(event))

    def _open(self, uid: UtteranceId, options: SpeakOptions) -> Utterance | None:
        if self.app.draining:
            error = Error("overloaded", "server is shutting down", uid, True, 1000)
            self.session.send_error(error)
            self.session.send_done(Done(id=uid, stream=None, status="failed"))
            return None
        u = Utterance(
            self.app.services,
            self,
            self.key,
            uid,
            self.app.next_stream(),
            options,
            time.monotonic(),
        )
        registered = options.voice is not None and options.voice not in self.app.capabilities.voices
        if registered:
            u.hold()  # its text waits until the voice is found (SPEC.md §4.6)
        else:
            try:
                u.perform()
            except ValueError as exc:  # e.g. speed 4 with an emotion that speeds up too
                self.session.send_error(Error("unsupported", str(exc), uid))
                self.session.send_done(Done(id=uid, stream=None, status="failed"))
                return None
        u.paused = self.over_since is not None
        self.utterances[uid] = u
        if registered:
            assert options.voice is not None
            self._spawn(self._resolve_voice(u, options.voice))
        return u

    # -- voices ----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _register(self, event: VoiceRegister) -> None:
        try:
            done = await self.app.voices.register(event, self.owner)
        except RegistrationError as exc:
            self.session.send_voice_error(Error(exc.code, exc.message, event.id))
        except Exception:
            self.log.error("voice registration %s failed", event.id, exc_info=True)
            self.session.send_voice_error(Error("internal", "registration failed", event.id))
        else:
            profile = done.profile
            ready = VoiceReady(event.id, profile.voice_id, done.cached, summary_of(profile))
            self.session.send_voice_ready(ready)
        self.flush()

    async def _list(self, event: VoiceList) -> None:
        try:
            voices = await self.app.voices.listing(self.owner)
        except Exception:
            self.log.error("voice.list %s failed", event.id, exc_info=True)
            self.session.send_error(Error("internal", "listing voices failed", event.id))
        else:
            self.session.send_voice_list(VoiceListing(event.id, voices))
        self.flush()

    async def _delete(self, event: VoiceDelete) -> None:
        try:
            deleted = await self.app.voices.delete(event.voice, self.owner)
        except Exception:
            self.log.error("voice.delete %s failed", event.id, exc_info=True)
            self.session.send_error(Error("internal", "deleting the voice failed", event.id))
        else:
            self.session.send_voice_deleted(VoiceDeleted(event.id, event.voice, deleted))
        self.flush()

    async def _resolve_voice(self, u: Utterance, voice: str) -> None:
        """Speak in a registered voice: only with adaptation; else refuse, never pretend."""
        try:
            profile = await self.app.voices.find(voice, self.owner)
        except Exception:
            self.log.error("voice lookup for %s failed", u.id, exc_info=True)
            u.fail(Error("internal", "voice lookup failed", u.id))
            return
        if profile is None:
            u.fail(Error("unknown_voice", f"voice {voice} is not registered", u.id))
        elif self.app.adapter is None:
            message = "voice adaptation is not available on this server; the voice is registered"
            u.fail(Error("unsupported", message, u.id))
        else:
            u.release(self.app.adapter.transform_for(profile))

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
            u.abandon()
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
