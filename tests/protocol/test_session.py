"""Session input: handshake, per-utterance rules, which errors close (SPEC.md §6, §9)."""

from __future__ import annotations

import json

import pytest

from voxlive.protocol import (
    Append,
    AudioSpec,
    AuthFailed,
    Cancel,
    Capabilities,
    CloseCode,
    Done,
    End,
    Error,
    Flush,
    Hello,
    InvalidState,
    Limits,
    MalformedMessage,
    PolicyViolation,
    Session,
    Speak,
    SpeakOptions,
    State,
    StreamId,
    Welcome,
)

from .helpers import (
    CAPS,
    SessionPair,
    assert_error,
    assert_sent,
    decode_all,
    encode,
    open_session,
    raw,
    uid,
)

# --- handshake -----------------------------------------------------------------------------


def test_server_welcomes_hello_with_resolved_audio() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(encode(Hello(version=1, token="tok")))
    assert_sent(session, [Welcome(1, "s-1", AudioSpec(22050, "s16le", 40), Limits(), CAPS)])
    assert session.state is State.OPEN
    assert session.audio == AudioSpec(22050, "s16le", 40)
    assert session.hello == Hello(1, "tok")
    assert session.session_id == "s-1"
    assert session.events_received() == []
    assert session.close_code() is None


def test_missing_sample_rate_takes_the_voice_rate_from_capabilities() -> None:
    session = open_session(Capabilities(default_sample_rate=24000))
    assert session.audio.sample_rate == 24000


def test_requested_audio_is_kept() -> None:
    spec = AudioSpec(sample_rate=16000, format="f32le", frame_ms=20)
    assert open_session(hello=Hello(1, None, spec)).audio == spec


@pytest.mark.parametrize("binary", [True, False])
def test_control_messages_follow_the_encoding_of_hello(binary) -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(encode(Hello(version=1), binary))
    session.receive_data(encode(Flush(uid("nope")), not binary))
    welcome, error = session.data_to_send()
    assert isinstance(welcome, bytes) == binary
    assert isinstance(error, bytes) == binary
    assert session.binary == binary


def test_either_encoding_is_accepted_after_hello() -> None:
    session = open_session(binary=True)
    session.receive_data(encode(Speak(uid("a"), "hi"), binary=False))
    assert session.events_received() == [Speak(uid("a"), "hi")]


def test_server_rejects_speak_before_hello() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(encode(Speak(uid("a"), "hi")))
    assert_error(session, "hello_required", close=CloseCode.POLICY_VIOLATION)
    assert session.state is State.CLOSED
    assert isinstance(session.last_error, PolicyViolation)


@pytest.mark.parametrize("wire", [{"type": "speek"}, {"type": "speak", "bogus": 1}])
def test_any_non_hello_type_before_hello_is_hello_required(wire) -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(raw(wire))
    assert_error(session, "hello_required", close=CloseCode.POLICY_VIOLATION)


def test_error_before_hello_uses_the_encoding_of_the_offending_frame() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data('{"type": "cancel"}')
    [data] = session.data_to_send()
    assert isinstance(data, str)
    assert json.loads(data)["code"] == "hello_required"


def test_invalid_hello_closes_with_policy_violation() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(raw({"type": "hello", "version": 1, "audio": {"frame_ms": 1}}))
    error = assert_error(session, "invalid_message", close=CloseCode.POLICY_VIOLATION)
    assert "hello.audio.frame_ms" in error.message
    assert session.last_error is not None
    assert isinstance(session.last_error.__cause__, Exception)


def test_unsupported_version_closes_with_4001() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.receive_data(encode(Hello(version=2)))
    error = assert_error(session, "unsupported_version", close=CloseCode.UNSUPPORTED_VERSION)
    assert "supported: 1" in error.message


@pytest.mark.parametrize("second", [{"type": "hello", "version": 1}, {"type": "hello"}])
def test_second_hello_closes_with_policy_violation(second) -> None:
    session = open_session()
    session.receive_data(raw(second))
    assert_error(session, "invalid_message", close=CloseCode.POLICY_VIOLATION)


def test_hello_asking_for_an_unadvertised_format_is_unsupported_and_closes() -> None:
    session = Session(Limits(), Capabilities(formats=("s16le",)), "s-1")
    session.receive_data(encode(Hello(1, None, AudioSpec(format="f32le"))))
    error = assert_error(session, "unsupported", close=CloseCode.POLICY_VIOLATION)
    assert "supported: s16le" in error.message


def test_authenticator_sees_the_token_and_may_accept() -> None:
    tokens: list[str | None] = []

    def authenticate(token: str | None) -> bool:
        tokens.append(token)
        return True

    session = Session(Limits(), CAPS, "s-1", authenticate=authenticate)
    session.receive_data(encode(Hello(1, "secret")))
    assert tokens == ["secret"]
    assert session.state is State.OPEN


def test_rejected_token_closes_with_4003() -> None:
    session = Session(Limits(), CAPS, "s-1", authenticate=lambda token: token == "good")
    session.receive_data(encode(Hello(1, "bad"), binary=False))
    [data] = session.data_to_send()
    assert json.loads(data)["code"] == "auth_failed"
    assert session.close_code() == CloseCode.AUTH_FAILED
    assert session.hello is None


@pytest.mark.parametrize("opened", [False, True])
def test_malformed_payload_closes_with_1007(opened) -> None:
    session = open_session() if opened else Session(Limits(), CAPS, "s-1")
    session.receive_data(b"\xc1")
    assert_error(session, "malformed", close=CloseCode.INVALID_DATA)
    assert isinstance(session.last_error, MalformedMessage)


@pytest.mark.parametrize("data", ['"just a string"', "[1, 2]", '{"id": "a"}', "{"])
def test_json_that_is_not_an_object_with_a_type_is_malformed(data) -> None:
    session = open_session()
    session.receive_data(data)
    assert_error(session, "malformed", close=CloseCode.INVALID_DATA)


@pytest.mark.parametrize("opened", [False, True])
def test_oversize_message_closes_with_1009_before_decoding(opened) -> None:
    limits = Limits(max_message_bytes=100)
    session = open_session(limits=limits) if opened else Session(limits, CAPS, "s-1")
    session.receive_data(b"\xc1" * 101)  # not msgpack either: size wins
    assert_error(session, "message_too_big", close=CloseCode.MESSAGE_TOO_BIG)


def test_properties_need_hello() -> None:
    session = Session(Limits(), CAPS, "s-1")
    with pytest.raises(InvalidState):
        session.audio  # noqa: B018
    with pytest.raises(InvalidState):
        session.binary  # noqa: B018
    assert session.hello is None


# --- errors that keep the connection open --------------------------------------------------


def test_unknown_type_after_hello_is_an_error_and_stays_open() -> None:
    session = open_session()
    session.receive_data(raw({"type": "speek", "id": "a"}))
    assert_error(session, "unknown_type")
    assert session.state is State.OPEN


def test_invalid_speak_is_reported_with_its_id_and_stays_open() -> None:
    session = open_session()
    session.receive_data(raw({"type": "speak", "id": "a", "text": "hi", "sped": 2}))
    error = assert_error(session, "invalid_message", "a")
    assert "sped" in error.message
    session.receive_data(encode(Speak(uid("a"), "hi")))
    assert session.events_received() == [Speak(uid("a"), "hi")]


@pytest.mark.parametrize(("text", "code"), [("", "empty_text"), ("x" * 11, "text_too_long")])
def test_text_errors_keep_the_connection_open(text, code) -> None:
    session = open_session(limits=Limits(max_text_chars=10))
    session.receive_data(raw({"type": "speak", "id": "a", "text": text}))
    assert_error(session, code, "a")
    assert session.inflight == frozenset()


def test_duplicate_id_is_rejected_while_in_flight() -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "one")))
    session.receive_data(encode(Speak(uid("a"), "two")))
    assert session.events_received() == [Speak(uid("a"), "one")]
    assert_error(session, "duplicate_id", "a")


def test_id_is_reusable_after_done() -> None:
    pair = SessionPair()
    pair.send(Hello(1))
    pair.send(Speak(uid("a"), "one"))
    pair.session.send_done(Done(uid("a"), None, "expired"))
    assert pair.send(Speak(uid("a"), "two")) == [Speak(uid("a"), "two")]


def test_too_many_inflight_is_rejected_until_one_is_done() -> None:
    session = open_session(limits=Limits(max_inflight=2))
    for name in "abc":
        session.receive_data(encode(Speak(uid(name), "hi")))
    assert [event.id for event in session.events_received()] == ["a", "b"]
    assert_error(session, "too_many_inflight", "c")
    session.send_done(Done(uid("a"), None, "cancelled"))
    session.data_to_send()
    session.receive_data(encode(Append(uid("c"), "hi")))
    assert session.inflight == {"b", "c"}


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (SpeakOptions(emotion="angry"), "supported: happy, sad"),
        (SpeakOptions(voice="bob"), "supported: joe, amy"),
    ],
)
def test_option_outside_capabilities_lists_what_is_supported(options, needle) -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "hi", options)))
    error = assert_error(session, "unsupported", "a")
    assert needle in error.message


@pytest.mark.parametrize(
    "options",
    [
        SpeakOptions(emotion="happy"),
        SpeakOptions(voice="joe"),
        SpeakOptions(pitch=2.0),
        SpeakOptions(volume=-6.0),
        SpeakOptions(timestamps=True),
    ],
    ids=["emotion", "voice", "pitch", "volume", "timestamps"],
)
def test_option_is_unsupported_without_its_capability(options) -> None:
    session = open_session(Capabilities(timestamps=False))
    session.receive_data(encode(Speak(uid("a"), "hi", options)))
    error = assert_error(session, "unsupported", "a")
    assert "supported" in error.message or "must be" in error.message
    session.receive_data(encode(Append(uid("b"), "hi", options)))
    assert_error(session, "unsupported", "b")
    assert session.inflight == frozenset()


@pytest.mark.parametrize(
    "options",
    [
        SpeakOptions(emotion="happy", intensity=1.0),
        SpeakOptions(voice="amy"),
        SpeakOptions(pitch=2.0, volume=-6.0, timestamps=True),
        SpeakOptions(intensity=0.1),  # intensity alone is harmless
    ],
)
def test_option_is_accepted_with_its_capability(options) -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "hi", options)))
    assert session.events_received() == [Speak(uid("a"), "hi", options)]
    assert session.data_to_send() == []


def test_default_capabilities_reject_emotion_saying_none_is_supported() -> None:
    session = open_session(Capabilities())
    session.receive_data(encode(Speak(uid("a"), "hi", SpeakOptions(emotion="happy"))))
    assert "supports none" in assert_error(session, "unsupported", "a").message


# --- emotion names and synonyms (v1.3) --------------------------------------------------------

EMOTION_CAPS = Capabilities(
    emotions=("neutral", "happy", "sad", "angry"),
    emotion_aliases={"开心": "happy", "生气": "angry", "furious": "angry", "Cheerful": "happy"},
)


@pytest.mark.parametrize(
    ("emotion", "name"),
    [
        ("happy", "happy"),
        ("HAPPY", "happy"),
        (" Sad ", "sad"),
        ("开心", "happy"),
        (" 生气", "angry"),
        ("furious", "angry"),
        ("Furious", "angry"),
        ("FURIOUS", "angry"),
        ("cheerful", "happy"),
    ],
)
@pytest.mark.parametrize("binary", [True, False])
def test_emotion_synonyms_in_any_case_reach_the_server_as_their_name(emotion, name, binary) -> None:
    session = open_session(EMOTION_CAPS, binary=binary)
    options = SpeakOptions(emotion=emotion, intensity=0.4)
    session.receive_data(encode(Speak(uid("a"), "hi", options), binary))
    session.receive_data(encode(Append(uid("b"), "hi", options), binary))
    # Resolved once, here: the server and the engine see canonical names only.
    resolved = SpeakOptions(emotion=name, intensity=0.4)
    assert session.events_received() == [
        Speak(uid("a"), "hi", resolved),
        Append(uid("b"), "hi", resolved),
    ]
    assert session.data_to_send() == []


@pytest.mark.parametrize("emotion", ["joyful", "", "   ", "happy!", "开心点"])
def test_unknown_emotion_lists_the_names_and_mentions_synonyms(emotion) -> None:
    session = open_session(EMOTION_CAPS)
    session.receive_data(encode(Speak(uid("a"), "hi", SpeakOptions(emotion=emotion))))
    message = assert_error(session, "unsupported", "a").message
    assert "supported: neutral, happy, sad, angry" in message
    assert "synonym" in message
    assert "开心" not in message.replace(emotion, "")  # names only, not the aliases
    assert session.inflight == frozenset()


def test_without_aliases_the_unknown_emotion_error_mentions_no_synonyms() -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "hi", SpeakOptions(emotion="Angry!"))))
    message = assert_error(session, "unsupported", "a").message
    assert "supported: happy, sad" in message and "synonym" not in message


def test_a_client_written_for_v12_is_still_served() -> None:
    """A 1.2 client: hello version 1, a canonical emotion, no knowledge of the echo."""
    session = Session(Limits(), EMOTION_CAPS, "s-1")
    session.receive_data(json.dumps({"type": "hello", "version": 1}))
    welcome = json.loads(session.data_to_send()[0])
    assert welcome["version"] == 1 and "emotion_aliases" in welcome["capabilities"]
    speak = {"type": "speak", "id": "a", "text": "Hi!", "emotion": "happy", "intensity": 0.5}
    session.receive_data(json.dumps(speak))
    assert session.events_received() == [
        Speak(uid("a"), "Hi!", SpeakOptions(emotion="happy", intensity=0.5))
    ]
    session.send_started(uid("a"), StreamId(1), 0.5, emotion="happy", intensity=0.5)
    started = json.loads(session.data_to_send()[0])
    # Fields a 1.2 client ignores (SPEC.md §3); the ones it reads are unchanged.
    assert started == {
        "type": "started",
        "id": "a",
        "stream": 1,
        "queue_ms": 0.5,
        "emotion": "happy",
        "intensity": 0.5,
    }


# --- streamed utterances -------------------------------------------------------------------


def test_first_append_opens_with_default_options_and_later_ones_carry_none() -> None:
    pair = SessionPair()
    pair.send(Hello(1))
    events = pair.send(Append(uid("a"), "Hello"), Append(uid("a"), " world"), Flush(uid("a")))
    assert events == [
        Append(uid("a"), "Hello", SpeakOptions()),
        Append(uid("a"), " world", None),
        Flush(uid("a")),
    ]
    assert pair.session.inflight == {"a"}


def test_first_append_keeps_its_options() -> None:
    session = open_session()
    session.receive_data(encode(Append(uid("a"), "x", SpeakOptions(speed=2.0))))
    assert session.events_received() == [Append(uid("a"), "x", SpeakOptions(speed=2.0))]


def test_options_on_a_later_append_are_invalid() -> None:
    session = open_session()
    session.receive_data(encode(Append(uid("a"), "x")))
    session.events_received()
    session.receive_data(encode(Append(uid("a"), "y", SpeakOptions())))
    assert "first append" in assert_error(session, "invalid_message", "a").message


@pytest.mark.parametrize(
    "message",
    [Append(uid("a"), "more"), Flush(uid("a")), End(uid("a"))],
    ids=["append", "flush", "end"],
)
def test_streaming_messages_to_a_speak_id_are_invalid(message) -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "hi")))
    session.events_received()
    session.receive_data(encode(message))
    assert "opened by speak" in assert_error(session, "invalid_message", "a").message


@pytest.mark.parametrize("closing", [End(uid("a")), Cancel(uid("a")), Cancel()])
@pytest.mark.parametrize(
    "message",
    [Append(uid("a"), "more"), Flush(uid("a")), End(uid("a"))],
    ids=["append", "flush", "end"],
)
def test_streaming_messages_after_end_or_cancel_are_invalid(closing, message) -> None:
    session = open_session()
    session.receive_data(encode(Append(uid("a"), "hi")))
    session.receive_data(encode(closing))
    assert len(session.events_received()) == 2
    session.receive_data(encode(message))
    assert "ended or cancelled" in assert_error(session, "invalid_message", "a").message
    assert session.inflight == {"a"}


@pytest.mark.parametrize(
    "message",
    [Flush(uid("zz")), End(uid("zz")), Cancel(uid("zz"))],
    ids=["flush", "end", "cancel"],
)
def test_unknown_id_is_reported(message) -> None:
    session = open_session()
    session.receive_data(encode(message))
    assert_error(session, "unknown_id", "zz")


def test_pending_text_budget_rejects_the_append_that_overflows_it() -> None:
    session = open_session(limits=Limits(max_text_chars=10, max_pending_text_chars=15))
    for piece in ("0123456789", "01234", "x"):
        session.receive_data(encode(Append(uid("a"), piece)))
    texts = [e.text for e in session.events_received() if isinstance(e, Append)]
    assert texts == ["0123456789", "01234"]
    assert "15" in assert_error(session, "text_too_long", "a").message
    session.receive_data(encode(End(uid("a"))))
    assert session.events_received() == [End(uid("a"))]


def test_first_append_over_the_budget_does_not_open_the_utterance() -> None:
    session = open_session(limits=Limits(max_text_chars=10, max_pending_text_chars=5))
    session.receive_data(encode(Append(uid("a"), "0123456789")))
    assert_error(session, "text_too_long", "a")
    assert session.inflight == frozenset()


def test_speak_text_does_not_count_against_the_append_budget() -> None:
    session = open_session(limits=Limits(max_text_chars=10, max_pending_text_chars=5))
    session.receive_data(encode(Speak(uid("a"), "0123456789")))
    assert len(session.events_received()) == 1


# --- cancel --------------------------------------------------------------------------------


def test_cancel_of_a_known_id_is_delivered_and_the_id_stays_in_flight() -> None:
    session = open_session()
    session.receive_data(encode(Speak(uid("a"), "hi")))
    session.receive_data(encode(Cancel(uid("a"))))
    assert session.events_received() == [Speak(uid("a"), "hi"), Cancel(uid("a"))]
    assert session.inflight == {"a"}
    session.receive_data(encode(Cancel(uid("a"))))
    assert session.events_received() == [Cancel(uid("a"))]


def test_cancel_all_is_delivered_even_with_nothing_in_flight() -> None:
    session = open_session()
    session.receive_data(encode(Cancel()))
    assert session.events_received() == [Cancel()]
    assert session.data_to_send() == []


def test_cancel_after_end_is_allowed() -> None:
    session = open_session()
    session.receive_data(encode(Append(uid("a"), "hi")))
    session.receive_data(encode(End(uid("a"))))
    session.receive_data(encode(Cancel(uid("a"))))
    assert session.events_received()[-1] == Cancel(uid("a"))


# --- after close ---------------------------------------------------------------------------


def test_messages_after_a_peer_error_close_are_ignored() -> None:
    session = open_session()
    session.receive_data(b"\xc1")
    session.data_to_send()
    session.receive_data(encode(Speak(uid("a"), "hi")))
    session.receive_data(b"\xc1")
    assert session.events_received() == []
    assert session.data_to_send() == []
    assert session.close_code() == CloseCode.INVALID_DATA


def test_messages_after_server_close_are_ignored() -> None:
    session = open_session()
    session.close(CloseCode.SERVICE_RESTART)
    session.receive_data(encode(Speak(uid("a"), "hi")))
    assert session.events_received() == []
    assert session.data_to_send() == []


def test_server_close_queues_nothing_and_keeps_the_first_code() -> None:
    session = open_session()
    session.close(CloseCode.SLOW_CONSUMER)
    session.close(CloseCode.NORMAL)
    assert session.state is State.CLOSED
    assert session.close_code() == CloseCode.SLOW_CONSUMER
    assert session.data_to_send() == []


def test_server_may_close_before_hello() -> None:
    session = Session(Limits(), CAPS, "s-1")
    session.close(CloseCode.TRY_AGAIN_LATER)
    assert session.close_code() == 1013


def test_last_error_keeps_the_latest_peer_error() -> None:
    session = open_session()
    assert session.last_error is None
    session.receive_data(encode(Flush(uid("a"))))
    assert session.last_error is not None
    assert session.last_error.code == "unknown_id"
    assert session.last_error.to_error() == decode_all(session.data_to_send())[0]
    assert isinstance(session.last_error.to_error(), Error)


def test_authenticator_may_raise_a_protocol_error_to_choose_the_message() -> None:
    def authenticate(token: str | None) -> bool:
        raise AuthFailed("token expired")

    session = Session(Limits(), CAPS, "s-1", authenticate=authenticate)
    session.receive_data(encode(Hello(1, "old")))
    assert assert_error(session, "auth_failed", close=CloseCode.AUTH_FAILED).message == (
        "token expired"
    )


def test_authenticator_failures_of_other_kinds_propagate() -> None:
    def authenticate(token: str | None) -> bool:
        raise RuntimeError("redis down")

    session = Session(Limits(), CAPS, "s-1", authenticate=authenticate)
    with pytest.raises(RuntimeError):
        session.receive_data(encode(Hello(1, "tok")))


# --- a streamed utterance the server ended before the client's end (SPEC.md §4.3) ----------


def _ended_by_server() -> Session:
    session = open_session()
    session.receive_data(encode(Append(uid("s"), "太棒了", SpeakOptions(speed=2.0))))
    session.events_received()
    session.send_error(Error("unsupported_language", "no", uid("s")))
    session.send_done(Done(uid("s"), None, "failed"))
    session.data_to_send()
    return session


def test_text_still_arriving_for_an_utterance_the_server_ended_does_not_reopen_it() -> None:
    session = _ended_by_server()
    session.receive_data(encode(Append(uid("s"), "Hello there.")))
    assert_error(session, "invalid_message", "s")
    assert session.inflight == frozenset()


def test_flush_for_an_utterance_the_server_ended_is_refused() -> None:
    session = _ended_by_server()
    session.receive_data(encode(Flush(uid("s"))))
    assert_error(session, "invalid_message", "s")


@pytest.mark.parametrize("release", [End(uid("s")), Cancel(uid("s"))])
def test_end_or_cancel_frees_an_id_the_server_ended_silently(release) -> None:
    session = _ended_by_server()
    session.receive_data(encode(release))
    assert session.events_received() == []
    assert_sent(session, [])
    session.receive_data(encode(Append(uid("s"), "Hello again.")))
    (event,) = session.events_received()
    assert isinstance(event, Append) and event.options == SpeakOptions()


def test_speak_with_an_id_the_server_ended_opens_normally() -> None:
    session = _ended_by_server()
    session.receive_data(encode(Speak(uid("s"), "Hi.")))
    assert len(session.events_received()) == 1


def test_an_utterance_the_client_ended_frees_its_id_at_done() -> None:
    session = open_session()
    session.receive_data(encode(Append(uid("s"), "Hi.", SpeakOptions())))
    session.receive_data(encode(End(uid("s"))))
    session.events_received()
    session.send_done(Done(uid("s"), None, "completed"))
    session.data_to_send()
    session.receive_data(encode(Append(uid("s"), "Again.")))
    assert len(session.events_received()) == 1
