"""What an ``error`` says beyond its code (SPEC.md §5.5, v1.6): ``about`` and the retry hint.

``about`` tells which namespace ``id`` is in (an utterance, or a voice request); both
sides of the session fill it in and read it. ``too_many_inflight`` is worth retrying.
"""

from __future__ import annotations

import json

import msgpack  # type: ignore[import-untyped]
import pytest

from voxlive.protocol import (
    Append,
    Cancel,
    Capabilities,
    Error,
    Limits,
    Speak,
    SpeakOptions,
    UtteranceId,
    VoiceRegister,
    decode_server,
    encode_server,
)
from voxlive.protocol.client_session import Answered, Received, Unclaimed
from voxlive.protocol.registrations import REGISTRATION_RETRY_AFTER_MS
from voxlive.protocol.utterances import INFLIGHT_RETRY_AFTER_MS

from .helpers import assert_error, encode, open_session, uid
from .test_client_session import Pair, feed, opened

VOICES = Capabilities(emotions=("happy",), voices=("joe",), voice_registration=True)


def test_too_many_inflight_utterances_is_retryable_with_a_hint() -> None:
    session = open_session(limits=Limits(max_inflight=1))
    session.receive_data(encode(Append(uid("a"), "Hi", SpeakOptions())))
    session.events_received()
    session.receive_data(encode(Speak(uid("b"), "Hello.")))
    error = assert_error(session, "too_many_inflight", "b")
    assert (error.retryable, error.retry_after_ms, error.about) == (
        True,
        INFLIGHT_RETRY_AFTER_MS,
        "utterance",
    )
    assert INFLIGHT_RETRY_AFTER_MS == 500  # SPEC.md §4.5 states the number


def test_too_many_registrations_is_retryable_with_a_longer_hint() -> None:
    session = open_session(VOICES, Limits(max_registrations=1))
    session.receive_data(encode(VoiceRegister(uid("r1"), b"x", final=False)))
    session.receive_data(encode(VoiceRegister(uid("r2"), b"x")))
    error = assert_error(session, "too_many_inflight", "r2")
    assert (error.retryable, error.retry_after_ms, error.about) == (True, 1000, "request")
    assert REGISTRATION_RETRY_AFTER_MS == 1000  # SPEC.md §4.6 states the number


def test_other_refusals_are_not_retryable() -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "")))
    error = assert_error(session, "empty_text", "a")
    assert (error.retryable, error.retry_after_ms) == (False, None)


@pytest.mark.parametrize(
    ("message", "code", "id", "about"),
    [
        (Cancel(uid("gone")), "unknown_id", "gone", "utterance"),
        (
            {"type": "speak", "id": "s", "text": "Hi", "sped": 2},
            "invalid_message",
            "s",
            "utterance",
        ),
        (
            {"type": "voice.delete", "id": "d", "voice": "no spaces"},
            "invalid_message",
            "d",
            "request",
        ),
        (VoiceRegister(uid("r"), b"x", seq=3), "invalid_message", "r", "request"),
        ({"type": "voice.list"}, "invalid_message", None, None),  # no id to name
        ({"type": "nope", "id": "x"}, "unknown_type", None, None),
    ],
)
def test_a_refusal_says_what_its_id_names(message, code, id, about) -> None:
    session = open_session(VOICES)
    session.receive_data(encode(message))
    error = assert_error(session, code, id)
    assert error.about == about


def test_server_errors_name_an_utterance_unless_told_a_request() -> None:
    session = open_session(VOICES)
    session.receive_data(encode(Speak(uid("a"), "Hi.")))
    session.receive_data(encode(VoiceRegister(uid("r"), b"x")))
    session.send_error(Error("internal", "listing failed", uid("l"), about="request"))
    session.send_error(Error("overloaded", "busy", uid("a"), True, 200))
    session.send_error(Error("internal", "no id", None, about="request"))
    session.send_voice_error(Error("too_short", "1 s", uid("r")))
    sent = [decode_server(data) for data in session.data_to_send()]
    assert [(e.id, e.about) for e in sent if isinstance(e, Error)] == [
        ("l", "request"),
        ("a", "utterance"),
        (None, None),
        ("r", "request"),
    ]


@pytest.mark.parametrize("binary", [True, False])
def test_about_is_always_on_the_wire_and_null_without_an_id(binary) -> None:
    def wire(error: Error) -> dict[str, object]:
        data = encode_server(error, binary)
        return json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)

    assert wire(Error("internal", "x", uid("a"), about="utterance"))["about"] == "utterance"
    assert wire(Error("internal", "x"))["about"] is None


def test_a_client_reads_about_leniently() -> None:
    base = {"type": "error", "code": "internal", "message": "x", "id": "a", "retryable": False}
    for value, read in [("request", "request"), ("widget", None), (3, None), (None, None)]:
        error = decode_server(msgpack.packb(base | {"about": value}))
        assert isinstance(error, Error) and error.about == read
    older = decode_server(msgpack.packb(base))  # a server before v1.6
    assert isinstance(older, Error) and older.about is None


def shared_id_pair() -> tuple[Pair, UtteranceId]:
    """A client with an utterance and a voice request under the same id."""
    pair = Pair(VOICES)
    request = pair.client.send_voice_list()
    pair.client.send_speak("Hi.", SpeakOptions(), id=request)
    pair.to_server()
    return pair, request


def test_an_error_about_the_utterance_reaches_it_though_a_request_has_its_id() -> None:
    pair, id = shared_id_pair()
    pair.server.send_error(Error("overloaded", "busy", id, True, 100))
    events = pair.to_client()
    assert [type(e) for e in events] == [Received]
    assert isinstance(events[0], Received) and events[0].event.about == "utterance"


def test_an_error_about_the_request_answers_it_though_an_utterance_has_its_id() -> None:
    pair, id = shared_id_pair()
    pair.server.send_error(Error("internal", "listing failed", id, about="request"))
    [answered] = pair.to_client()
    assert isinstance(answered, Answered) and answered.id == id


def test_an_error_about_a_request_no_longer_in_flight_is_unclaimed() -> None:
    client = opened()
    client.send_speak("Hi.", SpeakOptions(), id="a")
    error = Error("internal", "x", UtteranceId("a"), about="request")
    assert feed(client, error) == [Unclaimed(error)]


def test_an_error_from_an_older_server_is_matched_by_id_as_before() -> None:
    pair, id = shared_id_pair()
    older = msgpack.packb(
        {"type": "error", "code": "internal", "message": "x", "id": id, "retryable": False}
    )
    pair.server.data_to_send()
    pair.client.receive_data(older)
    [answered] = pair.client.events_received()
    assert isinstance(answered, Answered)  # without about, the request's namespace first
