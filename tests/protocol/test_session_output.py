"""Session output: started, marks, audio, done and error, and the misuse they refuse."""

from __future__ import annotations

import pytest

from voxlive.protocol import (
    Append,
    AudioFormat,
    AudioFrame,
    AudioSpec,
    Cancel,
    CloseCode,
    Done,
    End,
    Error,
    Hello,
    InvalidState,
    Limits,
    Marks,
    Phoneme,
    ProtocolError,
    Session,
    Speak,
    SpeakOptions,
    Started,
    StreamId,
    Word,
)

from .helpers import CAPS, SessionPair, assert_sent, encode, open_session, uid

A = uid("a")
S = StreamId(7)


def started_session(format: AudioFormat = "s16le") -> Session:
    """Return an open session where utterance ``A`` has started on stream ``S``."""
    session = open_session(hello=Hello(1, None, AudioSpec(format=format)))
    session.receive_data(encode(Speak(A, "hi")))
    session.events_received()
    session.send_started(A, S, 3.0)
    session.data_to_send()
    return session


def frame(seq: int, offset: int, pcm: bytes = b"\0\0" * 4, **flags: bool) -> AudioFrame:
    return AudioFrame(S, seq, offset, pcm, **flags)


def test_client_receives_started_audio_then_done() -> None:
    session = started_session()
    session.send_audio(frame(0, 0))
    session.send_audio(frame(1, 4, b"\1\0" * 2, last=True))
    session.send_done(Done(A, S, "completed", 6, 0.27, 50.0, 0.1))
    assert_sent(
        session,
        [
            frame(0, 0),
            frame(1, 4, b"\1\0" * 2, last=True),
            Done(A, S, "completed", 6, 0.27, 50.0, 0.1),
        ],
    )
    assert session.inflight == frozenset()


def test_a_full_json_exchange_sends_control_as_text_and_audio_as_binary() -> None:
    pair = SessionPair(binary=False)
    pair.send(Hello(1, "tok"))
    assert pair.send(Append(A, "Hi "), Append(A, "there."), End(A)) == [
        Append(A, "Hi ", SpeakOptions()),
        Append(A, "there."),
        End(A),
    ]
    pair.session.send_started(A, S, 1.5)
    pair.session.send_marks(Marks(A, S, 0, (Word("Hi", 0, 2),), (Phoneme("h", 0, 1),)))
    pair.session.send_audio(frame(0, 0, b"\0\0" * 2, last=True))
    pair.session.send_done(Done(A, S, "completed", 2))
    kinds = [type(message).__name__ for message in pair.receive()]
    assert kinds == ["Welcome", "Started", "Marks", "AudioFrame", "Done"]


def test_f32_frames_must_hold_whole_four_byte_samples() -> None:
    session = started_session("f32le")
    with pytest.raises(InvalidState, match="4-byte samples"):
        session.send_audio(frame(0, 0, b"\0" * 6))
    session.send_audio(frame(0, 0, b"\0" * 8))
    session.send_audio(frame(1, 2, b"\0" * 4, last=True))
    assert len(session.data_to_send()) == 2


def test_cancelled_stream_ends_with_a_fading_last_frame_then_done() -> None:
    session = started_session()
    session.receive_data(encode(Cancel(A)))
    assert session.events_received() == [Cancel(A)]
    session.send_audio(frame(0, 0, b"\0\0", last=True, cancelled=True))
    session.send_done(Done(A, S, "cancelled", 1))
    assert_sent(
        session, [frame(0, 0, b"\0\0", last=True, cancelled=True), Done(A, S, "cancelled", 1)]
    )


def test_done_without_a_start_has_no_stream() -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi", SpeakOptions(deadline_ms=5))))
    session.send_error(Error("expired", "deadline passed", id=A))
    session.send_done(Done(A, None, "expired"))
    expired = Error("expired", "deadline passed", id=A, about="utterance")
    assert_sent(session, [expired, Done(A, None, "expired")])


def test_done_frees_the_stream_for_reuse() -> None:
    session = started_session()
    session.send_audio(frame(0, 0, b"", last=True))
    session.send_done(Done(A, S, "completed"))
    session.receive_data(encode(Append(uid("b"), "x")))
    session.send_started(uid("b"), S, 0.0)
    assert len(session.data_to_send()) == 3


def test_server_error_may_be_connection_wide_and_then_close() -> None:
    session = open_session()
    session.send_error(Error("slow_consumer", "audio backlog", retryable=False))
    session.close(CloseCode.SLOW_CONSUMER)
    assert_sent(session, [Error("slow_consumer", "audio backlog")])
    assert session.close_code() == CloseCode.SLOW_CONSUMER


def test_error_about_an_inflight_id_does_not_end_it() -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi")))
    session.send_error(Error("overloaded", "busy", A, True, 200))
    assert session.inflight == {A}


# --- misuse --------------------------------------------------------------------------------

SENDS = {
    "started": lambda s: s.send_started(A, S, 0.0),
    "marks": lambda s: s.send_marks(Marks(A, S, 0)),
    "audio": lambda s: s.send_audio(frame(0, 0)),
    "done": lambda s: s.send_done(Done(A, None, "completed")),
    "error": lambda s: s.send_error(Error("internal", "x")),
}


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
def test_sending_before_hello_is_invalid_state(send) -> None:
    session = Session(Limits(), CAPS, "s-1")
    with pytest.raises(InvalidState):
        send(session)


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
def test_sending_after_close_is_dropped_quietly(send) -> None:
    session = started_session()
    session.close(CloseCode.SERVICE_RESTART)
    send(session)
    assert session.data_to_send() == []


def test_invalid_state_is_a_protocol_error_and_an_assertion_error() -> None:
    assert issubclass(InvalidState, ProtocolError)
    assert issubclass(InvalidState, AssertionError)
    assert InvalidState("x").close_code == CloseCode.INTERNAL_ERROR


@pytest.mark.parametrize(
    ("send", "match"),
    [
        (lambda s: s.send_started(uid("zz"), StreamId(8), 0.0), "not in flight"),
        (lambda s: s.send_started(A, StreamId(8), 0.0), "already started"),
        (lambda s: s.send_marks(Marks(uid("zz"), S, 0)), "not in flight"),
        (lambda s: s.send_marks(Marks(A, StreamId(8), 0)), "does not own"),
        (lambda s: s.send_audio(AudioFrame(StreamId(8), 0, 0, b"\0\0")), "not been started"),
        (lambda s: s.send_audio(frame(1, 0)), "expects"),
        (lambda s: s.send_audio(frame(0, 1)), "expects"),
        (lambda s: s.send_audio(frame(0, 0, b"\0\0\0")), "whole"),
        (lambda s: s.send_audio(frame(0, 0, b"")), "empty"),
        (lambda s: s.send_done(Done(uid("zz"), None, "completed")), "not in flight"),
        (lambda s: s.send_done(Done(A, None, "completed")), "done.stream"),
        (lambda s: s.send_done(Done(A, S, "completed")), "last frame"),
    ],
)
def test_misuse_of_a_started_stream_is_invalid_state(send, match) -> None:
    session = started_session()
    with pytest.raises(InvalidState, match=match):
        send(session)
    assert session.data_to_send() == []


def test_frames_after_the_last_one_are_invalid_state() -> None:
    session = started_session()
    session.send_audio(frame(0, 0, last=True))
    with pytest.raises(InvalidState, match="expects"):
        session.send_audio(frame(1, 4))


def test_marks_before_start_are_invalid_state() -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi")))
    with pytest.raises(InvalidState, match="does not own"):
        session.send_marks(Marks(A, S, 0))


@pytest.mark.parametrize("stream", [-1, 2**32])
def test_started_stream_must_fit_in_u32(stream) -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi")))
    with pytest.raises(InvalidState, match="u32"):
        session.send_started(A, StreamId(stream), 0.0)


def test_started_stream_must_not_be_in_use() -> None:
    session = started_session()
    session.receive_data(encode(Speak(uid("b"), "hi")))
    with pytest.raises(InvalidState, match="in use"):
        session.send_started(uid("b"), S, 0.0)


def test_non_finite_numbers_are_invalid_state_and_change_nothing() -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi")))
    with pytest.raises(InvalidState, match="NaN"):
        session.send_started(A, S, float("nan"))
    session.send_started(A, S, 1.0)
    assert session.data_to_send() != []


# --- started echo (v1.3) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("echo", "expected"),
    [
        ({}, Started(A, S, 2.0)),
        ({"emotion": "happy", "intensity": 0.7}, Started(A, S, 2.0, "happy", 0.7)),
        ({"emotion": "sad"}, Started(A, S, 2.0, emotion="sad")),
        ({"intensity": 0.0}, Started(A, S, 2.0, intensity=0.0)),
        ({"emotion": "happy", "intensity": 1}, Started(A, S, 2.0, "happy", 1.0)),
    ],
)
@pytest.mark.parametrize("binary", [True, False])
def test_started_echoes_the_emotion_and_intensity_applied(echo, expected, binary) -> None:
    session = open_session(binary=binary)
    session.receive_data(encode(Speak(A, "hi", SpeakOptions(emotion="HAPPY")), binary))
    session.send_started(A, S, 2.0, **echo)
    assert_sent(session, [expected])
    assert session.inflight == {A}


@pytest.mark.parametrize(
    ("echo", "match"),
    [
        ({"emotion": "HAPPY"}, "not in capabilities.emotions"),  # the canonical name only
        ({"emotion": "angry"}, "supported: happy, sad"),
        ({"intensity": 1.01}, r"\[0, 1\]"),
        ({"intensity": -0.1}, r"\[0, 1\]"),
        ({"intensity": float("nan")}, r"\[0, 1\]"),
        ({"intensity": float("inf")}, r"\[0, 1\]"),
    ],
)
def test_a_bad_started_echo_is_invalid_state_and_starts_nothing(echo, match) -> None:
    session = open_session()
    session.receive_data(encode(Speak(A, "hi")))
    with pytest.raises(InvalidState, match=match):
        session.send_started(A, S, 0.0, **echo)
    assert session.data_to_send() == []
    session.send_started(A, S, 0.0)  # A did not start: it still can
    assert_sent(session, [Started(A, S, 0.0)])


def test_end_then_done_closes_a_streamed_utterance() -> None:
    session = open_session()
    session.receive_data(encode(Append(A, "hi")))
    session.receive_data(encode(End(A)))
    session.send_done(Done(A, None, "failed"))
    assert session.inflight == frozenset()


def test_audio_may_come_as_a_memoryview_without_a_copy() -> None:
    session = started_session()
    session.send_audio(AudioFrame(S, 0, 0, memoryview(b"\1\0\2\0"), last=True))
    assert_sent(session, [frame(0, 0, b"\1\0\2\0", last=True)])
