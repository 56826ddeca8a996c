"""The per-connection protocol state machine, sans I/O (SPEC.md §9).

The server feeds every WebSocket message to ``Session.receive_data``, acts on
``events_received()``, reports progress with the ``send_*`` methods and writes out
``data_to_send()``; when ``close_code()`` is set it closes the WebSocket with that code.
Nothing here blocks, reads a clock or touches a socket.

h11 rule: the connection state changes only through ``TRANSITIONS``, the one table of
legal (state, trigger) pairs in ``states.py``; no other code assigns ``Session._state``.
Per-utterance bookkeeping (in-flight ids, streams, sequence numbers) is separate from it.

Peer input never raises out of ``Session``: a bad message becomes an ``error`` message
(and, for connection-level problems, a close code), with the cause kept in
``last_error``. Local misuse (a server bug) raises ``InvalidState``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final, assert_never

from .codec import SAMPLE_WIDTH, encode_audio_frame, encode_server, parse_client
from .controls import INTENSITY
from .errors import (
    AuthFailed,
    InvalidMessage,
    InvalidState,
    PolicyViolation,
    ProtocolError,
)
from .messages import (
    Append,
    AudioFrame,
    AudioSpec,
    Cancel,
    Capabilities,
    ClientMessage,
    Done,
    End,
    Error,
    Flush,
    Hello,
    Limits,
    Marks,
    ServerMessage,
    SessionEvent,
    Speak,
    SpeakOptions,
    Started,
    VoiceDelete,
    VoiceList,
    VoiceRegister,
    Welcome,
)
from .registrations import Registrations, VoiceAnswers
from .schema import client_from_wire
from .states import TRANSITIONS, State, Trigger
from .support import listing, unsupported_option
from .types import PROTOCOL_VERSION, CloseCode, ErrorAbout, StreamId, UtteranceId
from .utterances import Utterances

__all__ = ["TRANSITIONS", "Admitter", "Authenticator", "Session", "State", "Trigger"]

Authenticator = Callable[[str | None], bool]
"""Called with ``hello.token``; returns whether the client may proceed."""

Admitter = Callable[[Speak | Append], None]
"""Called with a ``speak`` or opening ``append`` that passed the protocol's checks; it
raises ``NotAdmitted`` (or another ``ProtocolError``) to refuse the utterance."""

_REQUEST_TYPES: Final = frozenset({"voice.register", "voice.list", "voice.delete"})
"""Client messages whose ``id`` is a voice request's (SPEC.md §4.6), not an utterance's."""


class Session(VoiceAnswers):
    """One client connection, seen from the server.

    Args:
        limits: Limits enforced on the client and announced in ``welcome``.
        capabilities: What this server supports; options beyond them are answered
            with an ``unsupported`` error by the session itself.
        session_id: Id announced in ``welcome.session``.
        authenticate: Checks ``hello.token``; when it returns ``False`` the session
            answers ``auth_failed`` and closes with 4003. ``None`` accepts every token.
            It may raise a ``ProtocolError`` (such as ``AuthFailed("expired token")``)
            to choose the error sent; any other exception propagates out of
            ``receive_data``.
        admit: The server's policy on new utterances (rate limits, blocked words),
            called before an utterance opens. When it raises a ``ProtocolError`` the
            session sends that error with the utterance's id and opens nothing, so no
            ``done`` follows (SPEC.md §6, ``rate_limited``); other exceptions propagate
            out of ``receive_data``.
    """

    def __init__(
        self,
        limits: Limits,
        capabilities: Capabilities,
        session_id: str,
        *,
        authenticate: Authenticator | None = None,
        admit: Admitter | None = None,
    ) -> None:
        self._limits = limits
        self._capabilities = capabilities
        self._session_id = session_id
        self._authenticate = authenticate
        self._admit = admit
        self._state = State.AWAITING_HELLO
        self._hello: Hello | None = None
        self._audio: AudioSpec | None = None
        self._binary = True
        self._close_code: CloseCode | None = None
        self._events: list[SessionEvent] = []
        self._outgoing: list[bytes | str] = []
        self._utterances = Utterances(limits)
        self._registrations = Registrations(limits)
        self._kind: str | None = None  # the type of the message being received
        self.last_error: ProtocolError | None = None
        """The last error caused by peer input, kept for logging."""

    # --- properties --------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection state."""
        return self._state

    @property
    def session_id(self) -> str:
        """The id announced in ``welcome``."""
        return self._session_id

    @property
    def hello(self) -> Hello | None:
        """The client's ``hello``, once accepted."""
        return self._hello

    @property
    def audio(self) -> AudioSpec:
        """The negotiated output audio; ``sample_rate`` is always set.

        Raises:
            InvalidState: before ``hello`` was accepted.
        """
        if self._audio is None:
            raise InvalidState("audio is negotiated by hello, which has not been accepted")
        return self._audio

    @property
    def binary(self) -> bool:
        """Whether control messages go out as msgpack (``True``) or JSON (``False``).

        Raises:
            InvalidState: before ``hello`` was accepted.
        """
        if self._hello is None:
            raise InvalidState("the encoding is chosen by hello, which has not been accepted")
        return self._binary

    @property
    def inflight(self) -> frozenset[UtteranceId]:
        """Ids opened by ``speak``/``append`` and not yet reported ``done``."""
        return self._utterances.ids

    def close_code(self) -> CloseCode | None:
        """Return the code to close the WebSocket with, or ``None`` while it stays open.

        Send everything in ``data_to_send()`` first, then close.
        """
        return self._close_code

    # --- peer input --------------------------------------------------------------------

    def receive_data(self, data: bytes | str) -> None:
        """Process one WebSocket message from the client; never raises on peer input.

        Args:
            data: ``bytes`` for a binary frame (msgpack), ``str`` for a text frame (JSON).

        Raises:
            Exception: only what ``authenticate`` raises, other than ``ProtocolError``.
        """
        if self._state is State.CLOSED:
            return  # SPEC.md §9.3: input after close is ignored.
        binary = not isinstance(data, str)
        self._kind = None
        try:
            self._dispatch(self._decode(data), binary)
        except ProtocolError as exc:
            self._reject(exc, binary)

    def events_received(self) -> list[SessionEvent]:
        """Return and forget the events decoded since the last call."""
        events, self._events = self._events, []
        return events

    def _decode(self, data: bytes | str) -> ClientMessage:
        kind, fields = parse_client(data, self._limits)
        self._kind = kind
        if self._state is State.OPEN:
            if kind == "hello":
                raise PolicyViolation("hello may be sent only once", code="invalid_message")
            return client_from_wire(kind, fields, self._limits)
        if kind != "hello":
            raise PolicyViolation("the first message must be hello")
        try:
            return client_from_wire(kind, fields, self._limits)
        except InvalidMessage as exc:
            # Without a valid hello there is nothing to go on with (SPEC.md §9.2).
            raise PolicyViolation(exc.message, code=exc.code) from exc

    def _reject(self, exc: ProtocolError, binary: bool) -> None:
        # Before hello there is no negotiated encoding: answer in the frame's own (§2.2).
        self.last_error = exc
        if self._hello is not None:
            binary = self._binary
        if exc.id is not None:  # SPEC.md §5.5: say which namespace the id is in
            exc.about = "request" if self._kind in _REQUEST_TYPES else "utterance"
        self._outgoing.append(encode_server(exc.to_error(), binary=binary))
        if exc.close_code is not None:
            self._close_code = exc.close_code
            self._advance(Trigger.FAIL)

    def _dispatch(self, message: ClientMessage, binary: bool) -> None:
        match message:
            case Hello():
                self._on_hello(message, binary)
            case Speak():
                self._check_options(message.id, message.options)
                self._utterances.open(message.id, streamed=False)
                self._admit_or_withdraw(message)
                self._utterances.release(message.id)  # an explicit new utterance
                self._events.append(replace(message, options=self._canonical(message.options)))
            case Append():
                self._on_append(message)
            case Flush() | End():
                if self._utterances.ended_early(message.id):
                    self._on_ended_early(message)
                    return
                self._utterances.input(message)
                self._events.append(message)
            case Cancel():
                if message.id is not None and self._utterances.ended_early(message.id):
                    self._utterances.release(message.id)  # nothing left to stop
                    return
                self._utterances.cancel(message)
                self._events.append(message)
            case VoiceRegister():
                self._check_registration(message.id)
                if (whole := self._registrations.receive(message)) is not None:
                    self._events.append(whole)
            case VoiceList() | VoiceDelete():
                self._check_registration(message.id)
                self._events.append(message)
            case _:  # pragma: no cover (decoding yields nothing else)
                assert_never(message)

    def _on_hello(self, hello: Hello, binary: bool) -> None:
        if hello.audio.format not in self._capabilities.formats:
            supported = ", ".join(self._capabilities.formats)
            message = f"audio format {hello.audio.format} is not supported; supported: {supported}"
            raise PolicyViolation(message, code="unsupported")
        if self._authenticate is not None and not self._authenticate(hello.token):
            raise AuthFailed("the token was rejected")
        rate = hello.audio.sample_rate or self._capabilities.default_sample_rate
        self._hello, self._binary = hello, binary
        self._audio = replace(hello.audio, sample_rate=rate)
        self._advance(Trigger.HELLO)
        welcome = Welcome(
            PROTOCOL_VERSION, self._session_id, self._audio, self._limits, self._capabilities
        )
        self._outgoing.append(encode_server(welcome, binary=binary))

    def _on_ended_early(self, message: Append | Flush | End) -> None:
        """Text for a streamed utterance the server already finished (SPEC.md §4.3)."""
        if isinstance(message, End):
            self._utterances.release(message.id)  # acknowledged: the id is free again
            return
        text = f"utterance {message.id} already ended (see its done); send end to free the id"
        raise InvalidMessage(text, id=message.id)

    def _on_append(self, append: Append) -> None:
        if self._utterances.ended_early(append.id):
            self._on_ended_early(append)
        if append.id in self._utterances:
            self._utterances.append(append)
            self._events.append(append)
            return
        # SPEC.md §4.3: the first append opens the utterance, with default options
        # if it sent none, so the server can tell "opens" by ``options is not None``.
        options = append.options or SpeakOptions()
        self._check_options(append.id, options)
        self._utterances.open(append.id, streamed=True, text_chars=len(append.text))
        self._admit_or_withdraw(append)
        self._events.append(replace(append, options=self._canonical(options)))

    def _admit_or_withdraw(self, message: Speak | Append) -> None:
        """Ask the server's policy about an utterance just opened; refused, it never was."""
        if self._admit is None:
            return
        try:
            self._admit(message)
        except ProtocolError:
            self._utterances.withdraw(message.id)
            raise

    def _check_registration(self, id: UtteranceId) -> None:
        if not self._capabilities.voice_registration:
            text = "voice registration is not supported by this server"
            raise InvalidMessage(text, code="unsupported", id=id)

    def _canonical(self, options: SpeakOptions) -> SpeakOptions:
        """``options`` with the emotion's canonical name (SPEC.md §4.4): the one place a
        synonym is resolved, so the server and the engine see names only."""
        if options.emotion is None:
            return options
        return replace(options, emotion=self._capabilities.resolve_emotion(options.emotion))

    def _check_options(self, id: UtteranceId, options: SpeakOptions) -> None:
        problem = unsupported_option(options, self._capabilities)
        if problem is not None:
            raise InvalidMessage(problem, code="unsupported", id=id)

    # --- server output -----------------------------------------------------------------

    def send_started(
        self,
        id: UtteranceId,
        stream: StreamId,
        queue_ms: float,
        *,
        emotion: str | None = None,
        intensity: float | None = None,
    ) -> None:
        """Announce that synthesis of ``id`` started and its audio will carry ``stream``.

        Args:
            id: The utterance.
            stream: Its audio stream id.
            queue_ms: Receipt of its first message to this start, in ms.
            emotion: The canonical emotion applied (v1.3 echo, so the client learns what
                an alias such as ``开心`` resolved to); ``None`` leaves it out.
            intensity: The intensity applied, 0–1; ``None`` leaves it out.

        Raises:
            InvalidState: before ``hello``; ``id`` is not in flight or already started;
                ``stream`` is outside u32 or used by another in-flight utterance;
                ``queue_ms`` is not finite; ``emotion`` is not a name of
                ``capabilities.emotions``; ``intensity`` is not a finite number in [0, 1].
        """
        if self._can_send():
            if emotion is not None and emotion not in self._capabilities.emotions:
                supported = listing(self._capabilities.emotions)
                raise InvalidState(
                    f"started.emotion {emotion!r} is not in capabilities.emotions ({supported})"
                )
            if intensity is not None and not INTENSITY.contains(intensity):  # NaN fails too
                raise InvalidState(
                    f"started.intensity must be in {INTENSITY.range_text}, got {intensity!r}"
                )
            started = Started(id, stream, queue_ms, emotion=emotion, intensity=intensity)
            data = self._encode(started)
            self._utterances.start(id, stream)
            self._outgoing.append(data)

    def send_marks(self, marks: Marks) -> None:
        """Send word/phoneme timings of a started utterance.

        Raises:
            InvalidState: before ``hello``; ``marks.id`` is not in flight or
                ``marks.stream`` is not its stream.
        """
        if self._can_send():
            self._utterances.check_marks(marks)
            self._outgoing.append(self._encode(marks))

    def send_audio(self, frame: AudioFrame) -> None:
        """Send one audio frame (SPEC.md §8).

        Frames of a stream must come in order: ``seq`` 0, 1, 2, …, each ``offset`` equal
        to the samples sent before it, and exactly one ``last`` frame at the end.

        Raises:
            InvalidState: before ``hello``; the stream was not started or already got its
                last frame; ``seq`` or ``offset`` is not the next one; the PCM is not a
                whole number of samples, or empty on a frame that is not last.
        """
        if not self._can_send():
            return
        try:
            data = encode_audio_frame(frame)
        except ValueError as exc:
            raise InvalidState(str(exc)) from exc
        self._utterances.audio(frame, SAMPLE_WIDTH[self.audio.format])
        self._outgoing.append(data)

    def send_done(self, done: Done) -> None:
        """Report that an utterance finished and forget its id (it may be reused).

        Call it exactly once per in-flight utterance, also after ``send_error`` about it
        and after a ``Cancel`` event (with status ``cancelled``).

        Raises:
            InvalidState: before ``hello``; ``done.id`` is not in flight;
                ``done.stream`` is not the utterance's stream (``None`` if it never
                started); a started stream has not had its ``last`` frame.
        """
        if self._can_send():
            data = self._encode(done)
            self._utterances.finish(done)
            self._outgoing.append(data)

    def send_error(self, error: Error) -> None:
        """Send an error decided by the server (``overloaded``, ``expired``, …).

        An error naming an in-flight utterance does not end it: ``send_done`` must
        still follow. To end the connection, call ``close`` afterwards. An ``id`` is an
        utterance's unless ``error.about`` says ``"request"`` (SPEC.md §5.5, v1.6):
        ``about`` is filled in accordingly, and left ``None`` without an ``id``.

        Raises:
            InvalidState: before ``hello``, or a number in it is not finite.
        """
        if self._can_send():
            self._outgoing.append(self._encode(_about(error, error.about or "utterance")))

    def close(self, code: CloseCode) -> None:
        """Close the session from the server side (``SERVICE_RESTART``, ``SLOW_CONSUMER``…).

        Queues nothing: send an ``error`` first if the client should learn why. Does
        nothing if the session is already closed (the first close code stays).
        """
        if self._state is not State.CLOSED:
            self._close_code = CloseCode(code)
            self._advance(Trigger.CLOSE)

    def data_to_send(self) -> list[bytes | str]:
        """Return and forget the WebSocket messages to send, in order.

        ``bytes`` go out as binary frames, ``str`` as text frames.
        """
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def _can_send(self) -> bool:
        # Output racing a close is expected (an engine finishing late): drop it quietly.
        if self._state is State.AWAITING_HELLO:
            raise InvalidState("nothing can be sent before hello is accepted")
        return self._state is State.OPEN

    def _encode(self, message: ServerMessage) -> bytes | str:
        try:
            return encode_server(message, binary=self._binary)
        except ValueError as exc:
            raise InvalidState(f"cannot encode {type(message).__name__}: {exc}") from exc

    def _advance(self, trigger: Trigger) -> None:
        next_state = TRANSITIONS.get((self._state, trigger))
        assert next_state is not None, f"no transition from {self._state} on {trigger}"
        self._state = next_state


def _about(error: Error, about: ErrorAbout) -> Error:
    """``error`` saying what its ``id`` names (SPEC.md §5.5): ``about``, or ``None``
    for an error without an ``id``."""
    wanted = None if error.id is None else about
    return error if error.about == wanted else replace(error, about=wanted)
