"""One WebSocket connection: bytes in → ``Session`` → utterances; frames out, bounded.

A reader loop feeds the sans-I/O ``Session`` and acts on its events; a writer
task drains the outbox. The batcher never waits on a socket: frames for a
client that stops reading pile up in its outbox, and past
``send_buffer_bytes`` for ``slow_consumer_timeout_s`` (or past four times that
at once) the client is closed with 4008 and its work cancelled.

The server's policy on a session lives here too: the ``hello`` token against the API
keys (``keys.py``), blocked words and rate limits on each new utterance (the session's
``admit`` hook; ``limits.py``, ``textfilter.py``), the speaker's consent and voice
registrations per hour, and the handshake and idle timeouts. What happens to registered
voices goes to the audit log (``audit.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voxlive.protocol.errors import NotAdmitted
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

from .audit import Actor
from .keys import Principal
from .limits import TokenBucket, retry_after_ms
from .store import Scope
from .textfilter import StreamCheck
from .utterance import Utterance
from .voices import Owner, RegistrationError, profile_version, summary_of

if TYPE_CHECKING:
    from .app import App

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

SLOW_CLOSE_TIMEOUT_S = 10.0
BLOCKED_TEXT = "the text contains a blocked word or phrase"
"""The ``text_rejected`` message: it never repeats the client's text."""
NO_CONSENT = (
    "this server registers a voice only with its speaker's consent: send consent with "
    "granted true (SPEC.md §4.6)"
)
CONSENT_DENIED = "the consent sent says the speaker does not consent (granted false)"


class Connection:
    """See module docstring.

    Args:
        app: The server.
        ws: The WebSocket.
        key: The session's id.
        ip: The client's address (``App.client_ip``).
        principal: Who the handshake's ``Authorization`` key authenticated, if anyone;
            else, with keys or a token configured, ``hello.token`` must.
    """

    def __init__(
        self,
        app: App,
        ws: ServerConnection,
        key: str,
        *,
        ip: str = "unknown",
        principal: Principal | None = None,
    ) -> None:
        self.app = app
        self.ws = ws
        self.key = key
        self.ip = ip
        self.principal = principal
        ask_token = app.keys.required and principal is None
        self.session = Session(
            app.limits,
            app.capabilities,
            key,
            authenticate=self._authenticate if ask_token else None,
            admit=self._admit,
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
        self.tenant: str | None = None if principal is None else principal.tenant
        """The API key's tenant this session authenticated as (``None`` without keys):
        persistent voices are shared within a tenant and invisible to every other."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_active = time.monotonic()
        """When the client last sent something, or the last utterance ended."""
        self._checks: dict[UtteranceId, StreamCheck] = {}  # streamed text vs blocked words
        self._voiced: dict[UtteranceId, tuple[str, Scope]] = {}
        """Utterances speaking in a registered voice: its id and scope (for the audit)."""
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closer: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        """Utterances or voice requests in flight, or frames still to send."""
        return bool(self.utterances or self.tasks or self.outbox)

    async def run(self) -> None:
        writer = self._writer = asyncio.create_task(self._write())
        config = self.app.config
        self._arm("hello", config.handshake_timeout_s, self._hello_overdue)
        if config.idle_timeout_s:
            self._arm("idle", config.idle_timeout_s, self._idle_check)
        reads = (
            TokenBucket(config.messages_per_s, config.message_burst, time.monotonic())
            if config.messages_per_s > 0
            else None
        )
        try:
            async for data in self.ws:
                if reads is not None:
                    if (wait := reads.wait_s(time.monotonic())) > 0:
                        if self.ws.state is not State.OPEN:
                            break  # what is left of a flood on a closing socket: unanswerable
                        # A flood: read this socket no faster (TCP backs the client up).
                        await asyncio.sleep(wait)
                    reads.take(time.monotonic())
                self.last_active = time.monotonic()
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
            for timer in self._timers.values():
                timer.cancel()
            self.cancel_all()
            await self._forget_voices()
            self.app.audit.session_ended(self.key)
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
                if event.options is not None:  # the first append opens the utterance
                    u = self._open(event.id, event.options)
                    if u is not None:
                        self._watch_text(u, event.text)
                elif (u := self.utterances.get(event.id)) and not self._text_ok(u, event.text):
                    u = None
                if u is not None:
                    u.append(event.text)
            case Flush():
                if (u := self.utterances.get(event.id)) and self._text_ok(u, "", final=True):
                    u.flush()
            case End():
                if (u := self.utterances.get(event.id)) and self._text_ok(u, "", final=True):
                    u.end()
            case Cancel():
                if event.id is None:
                    self.cancel_all()
                elif u := self.utterances.get(event.id):
                    u.cancel()
            case VoiceRegister():
                if self._consented(event) and self._may_register(event):
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

    # -- the server's policy ---------------------------------------------------------

    def _authenticate(self, token: str | None) -> bool:
        """``hello.token``: an API key (the session takes its tenant) or the shared token."""
        principal = self.app.keys.check(token)
        if principal is None:
            return False
        self.principal, self.tenant = principal, principal.tenant
        return True

    def _admit(self, message: Speak | Append) -> None:
        """A new utterance (the session's ``admit`` hook): blocked words, then the rates.

        Raises:
            NotAdmitted: ``text_rejected``, or ``rate_limited`` with ``retry_after_ms``
                (SPEC.md §6); the utterance never opens.
        """
        words = self.app.text_filter
        if words is not None and words.blocked(message.text, final=isinstance(message, Speak)):
            raise NotAdmitted(BLOCKED_TEXT, code="text_rejected", id=message.id)
        key = None if self.principal is None else self.principal.key_id
        wait_s = self.app.quotas.utterance(self.ip, key)
        if wait_s:
            ms = retry_after_ms(wait_s)
            message_text = f"too many utterances; retry after {ms} ms"
            raise NotAdmitted(message_text, code="rate_limited", id=message.id, retry_after_ms=ms)

    def _watch_text(self, u: Utterance, text: str) -> None:
        """A streamed utterance opened: its later text is checked as it comes."""
        if self.app.text_filter is not None:
            check = self._checks[u.id] = self.app.text_filter.stream()
            check.feed(text)  # admitted already; the check keeps its tail

    def _text_ok(self, u: Utterance, text: str, *, final: bool = False) -> bool:
        """More streamed text: a blocked phrase fails the utterance (``text_rejected``)."""
        check = self._checks.get(u.id)
        if check is None or not check.feed(text, final=final):
            return True
        u.fail(Error("text_rejected", BLOCKED_TEXT, u.id))
        return False

    def _consented(self, event: VoiceRegister) -> bool:
        """The speaker's consent, where the server requires it (SPEC.md §4.6, v1.7).

        Checked before the hourly quota, which a refused registration does not use.
        """
        if not self.app.capabilities.consent_required:
            return True
        if event.consent is not None and event.consent.granted:
            return True
        text = NO_CONSENT if event.consent is None else CONSENT_DENIED
        self.session.send_voice_error(Error("consent_required", text, event.id))
        self.app.audit.refused(self.actor(), event, "consent_required")
        return False

    def _may_register(self, event: VoiceRegister) -> bool:
        """Voice registrations per hour, per key (per address without one)."""
        key = None if self.principal is None else self.principal.key_id
        wait_s = self.app.quotas.registration(self.ip, key)
        if not wait_s:
            return True
        ms = retry_after_ms(wait_s)
        limit = self.app.config.registrations_per_hour
        text = f"more than {limit} voice registrations in an hour; retry after {ms} ms"
        self.session.send_voice_error(Error("rate_limited", text, event.id, True, ms))
        self.app.audit.refused(self.actor(), event, "rate_limited")
        return False

    def _arm(self, name: str, delay_s: float, check: Callable[[], None]) -> None:
        self._timers[name] = self.app.loop.call_later(delay_s, check)

    def _hello_overdue(self) -> None:
        """No valid ``hello`` within ``handshake_timeout_s``: close 1008 (SPEC.md §9.2)."""
        if self.session.hello is None and self.session.close_code() is None:
            timeout = self.app.config.handshake_timeout_s
            self._close_soon(CloseCode.POLICY_VIOLATION, f"no hello within {timeout:g} s")

    def _idle_check(self) -> None:
        """Nothing sent and nothing in flight for ``idle_timeout_s``: close 1000 (SPEC.md §7)."""
        if self.session.close_code() is not None or self.closing:
            return
        timeout = self.app.config.idle_timeout_s
        now = time.monotonic()
        if self.busy:
            self.last_active = now
        idle_s = now - self.last_active
        if idle_s >= timeout * 0.99:  # timers may fire a little early
            self._close_soon(CloseCode.NORMAL, f"idle for {timeout:g} s")
        else:
            self._arm("idle", timeout - idle_s, self._idle_check)

    def _close_soon(self, code: CloseCode, reason: str) -> None:
        """Close from the server's side; the reader loop ends with the socket."""
        self.log.debug("closing %s: %s", code, reason)
        self.session.close(code)
        self._closer = asyncio.ensure_future(self.ws.close(code, reason))

    # -- voices ----------------------------------------------------------------------

    def _voice_owner(self) -> Owner:
        """Whose voices this session's requests see: its own and its tenant's (SPEC.md §4.6)."""
        return Owner(self.owner, self.tenant)

    def actor(self) -> Actor:
        """This session as the audit log names it."""
        key = None if self.principal is None else self.principal.key_id
        return Actor(self.key, self.ip, self.app.instance, self.tenant, key)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _register(self, event: VoiceRegister) -> None:
        try:
            done = await self.app.voices.register(event, self._voice_owner())
        except RegistrationError as exc:
            self.session.send_voice_error(Error(exc.code, exc.message, event.id))
            self.app.audit.refused(self.actor(), event, exc.code)
        except Exception:
            self.log.error("voice registration %s failed", event.id, exc_info=True)
            self.session.send_voice_error(Error("internal", "registration failed", event.id))
            self.app.audit.refused(self.actor(), event, "internal")
        else:
            profile = done.profile
            ready = VoiceReady(event.id, profile.voice_id, done.cached, summary_of(profile))
            self.session.send_voice_ready(ready)
            self.app.audit.registered(self.actor(), event.id, profile, cached=done.cached)
        self.flush()

    async def _list(self, event: VoiceList) -> None:
        try:
            voices = await self.app.voices.listing(self._voice_owner())
        except Exception:
            self.log.error("voice.list %s failed", event.id, exc_info=True)
            error = Error("internal", "listing voices failed", event.id, about="request")
            self.session.send_error(error)
        else:
            self.session.send_voice_list(VoiceListing(event.id, voices))
        self.flush()

    async def _delete(self, event: VoiceDelete) -> None:
        try:
            profile = await self.app.voices.remove(event.voice, self._voice_owner())
        except Exception:
            self.log.error("voice.delete %s failed", event.id, exc_info=True)
            error = Error("internal", "deleting the voice failed", event.id, about="request")
            self.session.send_error(error)
        else:
            if profile is not None:
                self.app.audit.deleted(self.actor(), profile)
            deleted = profile is not None
            self.session.send_voice_deleted(VoiceDeleted(event.id, event.voice, deleted))
        self.flush()

    async def _resolve_voice(self, u: Utterance, voice: str) -> None:
        """Speak in a registered voice: only with adaptation; else refuse, never pretend."""
        try:
            profile = await self.app.voices.find(voice, self._voice_owner())
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
            if not u.finished:  # else forgotten already: nothing to count
                self._voiced[u.id] = (profile.voice_id, profile.scope)
            u.release(self.app.adapter.transform_for(profile), profile_version(profile))

    def forget(self, u: Utterance) -> None:
        if self.utterances.get(u.id) is u:
            del self.utterances[u.id]
            self._checks.pop(u.id, None)
            self._count_use(u)
            self.last_active = time.monotonic()  # the idle time starts now

    def _count_use(self, u: Utterance) -> None:
        """An utterance ended: one use of its registered voice if it spoke (the audit's)."""
        voiced = self._voiced.pop(u.id, None)
        if voiced is not None and u.output.sent:
            voice, scope = voiced
            self.app.audit.used(self.actor(), voice, scope, u.output.sent / u.out_rate)

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
            self.app.stats.send_stalls.inc()
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
        self.app.stats.slow_consumer_closes.inc()
        for u in list(self.utterances.values()):
            u.abandon()
            self._count_use(u)
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
                    self.app.stats.sent(data)
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
