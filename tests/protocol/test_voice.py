"""Voice registration messages (SPEC.md §4.6, v1.2): codec, chunk assembly, limits."""

from __future__ import annotations

import base64
import json

import pytest

from voxlive.protocol import (
    Capabilities,
    Error,
    InvalidState,
    Limits,
    Speak,
    SpeakOptions,
    VoiceDelete,
    VoiceDeleted,
    VoiceInfo,
    VoiceList,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
    Welcome,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
)

from .helpers import CAPS, assert_error, assert_sent, encode, open_session, uid

VOICE_CAPS = Capabilities(voices=("joe",), voice_registration=True)


def voice_session(**limits) -> object:
    return open_session(VOICE_CAPS, Limits(**limits) if limits else None)


def chunk(id: str, audio: bytes, seq: int = 0, final: bool = True, **kw) -> VoiceRegister:
    return VoiceRegister(uid(id), audio, seq=seq, final=final, **kw)


# -- codec ------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(
    "message",
    [
        VoiceRegister(uid("r1"), b"\x00\xffRIFF", seq=3, final=False),
        VoiceRegister(uid("r1"), b"", name="my.voice", scope="persistent"),
        VoiceList(uid("r2")),
        VoiceDelete(uid("r3"), "my.voice"),
    ],
)
def test_voice_client_messages_round_trip(message, binary) -> None:
    assert decode_client(encode_client(message, binary), Limits()) == message


def test_json_audio_travels_as_base64() -> None:
    text = encode_client(VoiceRegister(uid("r1"), b"\x00\x01\x02"), binary=False)
    assert json.loads(text)["audio"] == base64.b64encode(b"\x00\x01\x02").decode()


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(
    "message",
    [
        VoiceReady(uid("r1"), "v-1", True, {"usable_s": 4.5, "sample_rate": 16000, "f": "WAV"}),
        VoiceListing(
            uid("r2"), (VoiceInfo("a", "session", {"snr_db": 30.0}), VoiceInfo("b", "persistent"))
        ),
        VoiceDeleted(uid("r3"), "a", False),
    ],
)
def test_voice_server_messages_round_trip(message, binary) -> None:
    assert decode_server(encode_server(message, binary)) == message


def test_a_welcome_without_the_v1_2_fields_still_decodes() -> None:
    wire = json.loads(encode_server(Welcome(1, "s", open_session().audio, Limits(), CAPS), False))
    del wire["limits"]["max_reference_bytes"], wire["limits"]["max_registrations"]
    del wire["capabilities"]["voice_registration"]
    welcome = decode_server(json.dumps(wire))
    assert isinstance(welcome, Welcome)
    assert welcome.limits == Limits()
    assert welcome.capabilities.voice_registration is False


def test_summary_values_a_client_cannot_read_are_skipped() -> None:
    wire = {"type": "voice.ready", "id": "r", "voice": "v", "cached": False}
    wire["summary"] = {"usable_s": 3.0, "odd": [1], "x": None}
    assert decode_server(json.dumps(wire)) == VoiceReady(uid("r"), "v", False, {"usable_s": 3.0})


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "voice.register", "id": "r", "audio": "not base64!", "seq": 0, "final": True},
        {"type": "voice.register", "id": "r", "audio": 5, "seq": 0, "final": True},
        {"type": "voice.register", "id": "r", "audio": "", "seq": -1, "final": True},
        {"type": "voice.register", "id": "r", "audio": "", "seq": 0},
        {"type": "voice.register", "id": "r", "audio": "", "seq": 0, "final": 1},
        {"type": "voice.register", "id": "r", "audio": "", "seq": 0, "final": True, "name": "a b"},
        {"type": "voice.register", "id": "r", "audio": "", "seq": 0, "final": True, "scope": "x"},
        {"type": "voice.register", "id": "r", "audio": "", "seq": 0, "final": True, "x": 1},
        {"type": "voice.list", "id": "r", "voice": "v"},
        {"type": "voice.delete", "id": "r"},
        {"type": "voice.delete", "id": "r", "voice": ""},
    ],
)
def test_bad_voice_fields_are_invalid_message_with_the_request_id(wire) -> None:
    session = voice_session()
    session.receive_data(json.dumps(wire))
    assert_error(session, "invalid_message", "r")


# -- session ----------------------------------------------------------------------------


def test_a_single_final_chunk_is_delivered_at_once() -> None:
    session = voice_session()
    message = chunk("r1", b"abc", name="bob", scope="persistent")
    session.receive_data(encode(message))
    assert session.events_received() == [message]
    assert session.registrations == {"r1"} and session.uploading == set()


def test_chunks_are_assembled_in_order_with_chunk_0_options() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"ab", final=False, name="bob")))
    session.receive_data(encode(chunk("r1", b"cd", seq=1, final=False)))
    assert session.events_received() == [] and session.data_to_send() == []
    assert session.uploading == {"r1"}
    session.receive_data(encode(chunk("r1", b"e", seq=2), binary=False))
    assert session.events_received() == [chunk("r1", b"abcde", name="bob")]


def test_voice_ready_frees_the_request_id() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"x")))
    session.events_received()
    session.send_voice_ready(VoiceReady(uid("r1"), "v", False))
    assert_sent(session, [VoiceReady(uid("r1"), "v", False)])
    assert session.registrations == set()
    session.receive_data(encode(chunk("r1", b"y")))
    assert session.events_received() == [chunk("r1", b"y")]


def test_a_registration_error_frees_the_request_id() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"x")))
    session.send_voice_error(Error("too_short", "1 s of speech", uid("r1")))
    assert_sent(session, [Error("too_short", "1 s of speech", uid("r1"), about="request")])
    assert session.registrations == set()


def test_answering_a_registration_not_waiting_is_a_local_error() -> None:
    session = voice_session()
    with pytest.raises(InvalidState):
        session.send_voice_ready(VoiceReady(uid("r1"), "v", False))
    with pytest.raises(InvalidState):
        session.send_voice_error(Error("silent", "no speech"))


@pytest.mark.parametrize(
    "second",
    [
        chunk("r1", b"x", seq=2),  # out of order
        chunk("r1", b"x", seq=1, name="late"),  # name after chunk 0
        chunk("r1", b"x", seq=1, scope="persistent"),
    ],
)
def test_a_bad_later_chunk_is_invalid_and_abandons_the_upload(second) -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"ab", final=False)))
    session.receive_data(encode(second))
    assert_error(session, "invalid_message", "r1")
    assert session.registrations == set()


def test_a_chunk_of_no_upload_is_invalid_message() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r9", b"x", seq=1)))
    assert_error(session, "invalid_message", "r9")


def test_a_chunk_after_final_is_invalid_message() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"x")))
    session.events_received()
    session.receive_data(encode(chunk("r1", b"x", seq=1)))
    assert_error(session, "invalid_message", "r1")
    assert session.registrations == {"r1"}  # still waiting for its answer


def test_chunk_0_of_a_request_in_flight_is_a_duplicate() -> None:
    session = voice_session()
    session.receive_data(encode(chunk("r1", b"x")))
    session.events_received()
    session.receive_data(encode(chunk("r1", b"x")))
    assert_error(session, "duplicate_id", "r1")
    session.receive_data(encode(chunk("r2", b"x", final=False)))
    session.receive_data(encode(chunk("r2", b"x")))
    assert_error(session, "duplicate_id", "r2")
    assert session.registrations == {"r1"}


def test_the_assembled_upload_is_capped_at_max_reference_bytes() -> None:
    session = voice_session(max_reference_bytes=5)
    session.receive_data(encode(chunk("r1", b"abc", final=False)))
    session.receive_data(encode(chunk("r1", b"abc", seq=1)))
    assert_error(session, "too_large", "r1")
    assert session.registrations == set()


def test_registrations_in_flight_are_limited() -> None:
    session = voice_session(max_registrations=2)
    session.receive_data(encode(chunk("r1", b"x")))
    session.receive_data(encode(chunk("r2", b"x", final=False)))
    session.receive_data(encode(chunk("r3", b"x")))
    assert session.events_received() == [chunk("r1", b"x")]
    assert_error(session, "too_many_inflight", "r3")


def test_request_ids_are_their_own_namespace() -> None:
    session = voice_session()
    session.receive_data(encode(Speak(uid("a"), "Hi.")))
    session.receive_data(encode(chunk("a", b"x")))
    assert len(session.events_received()) == 2


@pytest.mark.parametrize(
    "message", [chunk("r1", b"x"), VoiceList(uid("r1")), VoiceDelete(uid("r1"), "v")]
)
def test_voice_messages_without_the_capability_are_unsupported(message) -> None:
    session = open_session(Capabilities(voices=("joe",)))
    session.receive_data(encode(message))
    assert_error(session, "unsupported", "r1")


def test_list_and_delete_are_events_answered_by_the_server() -> None:
    session = voice_session()
    session.receive_data(encode(VoiceList(uid("l"))))
    session.receive_data(encode(VoiceDelete(uid("d"), "v")))
    assert session.events_received() == [VoiceList(uid("l")), VoiceDelete(uid("d"), "v")]
    session.send_voice_list(VoiceListing(uid("l"), (VoiceInfo("v", "session"),)))
    session.send_voice_deleted(VoiceDeleted(uid("d"), "v", True))
    assert_sent(
        session,
        [VoiceListing(uid("l"), (VoiceInfo("v", "session"),)), VoiceDeleted(uid("d"), "v", True)],
    )


def test_with_registration_speak_voice_is_left_to_the_server() -> None:
    session = voice_session()
    speak = Speak(uid("a"), "Hi.", SpeakOptions(voice="somebody"))
    session.receive_data(encode(speak))
    assert session.events_received() == [speak]


def test_without_registration_an_unknown_speak_voice_stays_unsupported() -> None:
    session = open_session(Capabilities(voices=("joe",)))
    session.receive_data(encode(Speak(uid("a"), "Hi.", SpeakOptions(voice="somebody"))))
    assert_error(session, "unsupported", "a")


def test_voice_output_after_close_is_dropped() -> None:
    from voxlive.protocol import CloseCode

    session = voice_session()
    session.receive_data(encode(chunk("r1", b"x")))
    session.close(CloseCode.NORMAL)
    session.send_voice_ready(VoiceReady(uid("r1"), "v", False))
    session.send_voice_error(Error("silent", "x", uid("r1")))
    session.send_voice_list(VoiceListing(uid("l")))
    session.send_voice_deleted(VoiceDeleted(uid("d"), "v", False))
    assert session.data_to_send() == []
