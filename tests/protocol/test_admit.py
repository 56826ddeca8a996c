"""The session's ``admit`` hook: the server's policy refuses an utterance before it opens
(SPEC.md §6 ``rate_limited``, ``text_rejected``), so no ``done`` follows."""

from __future__ import annotations

from voxlive.protocol import Append, Done, Flush, Hello, Limits, Session, Speak, SpeakOptions
from voxlive.protocol.errors import NotAdmitted
from voxlive.protocol.messages import Error

from .helpers import CAPS, assert_error, decode_all, encode, uid


class Gate:
    """Refuses what it is told to, and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[Speak | Append] = []
        self.refuse: NotAdmitted | None = None

    def __call__(self, message: Speak | Append) -> None:
        self.asked.append(message)
        if self.refuse is not None:
            raise self.refuse


def gated(limits: Limits | None = None) -> tuple[Session, Gate]:
    gate = Gate()
    session = Session(limits or Limits(), CAPS, "s-1", admit=gate)
    session.receive_data(encode(Hello(version=1)))
    session.data_to_send()
    return session, gate


def test_a_refused_speak_gets_its_error_with_the_retry_hint_and_never_opens() -> None:
    session, gate = gated()
    gate.refuse = NotAdmitted("slow down", id=uid("a"), retry_after_ms=200)
    session.receive_data(encode(Speak(uid("a"), "Hi.")))
    error = assert_error(session, "rate_limited", "a")
    assert (error.retryable, error.retry_after_ms) == (True, 200)
    assert session.inflight == frozenset()
    gate.refuse = None
    session.receive_data(encode(Speak(uid("a"), "Hi again.")))  # the id was never taken
    assert [e.id for e in session.events_received()] == ["a"]
    assert session.inflight == {"a"}


def test_a_refused_first_append_opens_nothing_and_later_text_is_not_taken_for_it() -> None:
    session, gate = gated()
    gate.refuse = NotAdmitted("no", code="text_rejected", id=uid("s"))
    session.receive_data(encode(Append(uid("s"), "Bad ", SpeakOptions())))
    error = assert_error(session, "text_rejected", "s")
    assert (error.retryable, error.retry_after_ms) == (False, None)
    session.receive_data(encode(Flush(uid("s"))))
    assert_error(session, "unknown_id", "s")
    assert [type(m) for m in gate.asked] == [Append]


def test_the_protocol_checks_come_before_the_policy() -> None:
    session, gate = gated(Limits(max_inflight=1))
    session.receive_data(encode(Speak(uid("a"), "One.")))
    session.events_received()
    session.receive_data(encode(Speak(uid("a"), "Again.")))
    assert_error(session, "duplicate_id", "a")
    session.receive_data(encode(Speak(uid("b"), "Two.")))
    assert_error(session, "too_many_inflight", "b")
    session.receive_data(encode(Append(uid("a"), "more")))  # a speak's id: not a new one
    assert_error(session, "invalid_message", "a")
    assert [m.id for m in gate.asked] == ["a"]  # only the utterance that opened


def test_an_admitted_utterance_ends_with_its_done_as_usual() -> None:
    session, gate = gated()
    session.receive_data(encode(Speak(uid("a"), "Hi.")))
    session.events_received()
    session.send_done(Done(uid("a"), None, "failed"))
    sent = decode_all(session.data_to_send())
    assert [type(m) for m in sent] == [Done] and not [m for m in sent if isinstance(m, Error)]
