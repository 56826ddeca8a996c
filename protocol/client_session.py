"""The client side of one connection, sans I/O (SPEC.md §3–§9).

The client writes ``data_to_send()`` to the WebSocket, feeds every message it reads to
``receive_data`` and acts on ``events_received()``; ``send_*`` methods build what it says.
Nothing here blocks, reads a clock or touches a socket.

h11 rule: the connection state changes only through ``TRANSITIONS``, the one table of
legal (state, trigger) pairs below; no other code assigns ``ClientSession._state``.

The per-utterance rules are the server's own (``Utterances``), applied to the other
direction: what the client sends is accounted for as the server will account for it, and
what the server sends must follow the rules it checks on itself (``started`` once, frames
in order with one ``last``, ``done`` once and after ``last``). Peer input never raises out
of the session: a message that breaks the rules becomes a ``Violation`` event (and, when
the whole connection is in doubt, a close code), with the cause kept in ``last_error``.
Local misuse raises ``ValueError`` (bad arguments) or ``InvalidState`` (wrong moment).

The parts: ``client_utterances.py`` (utterances, both directions), ``client_requests.py``
(voice requests), ``client_events.py`` (what ``events_received`` returns).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, assert_never

from .client_events import (
    REJECTED_CODES,
    Answered,
    ClientEvent,
    Ignored,
    Received,
    Refused,
    Unclaimed,
    UtteranceEvent,
    Violation,
    VoiceAnswer,
)
from .client_requests import VoiceRequests
from .client_utterances import ClientUtterances
from .codec import decode_server, encode_client
from .errors import InvalidState, ProtocolError
from .messages import (
    AudioFrame,
    ClientMessage,
    Consent,
    Done,
    End,
    Error,
    Flush,
    Hello,
    Marks,
    ServerMessage,
    SpeakOptions,
    Started,
    VoiceDeleted,
    VoiceListing,
    VoiceReady,
    Welcome,
)
from .types import SUPPORTED_VERSIONS, CloseCode, UtteranceId, VoiceScope

__all__ = [
    "REJECTED_CODES",
    "TRANSITIONS",
    "Answered",
    "ClientEvent",
    "ClientSession",
    "ClientState",
    "ClientTrigger",
    "Ignored",
    "Received",
    "Refused",
    "Unclaimed",
    "UtteranceEvent",
    "Violation",
    "VoiceAnswer",
]

# --- state --------------------------------------------------------------------------------


class ClientState(enum.Enum):
    """Connection state, seen from the client (SPEC.md §9.1)."""

    CONNECTING = "connecting"
    """Nothing was sent; only ``send_hello`` is allowed."""
    AWAITING_WELCOME = "awaiting_welcome"
    """``hello`` was sent; the answer decides."""
    OPEN = "open"
    """``welcome`` arrived; utterances and voice requests may be sent."""
    CLOSED = "closed"
    """Refused, broken or closed: input is ignored and nothing more is sent."""


class ClientTrigger(enum.Enum):
    """What moves the client's connection from one state to another."""

    HELLO = "hello"
    """``send_hello`` queued the ``hello``."""
    WELCOME = "welcome"
    """A ``welcome`` that fits the ``hello`` arrived."""
    REFUSED = "refused"
    """The server answered ``hello`` with an error."""
    FAIL = "fail"
    """The server broke the protocol for the whole connection."""
    CLOSE = "close"
    """The client called ``close`` (the connection is gone or going)."""


TRANSITIONS: Final[Mapping[tuple[ClientState, ClientTrigger], ClientState]] = MappingProxyType(
    {
        (ClientState.CONNECTING, ClientTrigger.HELLO): ClientState.AWAITING_WELCOME,
        (ClientState.CONNECTING, ClientTrigger.FAIL): ClientState.CLOSED,
        (ClientState.CONNECTING, ClientTrigger.CLOSE): ClientState.CLOSED,
        (ClientState.AWAITING_WELCOME, ClientTrigger.WELCOME): ClientState.OPEN,
        (ClientState.AWAITING_WELCOME, ClientTrigger.REFUSED): ClientState.CLOSED,
        (ClientState.AWAITING_WELCOME, ClientTrigger.FAIL): ClientState.CLOSED,
        (ClientState.AWAITING_WELCOME, ClientTrigger.CLOSE): ClientState.CLOSED,
        (ClientState.OPEN, ClientTrigger.FAIL): ClientState.CLOSED,
        (ClientState.OPEN, ClientTrigger.CLOSE): ClientState.CLOSED,
    }
)
"""Every legal transition; anything else is a bug."""


# --- the session --------------------------------------------------------------------------


class ClientSession:
    """One connection to a voxlive server, seen from the client.

    Call ``send_hello`` first; once ``events_received`` gave the ``Welcome``, the
    utterance and voice methods may be used. Control messages go out as msgpack.
    """

    def __init__(self) -> None:
        self._state = ClientState.CONNECTING
        self._hello: Hello | None = None
        self._welcome: Welcome | None = None
        self._utterances: ClientUtterances | None = None
        self._requests = VoiceRequests()
        self._events: list[ClientEvent] = []
        self._outgoing: list[bytes | str] = []
        self._close_code: CloseCode | None = None
        self.last_error: ProtocolError | None = None
        """The last problem with the server's input, kept for logging."""

    # --- properties --------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The connection state."""
        return self._state

    @property
    def welcome(self) -> Welcome:
        """The server's ``welcome``.

        Raises:
            InvalidState: it has not arrived.
        """
        if self._welcome is None:
            raise InvalidState("the welcome has not arrived")
        return self._welcome

    @property
    def inflight(self) -> frozenset[UtteranceId]:
        """Ids of the utterances opened (or streams claimed) and not yet done."""
        return frozenset() if self._utterances is None else self._utterances.ids

    def close_code(self) -> CloseCode | None:
        """Return the code to close the WebSocket with, or ``None`` while it stays open."""
        return self._close_code

    def close(self) -> None:
        """The connection is gone or going: ignore input, send nothing more."""
        if self._state is not ClientState.CLOSED:
            self._advance(ClientTrigger.CLOSE)

    def data_to_send(self) -> list[bytes | str]:
        """Return and forget the WebSocket messages to send, in order."""
        outgoing = list(self._outgoing)
        self._outgoing.clear()  # the list is shared with the utterances: keep it
        return outgoing

    def events_received(self) -> list[ClientEvent]:
        """Return and forget the events since the last call, in order."""
        events = list(self._events)
        self._events.clear()  # the list is shared with the utterances: keep it
        return events

    # --- handshake ---------------------------------------------------------------------

    def send_hello(self, hello: Hello) -> None:
        """Queue the ``hello`` that opens the session.

        Raises:
            InvalidState: ``hello`` was already sent.
            ValueError: it cannot be encoded.
        """
        if self._state is not ClientState.CONNECTING:
            raise InvalidState("hello is sent once, first")
        self._queue(hello)
        self._hello = hello
        self._advance(ClientTrigger.HELLO)

    def _on_answer_to_hello(self, message: ServerMessage | AudioFrame) -> None:
        assert self._hello is not None, "hello was sent"
        match message:
            case Welcome():
                asked = self._hello.audio
                if message.version not in SUPPORTED_VERSIONS:
                    raise InvalidState(f"the server speaks version {message.version}")
                if message.audio.format != asked.format or asked.sample_rate not in (
                    None,
                    message.audio.sample_rate,
                ):
                    raise InvalidState("the welcome's audio is not the audio asked for")
                self._welcome = message
                self._utterances = ClientUtterances(
                    message.limits, message.audio.format, self._events, self._outgoing
                )
                self._advance(ClientTrigger.WELCOME)
                self._events.append(message)
            case Error():
                self._advance(ClientTrigger.REFUSED)
                self._events.append(Refused(message))
            case _:
                raise InvalidState(f"expected welcome, got {type(message).__name__}")

    # --- utterances --------------------------------------------------------------------

    def check_text(self, text: str, *, allow_blank: bool = False) -> None:
        """Check a text against what the server accepts, before sending it.

        Raises:
            InvalidState: the welcome has not arrived.
            ValueError: empty (or only whitespace, unless ``allow_blank``), or longer
                than ``limits.max_text_chars``.
        """
        if self._utterances is None:
            raise InvalidState("the limits come with the welcome, which has not arrived")
        self._utterances.check_text(text, allow_blank=allow_blank)

    def send_speak(self, text: str, options: SpeakOptions, id: str | None = None) -> UtteranceId:
        """Queue a ``speak`` and open its utterance; return its id.

        Args:
            text: What to say.
            options: How.
            id: The utterance id; ``None`` picks ``u1``, ``u2``, … (one not in flight).

        Raises:
            InvalidState: the session is not open.
            ValueError: empty or too long text, a malformed or in-flight ``id``, or
                options that cannot be encoded (NaN).
        """
        return self._opened().speak(text, options, id)

    def open_stream(self, options: SpeakOptions, id: str | None = None) -> UtteranceId:
        """Claim an id for a streamed utterance; its first ``append`` opens it (§4.3).

        Raises:
            InvalidState: the session is not open.
            ValueError: a malformed or in-flight ``id``.
        """
        return self._opened().open_stream(options, id)

    def send_append(self, id: UtteranceId, text: str) -> None:
        """Queue an ``append`` (with the options, if it is the first); empty text is ignored.

        Raises:
            InvalidState: the session is not open, or ``id`` is not a stream taking text.
            ValueError: the piece, or all pieces together, exceed the server's limits, or
                the options cannot be encoded (NaN).
        """
        self._opened().append(id, text)

    def send_flush(self, id: UtteranceId) -> None:
        """Queue a ``flush`` (nothing for a stream that got no text yet).

        Raises:
            InvalidState: the session is not open, or ``id`` is not a stream taking text.
        """
        self._opened().input(Flush(id))

    def send_end(self, id: UtteranceId) -> None:
        """Queue an ``end``; a stream that got no text is done at once (``completed``).

        Raises:
            InvalidState: the session is not open, or ``id`` is not a stream taking text.
        """
        self._opened().input(End(id))

    def send_cancel(self, id: UtteranceId | None = None) -> None:
        """Stop one utterance, or all of them (``None``); an id not in flight is ignored.

        Streams that got no text are done at once (``cancelled``); the others end with
        the server's ``done`` (a ``cancel`` is queued for them).

        Raises:
            InvalidState: the session is not open.
        """
        self._opened().cancel(id)

    def accepting(self, id: UtteranceId) -> bool:
        """Whether ``id`` is a stream in flight that still takes ``append``/``flush``/``end``."""
        return self._utterances is not None and self._utterances.accepting(id)

    # --- voice requests (SPEC.md §4.6) -------------------------------------------------

    def send_voice_register(
        self,
        audio: bytes,
        *,
        name: str | None = None,
        scope: VoiceScope = "session",
        chunk_bytes: int = 48 * 1024,
        consent: Consent | None = None,
    ) -> UtteranceId:
        """Queue the chunks of a ``voice.register`` upload; return the request id.

        ``consent`` (v1.7) is the speaker's attestation; a server whose
        ``capabilities.consent_required`` is set refuses an upload without one.

        Raises:
            InvalidState: the session is not open.
            ValueError: ``audio`` is larger than ``limits.max_reference_bytes``, or a bad
                ``name``/``chunk_bytes``/``consent``.
        """
        self._opened()
        chunks = self._requests.register(
            audio,
            self.welcome.limits,
            name=name,
            scope=scope,
            chunk_bytes=chunk_bytes,
            consent=consent,
        )
        for chunk in chunks:
            self._queue(chunk)
        return chunks[0].id

    def send_voice_list(self) -> UtteranceId:
        """Queue a ``voice.list``; return the request id.

        Raises:
            InvalidState: the session is not open.
        """
        self._opened()
        request = self._requests.list()
        self._queue(request)
        return request.id

    def send_voice_delete(self, voice: str) -> UtteranceId:
        """Queue a ``voice.delete``; return the request id.

        Raises:
            InvalidState: the session is not open.
            ValueError: ``voice`` is not a valid voice id.
        """
        self._opened()
        request = self._requests.delete(voice)
        self._queue(request)
        return request.id

    # --- server input ------------------------------------------------------------------

    def receive_data(self, data: bytes | str) -> None:
        """Process one WebSocket message from the server; never raises on peer input."""
        if self._state is ClientState.CLOSED:
            return
        greeting = self._state is not ClientState.OPEN
        try:
            message = decode_server(data)
            if not greeting:
                self._dispatch(message)
            elif self._state is ClientState.AWAITING_WELCOME:
                self._on_answer_to_hello(message)
            else:
                raise InvalidState("the server spoke before hello")
        except InvalidState as exc:  # raised above for a wrong answer to hello
            self._fail(exc, str(exc))
        except ProtocolError as exc:
            where = "reply to hello" if greeting else "message"
            self._fail(exc, f"the server sent an invalid {where}: {exc}")

    def _fail(self, exc: ProtocolError, message: str) -> None:
        self.last_error = exc
        self._close_code = CloseCode.PROTOCOL_ERROR
        self._advance(ClientTrigger.FAIL)
        self._events.append(Violation(message))

    def _dispatch(self, message: ServerMessage | AudioFrame) -> None:
        utterances = self._opened()
        match message:
            case AudioFrame():
                utterances.on_audio(message)
            case Started():
                utterances.on_started(message)
            case Marks():
                utterances.on_marks(message)
            case Done():
                utterances.on_done(message)
            case Error():
                self._on_error(message, utterances)
            case Welcome():
                self._events.append(Ignored("ignored a second welcome"))
            case VoiceReady() | VoiceListing() | VoiceDeleted():
                self._events.append(self._requests.answer(message))
            case _:  # pragma: no cover (decoding yields nothing else)
                assert_never(message)

    # --- internals ---------------------------------------------------------------------

    def _opened(self) -> ClientUtterances:
        if self._state is not ClientState.OPEN or self._utterances is None:
            raise InvalidState(f"the session is {self._state.value}, not open")
        return self._utterances

    def _on_error(self, error: Error, utterances: ClientUtterances) -> None:
        # ``about`` (v1.6) says which namespace the id is in; before it, an id that is
        # both a request's and an utterance's was taken to be the request's.
        if error.about != "utterance" and error.id is not None and error.id in self._requests:
            self._events.append(self._requests.answer(error))
        elif error.about == "request" or not utterances.on_error(error):
            self._events.append(Unclaimed(error))

    def _queue(self, message: ClientMessage) -> None:
        self._outgoing.append(encode_client(message))

    def _advance(self, trigger: ClientTrigger) -> None:
        next_state = TRANSITIONS.get((self._state, trigger))
        assert next_state is not None, f"no transition from {self._state} on {trigger}"
        self._state = next_state
