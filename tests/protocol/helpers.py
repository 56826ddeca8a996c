"""Helpers shared by the protocol tests: encoders for raw payloads and a client/server pair."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgpack  # type: ignore[import-untyped]

from voxlive.protocol import (
    AudioFrame,
    Capabilities,
    ClientMessage,
    CloseCode,
    Error,
    Hello,
    Limits,
    ServerMessage,
    Session,
    SessionEvent,
    UtteranceId,
    decode_server,
    encode_client,
)

CAPS = Capabilities(
    emotions=("happy", "sad"), voices=("joe", "amy"), pitch=True, volume=True, timestamps=True
)
"""Capabilities with every option available."""


def uid(text: str) -> UtteranceId:
    return UtteranceId(text)


def encode(message: ClientMessage | dict[str, object], binary: bool = True) -> bytes | str:
    """Encode a message, or a raw map (to send what no dataclass can express)."""
    if isinstance(message, dict):
        return raw(message, binary)
    return encode_client(message, binary)


def raw(value: object, binary: bool = True) -> bytes | str:
    """Encode any value as msgpack (binary) or JSON (text), NaN included."""
    if binary:
        return msgpack.packb(value, use_bin_type=True)
    return json.dumps(value)


def decode_all(data: Iterable[bytes | str]) -> list[ServerMessage | AudioFrame]:
    return [decode_server(item) for item in data]


def assert_sent(session: Session, expected: Sequence[ServerMessage | AudioFrame]) -> None:
    """Assert that the session queued exactly ``expected`` (drains the queue)."""
    assert decode_all(session.data_to_send()) == list(expected)


def assert_error(
    session: Session,
    code: str,
    id: str | None = None,
    close: CloseCode | None = None,
) -> Error:
    """Assert that the session queued exactly one error with ``code`` and ``id``."""
    sent = decode_all(session.data_to_send())
    assert len(sent) == 1, sent
    error = sent[0]
    assert isinstance(error, Error), error
    assert (error.code, error.id) == (code, id), error
    assert session.close_code() == close
    assert session.events_received() == []
    return error


def open_session(
    capabilities: Capabilities = CAPS,
    limits: Limits | None = None,
    binary: bool = True,
    hello: Hello | None = None,
) -> Session:
    """Return a session past the handshake, with the welcome already drained."""
    session = Session(limits or Limits(), capabilities, "s-1")
    session.receive_data(encode(hello or Hello(version=1), binary))
    session.data_to_send()
    return session


@dataclass
class SessionPair:
    """A client talking to a server ``Session`` through the codec (h11 ``ConnectionPair``)."""

    session: Session = field(default_factory=lambda: Session(Limits(), CAPS, "s-1"))
    binary: bool = True

    def send(self, *messages: ClientMessage) -> list[SessionEvent]:
        """Send messages from the client; return the events the server got."""
        for message in messages:
            self.session.receive_data(encode_client(message, self.binary))
        return self.session.events_received()

    def receive(self) -> list[ServerMessage | AudioFrame]:
        """Return what the server sent, checking each frame's WebSocket type."""
        data = self.session.data_to_send()
        for item in data:
            is_audio = isinstance(item, bytes) and item[:1] == b"\x01"
            assert isinstance(item, bytes) == (self.binary or is_audio), item
        return decode_all(data)
