"""The connection state machine, table-driven (SPEC.md §9.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voxlive.protocol import CloseCode, Error, Hello, Limits, Session, Speak, State, Welcome
from voxlive.protocol.session import TRANSITIONS, Trigger

from .helpers import CAPS, decode_all, encode, raw, uid

AWAITING, OPEN, CLOSED = State.AWAITING_HELLO, State.OPEN, State.CLOSED


def test_transition_table_is_the_documented_one() -> None:
    assert dict(TRANSITIONS) == {
        (AWAITING, Trigger.HELLO): OPEN,
        (AWAITING, Trigger.FAIL): CLOSED,
        (AWAITING, Trigger.CLOSE): CLOSED,
        (OPEN, Trigger.FAIL): CLOSED,
        (OPEN, Trigger.CLOSE): CLOSED,
    }


def test_closed_is_final() -> None:
    assert not [key for key in TRANSITIONS if key[0] is CLOSED]


def session_in(state: State) -> Session:
    session = Session(Limits(max_message_bytes=300), CAPS, "s-1")
    if state is not AWAITING:
        session.receive_data(encode(Hello(1)))
    if state is CLOSED:
        session.close(CloseCode.SERVICE_RESTART)
    session.data_to_send()
    return session


INPUTS: dict[str, Callable[[Session], None]] = {
    "hello": lambda s: s.receive_data(encode(Hello(1))),
    "bad version": lambda s: s.receive_data(encode(Hello(7))),
    "speak": lambda s: s.receive_data(encode(Speak(uid("a"), "hi"))),
    "invalid speak": lambda s: s.receive_data(raw({"type": "speak", "id": "a"})),
    "unknown type": lambda s: s.receive_data(raw({"type": "sing"})),
    "malformed": lambda s: s.receive_data(b"\xc1"),
    "too big": lambda s: s.receive_data(b"\xc1" * 301),
    "server close": lambda s: s.close(CloseCode.NORMAL),
}

# (state, input) -> (next state, close code, what was sent: "welcome" or an error code, events)
TABLE = [
    (AWAITING, "hello", OPEN, None, ["welcome"], 0),
    (AWAITING, "bad version", CLOSED, 4001, ["unsupported_version"], 0),
    (AWAITING, "speak", CLOSED, 1008, ["hello_required"], 0),
    (AWAITING, "invalid speak", CLOSED, 1008, ["hello_required"], 0),
    (AWAITING, "unknown type", CLOSED, 1008, ["hello_required"], 0),
    (AWAITING, "malformed", CLOSED, 1007, ["malformed"], 0),
    (AWAITING, "too big", CLOSED, 1009, ["message_too_big"], 0),
    (AWAITING, "server close", CLOSED, 1000, [], 0),
    (OPEN, "hello", CLOSED, 1008, ["invalid_message"], 0),
    (OPEN, "bad version", CLOSED, 1008, ["invalid_message"], 0),
    (OPEN, "speak", OPEN, None, [], 1),
    (OPEN, "invalid speak", OPEN, None, ["invalid_message"], 0),
    (OPEN, "unknown type", OPEN, None, ["unknown_type"], 0),
    (OPEN, "malformed", CLOSED, 1007, ["malformed"], 0),
    (OPEN, "too big", CLOSED, 1009, ["message_too_big"], 0),
    (OPEN, "server close", CLOSED, 1000, [], 0),
    *[(CLOSED, name, CLOSED, 1012, [], 0) for name in INPUTS],
]


@pytest.mark.parametrize(
    ("state", "name", "next_state", "close", "sent", "events"),
    TABLE,
    ids=[f"{row[0].name}-{row[1]}" for row in TABLE],
)
def test_input_moves_the_session_as_the_table_says(
    state, name, next_state, close, sent, events
) -> None:
    session = session_in(state)
    INPUTS[name](session)
    assert session.state is next_state
    assert session.close_code() == close
    labels = [
        "welcome" if isinstance(m, Welcome) else m.code if isinstance(m, Error) else m
        for m in decode_all(session.data_to_send())
    ]
    assert labels == sent
    assert len(session.events_received()) == events


def test_every_state_and_input_is_in_the_table() -> None:
    assert {(row[0], row[1]) for row in TABLE} == {(s, n) for s in State for n in INPUTS}
