"""The client session, sans I/O: driven with bytes, and paired with the server ``Session``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from voxlive.protocol import (
    Append,
    AudioFrame,
    AudioSpec,
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
    Marks,
    Phoneme,
    Session,
    SessionEvent,
    Speak,
    SpeakOptions,
    Started,
    StreamId,
    UtteranceId,
    Viseme,
    VoiceDeleted,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
    Welcome,
    decode_client,
    encode_audio_frame,
    encode_server,
)
from voxlive.protocol.client_session import (
    TRANSITIONS,
    Answered,
    ClientEvent,
    ClientSession,
    ClientState,
    Ignored,
    Received,
    Refused,
    Unclaimed,
    Violation,
)

from .helpers import CAPS, uid

WELCOME = Welcome(1, "s-1", AudioSpec(22050), Limits(), CAPS)
S1 = StreamId(1)
PCM = b"\1\0" * 4  # four s16le samples


class Pair:
    """A ``ClientSession`` talking to a server ``Session`` (h11 ``ConnectionPair``)."""

    def __init__(self, capabilities: Capabilities = CAPS, limits: Limits | None = None) -> None:
        self.client = ClientSession()
        self.server = Session(limits or Limits(), capabilities, "s-1")
        self.client.send_hello(Hello(version=1))
        self.to_server()
        [welcome] = self.to_client()
        assert isinstance(welcome, Welcome)

    def to_server(self) -> list[SessionEvent]:
        """Deliver what the client queued; return the server's events."""
        for data in self.client.data_to_send():
            self.server.receive_data(data)
        return self.server.events_received()

    def to_client(self) -> list[ClientEvent]:
        """Deliver what the server queued; return the client's events."""
        for data in self.server.data_to_send():
            self.client.receive_data(data)
        return self.client.events_received()

    def start(self, id: UtteranceId, stream: StreamId = S1) -> None:
        self.server.send_started(id, stream, 1.0)


def opened() -> ClientSession:
    """A client session past the handshake, fed by hand."""
    client = ClientSession()
    client.send_hello(Hello(version=1))
    client.data_to_send()
    client.receive_data(encode_server(WELCOME, binary=True))
    client.events_received()
    return client


def feed(client: ClientSession, *messages: object) -> list[ClientEvent]:
    """Feed server messages (or raw bytes) to ``client``; return its events."""
    for message in messages:
        if isinstance(message, bytes):
            client.receive_data(message)
        elif isinstance(message, AudioFrame):
            client.receive_data(encode_audio_frame(message))
        else:
            client.receive_data(encode_server(message, binary=True))  # type: ignore[arg-type]
    return client.events_received()


def sent(client: ClientSession) -> list[object]:
    return [decode_client(data, Limits()) for data in client.data_to_send()]


def frame(seq: int, offset: int, last: bool = False, stream: StreamId = S1) -> AudioFrame:
    return AudioFrame(stream, seq, offset, PCM, last=last)


# --- handshake ----------------------------------------------------------------------------


def test_client_sends_hello_first_and_opens_on_welcome() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1, token="t"))
    assert sent(client) == [Hello(version=1, token="t")]
    assert client.state is ClientState.AWAITING_WELCOME
    assert feed(client, WELCOME) == [WELCOME]
    assert client.state is ClientState.OPEN and client.welcome == WELCOME


def test_client_reports_a_refused_hello_and_stays_closed() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1))
    refusal = Error("auth_failed", "the token was rejected")
    assert feed(client, refusal) == [Refused(refusal)]
    assert client.state is ClientState.CLOSED and client.close_code() is None


def test_a_welcome_of_an_unsupported_version_breaks_the_connection() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1))
    [violation] = feed(client, replace(WELCOME, version=2))
    assert isinstance(violation, Violation) and "version 2" in violation.message
    assert client.close_code() == CloseCode.PROTOCOL_ERROR


def test_a_welcome_with_other_audio_than_asked_breaks_the_connection() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1, audio=AudioSpec(16000, "f32le")))
    [violation] = feed(client, WELCOME)
    assert isinstance(violation, Violation) and "audio" in violation.message
    assert client.state is ClientState.CLOSED


def test_a_reply_to_hello_that_is_not_welcome_breaks_the_connection() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1))
    [violation] = feed(client, Started(uid("x"), S1, 0.0))
    assert violation == Violation("expected welcome, got Started")


def test_an_undecodable_reply_to_hello_breaks_the_connection() -> None:
    client = ClientSession()
    client.send_hello(Hello(version=1))
    [violation] = feed(client, b"\xc1")
    assert isinstance(violation, Violation)
    assert violation.message.startswith("the server sent an invalid reply to hello")


def test_a_server_speaking_before_hello_breaks_the_connection() -> None:
    client = ClientSession()
    assert feed(client, WELCOME) == [Violation("the server spoke before hello")]


def test_hello_is_sent_only_once() -> None:
    client = opened()
    with pytest.raises(InvalidState):
        client.send_hello(Hello(version=1))


def test_nothing_but_hello_can_be_sent_before_welcome() -> None:
    client = ClientSession()
    with pytest.raises(InvalidState):
        client.send_speak("Hi.", SpeakOptions())
    with pytest.raises(InvalidState):
        client.check_text("Hi.")
    with pytest.raises(InvalidState):
        client.welcome  # noqa: B018


def test_every_state_can_close_and_closed_is_final() -> None:
    assert {state for state, _ in TRANSITIONS} == set(ClientState) - {ClientState.CLOSED}
    assert set(TRANSITIONS.values()) <= set(ClientState)


def test_a_closed_session_ignores_input_and_refuses_to_send() -> None:
    client = opened()
    client.close()
    assert feed(client, Started(uid("u1"), S1, 0.0)) == []
    with pytest.raises(InvalidState):
        client.send_cancel()


# --- connection-level violations ----------------------------------------------------------


def test_an_undecodable_message_closes_with_protocol_error() -> None:
    client = opened()
    [violation] = feed(client, b"\xc1", WELCOME)  # the second one is ignored
    assert isinstance(violation, Violation) and (violation.utterance, violation.request) == (
        None,
        None,
    )
    assert client.close_code() == CloseCode.PROTOCOL_ERROR
    assert isinstance(client.last_error, MalformedMessage)


def test_a_second_welcome_is_ignored() -> None:
    assert feed(opened(), WELCOME) == [Ignored("ignored a second welcome")]


# --- speak --------------------------------------------------------------------------------


def test_speak_reaches_the_server_with_every_option() -> None:
    pair = Pair()
    options = SpeakOptions(
        voice="amy",
        emotion="happy",
        intensity=0.4,
        speed=1.5,
        pitch=-3.0,
        volume=2.0,
        priority="realtime",
        deadline_ms=500,
        timestamps=True,
        seed=9,
    )
    id = pair.client.send_speak("Hi.", options, id="a")
    assert pair.to_server() == [Speak(id, "Hi.", options)]
    assert pair.client.inflight == pair.server.inflight == {id}


def test_client_receives_started_audio_then_done() -> None:
    pair = Pair()
    id = pair.client.send_speak("Hi.", SpeakOptions())
    pair.to_server()
    pair.start(id)
    pair.server.send_audio(frame(0, 0))
    pair.server.send_audio(AudioFrame(S1, 1, 4, b"", last=True))
    pair.server.send_done(Done(id, S1, "completed", 4))
    events = pair.to_client()
    assert [type(e.event) for e in events if isinstance(e, Received)] == [
        Started,
        AudioFrame,
        AudioFrame,
        Done,
    ]
    assert pair.client.inflight == frozenset()


def test_generated_ids_skip_ids_in_flight() -> None:
    client = opened()
    client.send_speak("Hi.", SpeakOptions(), id="u2")
    assert [client.send_speak("Hi.", SpeakOptions()) for _ in range(2)] == ["u1", "u3"]


@pytest.mark.parametrize(
    ("text", "id", "match"),
    [
        ("   ", None, "empty_text"),
        ("", None, "empty_text"),
        ("x" * 5001, None, "text_too_long"),
        ("Hi.", "no spaces", "utterance id"),
        ("Hi.", "taken", "already in flight"),
    ],
)
def test_speak_refuses_bad_text_or_ids_before_sending(text, id, match) -> None:
    client = opened()
    client.send_speak("Hi.", SpeakOptions(), id="taken")
    client.data_to_send()
    with pytest.raises(ValueError, match=match):
        client.send_speak(text, SpeakOptions(), id=id)
    assert client.data_to_send() == []


def test_speak_with_options_the_codec_cannot_encode_opens_nothing() -> None:
    client = opened()
    with pytest.raises(ValueError):
        client.send_speak("Hi.", SpeakOptions(speed=float("nan")), id="a")
    assert client.inflight == frozenset()


# --- streamed text ------------------------------------------------------------------------


def test_a_stream_sends_its_options_with_the_first_append_only() -> None:
    pair = Pair()
    options = SpeakOptions(emotion="sad")
    id = pair.client.open_stream(options, id="s")
    assert pair.to_server() == []
    pair.client.send_append(id, "")  # ignored
    pair.client.send_append(id, "One ")
    pair.client.send_append(id, "two.")
    pair.client.send_flush(id)
    pair.client.send_end(id)
    assert pair.to_server() == [
        Append(id, "One ", options),
        Append(id, "two."),
        Flush(id),
        End(id),
    ]


def test_a_stream_that_got_no_text_ends_at_once_without_sending() -> None:
    client = opened()
    id = client.open_stream(SpeakOptions())
    client.send_flush(id)
    client.send_end(id)
    assert client.data_to_send() == []
    assert client.events_received() == [Received(id, Done(id, None, "completed"))]
    assert client.inflight == frozenset()


def test_an_ended_stream_takes_no_more_text() -> None:
    client = opened()
    id = client.open_stream(SpeakOptions())
    client.send_append(id, "Hi.")
    client.send_end(id)
    assert not client.accepting(id)
    with pytest.raises(InvalidState, match="ended or cancelled"):
        client.send_append(id, "more")


def test_a_speak_takes_no_appended_text() -> None:
    client = opened()
    id = client.send_speak("Hi.", SpeakOptions())
    with pytest.raises(InvalidState):
        client.send_flush(id)


def test_appended_text_past_the_budget_is_refused() -> None:
    client = opened()
    id = client.open_stream(SpeakOptions())
    for _ in range(4):
        client.send_append(id, "x" * 5000)
    with pytest.raises(ValueError, match="text_too_long"):
        client.send_append(id, "x")


def test_a_stream_the_server_ended_early_gets_its_end_and_frees_the_id() -> None:
    pair = Pair()
    id = pair.client.open_stream(SpeakOptions(), id="s")
    pair.client.send_append(id, "Hello")
    pair.to_server()
    pair.server.send_done(Done(id, None, "failed"))
    assert pair.to_client() == [Received(id, Done(id, None, "failed"))]
    assert pair.to_server() == []  # the queued end released the id on the server
    again = pair.client.open_stream(SpeakOptions(), id="s")
    pair.client.send_append(again, "Hi")
    assert pair.to_server() == [Append(id, "Hi", SpeakOptions())]


# --- cancel -------------------------------------------------------------------------------


def test_cancel_all_ends_unopened_streams_here_and_cancels_the_rest_there() -> None:
    pair = Pair()
    spoken = pair.client.send_speak("Hi.", SpeakOptions(), id="a")
    stream = pair.client.open_stream(SpeakOptions(), id="b")
    pair.client.send_cancel()
    assert pair.client.events_received() == [Received(stream, Done(stream, None, "cancelled"))]
    assert pair.to_server() == [Speak(spoken, "Hi.", SpeakOptions()), Cancel(None)]


def test_cancel_of_an_id_not_in_flight_sends_nothing() -> None:
    client = opened()
    client.send_cancel(uid("nobody"))
    assert client.data_to_send() == [] and client.events_received() == []


def test_a_cancelled_stream_takes_no_more_text() -> None:
    client = opened()
    id = client.open_stream(SpeakOptions())
    client.send_append(id, "Hi")
    client.send_cancel(id)
    assert sent(client)[-1] == Cancel(id)
    assert not client.accepting(id)


# --- audio order: frames, started, marks, done --------------------------------------------


def speaking(*ids: str) -> ClientSession:
    """A client with started utterances ``ids`` on streams 1, 2, …"""
    client = opened()
    for n, id in enumerate(ids, 1):
        client.send_speak("Hi.", SpeakOptions(), id=id)
        feed(client, Started(uid(id), StreamId(n), 0.0))
    client.data_to_send()
    return client


def test_an_out_of_order_frame_gives_up_its_utterance_only() -> None:
    client = speaking("a", "b")
    events = feed(client, frame(0, 0), frame(2, 8), frame(1, 4), frame(0, 0, stream=StreamId(2)))
    assert events[0] == Received(uid("a"), frame(0, 0))
    assert isinstance(events[1], Violation) and events[1].utterance == "a"
    assert "(2, 8)" in events[1].message
    assert events[2:] == [Received(uid("b"), frame(0, 0, stream=StreamId(2)))]
    done = Done(uid("a"), S1, "completed")
    assert feed(client, done) == [Received(uid("a"), done)]  # the id is free again
    assert client.inflight == {"b"}


def test_a_duplicate_frame_is_a_violation() -> None:
    client = speaking("a")
    [_, violation] = feed(client, frame(0, 0), frame(0, 0))
    assert isinstance(violation, Violation) and violation.utterance == "a"


def test_a_frame_with_a_gap_in_offsets_is_a_violation() -> None:
    client = speaking("a")
    [_, violation] = feed(client, frame(0, 0), frame(1, 5))
    assert isinstance(violation, Violation)


def test_a_frame_after_the_last_is_a_violation() -> None:
    client = speaking("a")
    [_, violation] = feed(client, frame(0, 0, last=True), frame(1, 4))
    assert isinstance(violation, Violation)


def test_a_frame_of_part_samples_is_a_violation() -> None:
    client = speaking("a")
    [violation] = feed(client, AudioFrame(S1, 0, 0, b"\0\0\0"))
    assert isinstance(violation, Violation) and "whole" in violation.message


def test_done_without_the_last_frame_is_a_violation_and_ends_the_utterance() -> None:
    client = speaking("a")
    done = Done(uid("a"), S1, "completed")
    [_, violation, received] = feed(client, frame(0, 0), done)
    assert isinstance(violation, Violation) and violation.utterance == "a"
    assert received == Received(uid("a"), done) and client.inflight == frozenset()


def test_done_naming_another_stream_is_a_violation() -> None:
    client = speaking("a")
    [violation, _] = feed(client, frame(0, 0, last=True), Done(uid("a"), StreamId(9), "completed"))[
        1:
    ]
    assert isinstance(violation, Violation)


def test_a_frame_of_an_unknown_stream_is_ignored() -> None:
    [ignored] = feed(speaking("a"), frame(0, 0, stream=StreamId(5)))
    assert isinstance(ignored, Ignored) and "unknown stream 5" in ignored.reason


def test_a_second_started_is_ignored() -> None:
    [ignored] = feed(speaking("a"), Started(uid("a"), StreamId(4), 0.0))
    assert isinstance(ignored, Ignored) and "not waiting to start" in ignored.reason


def test_started_for_an_id_not_in_flight_is_ignored() -> None:
    [ignored] = feed(opened(), Started(uid("zz"), S1, 0.0))
    assert isinstance(ignored, Ignored)


def test_marks_of_the_utterance_stream_are_delivered() -> None:
    marks = Marks(uid("a"), S1, 0)
    assert feed(speaking("a"), marks) == [Received(uid("a"), marks)]


def test_marks_with_visemes_reach_the_utterance_whole() -> None:
    visemes = (Viseme("sil", 0, 40), Viseme("PP", 40, 90), Viseme("aa", 90, 200))
    marks = Marks(uid("a"), S1, 0, phonemes=(Phoneme("m", 40, 90),), visemes=visemes)
    [received] = feed(speaking("a"), marks)
    assert received == Received(uid("a"), marks)
    assert isinstance(received.event, Marks) and received.event.visemes == visemes


def test_marks_for_another_stream_are_a_violation() -> None:
    [violation] = feed(speaking("a", "b"), Marks(uid("a"), StreamId(2), 0))
    assert isinstance(violation, Violation) and violation.utterance == "a"


def test_marks_for_an_id_not_in_flight_are_dropped() -> None:
    assert feed(speaking("a"), Marks(uid("zz"), S1, 0)) == []


def test_a_given_up_utterance_gets_nothing_but_its_done() -> None:
    client = speaking("a")
    feed(client, frame(1, 4))  # the violation
    error = Error("internal", "oops", id=uid("a"))
    assert feed(client, frame(0, 0), Marks(uid("a"), S1, 0), error) == []


def test_done_for_an_id_not_in_flight_is_ignored() -> None:
    [ignored] = feed(opened(), Done(uid("zz"), None, "completed"))
    assert isinstance(ignored, Ignored)


# --- errors -------------------------------------------------------------------------------


def test_a_speak_the_server_refuses_ends_with_a_local_done_failed() -> None:
    pair = Pair()
    id = pair.client.send_speak("Hi.", SpeakOptions(emotion="bored"))
    pair.to_server()
    [error, done] = pair.to_client()
    assert isinstance(error, Received) and isinstance(error.event, Error)
    assert error.event.code == "unsupported"
    assert done == Received(id, Done(id, None, "failed"))
    assert pair.client.inflight == pair.server.inflight == frozenset()


def test_an_error_after_started_does_not_end_the_utterance() -> None:
    client = speaking("a")
    error = Error("invalid_message", "odd", id=uid("a"))
    assert feed(client, error) == [Received(uid("a"), error)]
    assert client.inflight == {"a"}


def test_an_error_naming_nothing_in_flight_is_unclaimed() -> None:
    client = opened()
    errors = [Error("overloaded", "busy"), Error("unknown_id", "?", id=uid("zz"))]
    assert feed(client, *errors) == [Unclaimed(e) for e in errors]


# --- voice requests -----------------------------------------------------------------------

VOICES = Capabilities(voice_registration=True)


def test_a_voice_upload_goes_in_chunks_and_its_answer_ends_the_request() -> None:
    pair = Pair(VOICES, Limits(max_message_bytes=1024))
    id = pair.client.send_voice_register(b"x" * 2000, name="carol", scope="persistent")
    data = pair.client.data_to_send()
    chunks = [decode_client(d, Limits()) for d in data]
    assert all(isinstance(c, VoiceRegister) for c in chunks)
    assert [(c.seq, c.final, len(c.audio)) for c in chunks if isinstance(c, VoiceRegister)] == [
        (0, False, 768),
        (1, False, 768),
        (2, True, 464),
    ]
    for chunk in data:
        pair.server.receive_data(chunk)
    [whole] = pair.server.events_received()
    assert whole == VoiceRegister(id, b"x" * 2000, name="carol", scope="persistent")
    ready = VoiceReady(id, "carol", cached=False)
    pair.server.send_voice_ready(ready)
    assert pair.to_client() == [Answered(id, ready)]


def test_an_empty_voice_upload_is_one_final_chunk() -> None:
    client = opened()
    client.send_voice_register(b"")
    [chunk] = sent(client)
    assert isinstance(chunk, VoiceRegister) and chunk.final and chunk.audio == b""


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"audio": b"x" * (10 * 1024 * 1024 + 1)}, "too_large"),
        ({"audio": b"x", "name": "no spaces"}, "voice name"),
        ({"audio": b"x", "chunk_bytes": 0}, "chunk_bytes"),
    ],
)
def test_a_voice_upload_is_checked_before_sending(kwargs, match) -> None:
    client = opened()
    with pytest.raises(ValueError, match=match):
        client.send_voice_register(**kwargs)
    assert client.data_to_send() == []


def test_voice_list_and_delete_are_answered() -> None:
    pair = Pair(VOICES)
    listing = pair.client.send_voice_list()
    deleting = pair.client.send_voice_delete("carol")
    assert len(pair.to_server()) == 2
    pair.server.send_voice_list(VoiceListing(listing))
    pair.server.send_voice_deleted(VoiceDeleted(deleting, "carol", deleted=False))
    assert pair.to_client() == [
        Answered(listing, VoiceListing(listing)),
        Answered(deleting, VoiceDeleted(deleting, "carol", deleted=False)),
    ]


def test_deleting_an_invalid_voice_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid voice id"):
        opened().send_voice_delete("no spaces")


def test_an_error_naming_a_request_answers_it() -> None:
    pair = Pair(VOICES)
    id = pair.client.send_voice_register(b"not audio")
    pair.to_server()
    error = Error("unsupported_format", "?", id=id)
    pair.server.send_voice_error(error)
    assert pair.to_client() == [Answered(id, replace(error, about="request"))]


def test_an_answer_of_the_wrong_kind_is_a_violation_for_that_request() -> None:
    client = opened()
    id = client.send_voice_list()
    [violation] = feed(client, VoiceDeleted(id, "x", deleted=True))
    assert violation == Violation(f"expected VoiceListing for {id}, got VoiceDeleted", request=id)
    assert client.state is ClientState.OPEN


def test_an_answer_to_no_request_is_ignored() -> None:
    [ignored] = feed(opened(), VoiceReady(uid("voxlive-req-9"), "v", cached=True))
    assert isinstance(ignored, Ignored)


def test_check_text_allows_blank_pieces_only_when_asked() -> None:
    client = opened()
    client.check_text(" ", allow_blank=True)
    with pytest.raises(ValueError, match="empty_text"):
        client.check_text(" ")


def test_closing_twice_keeps_the_session_closed() -> None:
    client = opened()
    client.close()
    client.close()
    assert client.state is ClientState.CLOSED and client.close_code() is None


def test_started_for_a_given_up_utterance_is_dropped() -> None:
    client = opened()
    client.send_speak("Hi.", SpeakOptions(), id="a")
    feed(client, Marks(uid("a"), S1, 0))  # marks before started: the violation
    assert feed(client, Started(uid("a"), S1, 0.0)) == []
