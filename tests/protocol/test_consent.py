"""The speaker's consent on ``voice.register``, ``consent_required`` and the watermark
capability (SPEC.md §4.6, §5.1, §5.7, v1.7): codec, session and client requests."""

from __future__ import annotations

import json

import msgpack  # type: ignore[import-untyped]
import pytest

from voxlive.protocol import (
    AudioSpec,
    Capabilities,
    Consent,
    Limits,
    VoiceInfo,
    VoiceListing,
    VoiceRegister,
    Watermark,
    Welcome,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
)
from voxlive.protocol.client_requests import VoiceRequests, check_consent
from voxlive.protocol.schema import consent_from_wire, is_iso_time
from voxlive.protocol.types import ERROR_CODES

from .helpers import assert_error, encode, open_session, uid

VOICE_CAPS = Capabilities(voices=("joe",), voice_registration=True)
CONSENT = Consent(True, "Anna Li", "signed form", "2024-05-01", "I agree.")
WIRE = {
    "granted": True,
    "by": "Anna Li",
    "method": "signed form",
    "at": "2024-05-01",
    "statement": "I agree.",
}


def register_map(consent: object, **extra: object) -> dict[str, object]:
    first = {"type": "voice.register", "id": "r1", "audio": b"RIFF", "seq": 0, "final": True}
    return first | {"consent": consent} | extra


# -- codec ------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(
    "consent",
    [CONSENT, Consent(False, "王小明", "recorded verbal statement", "2024-05-01T12:30:00Z")],
)
def test_a_consent_travels_on_voice_register_and_reads_back_equal(consent, binary) -> None:
    message = VoiceRegister(uid("r1"), b"RIFF", name="anna", consent=consent)
    assert decode_client(encode_client(message, binary), Limits()) == message


def test_the_consent_map_has_every_key_and_is_left_out_when_there_is_none() -> None:
    sent = json.loads(encode_client(VoiceRegister(uid("r1"), b"", consent=CONSENT), False))
    assert sent["consent"] == WIRE
    # A server before v1.7 refuses unknown fields: no consent, no key.
    assert "consent" not in json.loads(encode_client(VoiceRegister(uid("r1"), b""), False))


@pytest.mark.parametrize("consent", [None, "absent"])
def test_a_null_or_absent_consent_is_none(consent) -> None:
    wire = register_map(consent)
    if consent == "absent":
        del wire["consent"]
    message = decode_client(encode(wire), Limits())
    assert isinstance(message, VoiceRegister) and message.consent is None


@pytest.mark.parametrize(
    "at",
    [
        "2024-05-01",
        "2024-05-01T12:30",
        "2024-05-01T12:30:00Z",
        "2024-05-01T12:30:00.123Z",  # JavaScript's toISOString()
        "2024-05-01T12:30:00.123456+02:00",  # Python's isoformat()
        "2024-05-01 12:30:00+0200",
        "2024-02-29T23:59:59-05",
    ],
)
def test_iso_8601_dates_and_date_times_are_accepted(at) -> None:
    assert is_iso_time(at)
    assert consent_from_wire(WIRE | {"at": at}).at == at


@pytest.mark.parametrize(
    "at",
    [
        "",
        "yesterday",
        "01/05/2024",
        "2024-5-1",
        "20240501",
        "2024-13-01",
        "2023-02-29",
        "2024-05-01T24:00",
        "2024-05-01T12:30:00+25:00",
        "2024-05-01x12:30",
        "２０２４-05-01",  # full-width digits are not ISO 8601's
        "2024-05-01T12:30:00Z and then some",
    ],
)
def test_other_times_are_refused(at) -> None:
    assert not is_iso_time(at)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"granted": "yes"}, "voice.register.consent.granted must be a boolean"),
        ({"granted": 1}, "voice.register.consent.granted must be a boolean"),
        ({"by": ""}, "voice.register.consent.by must not be blank"),
        ({"by": "   "}, "voice.register.consent.by must not be blank"),
        ({"by": "x" * 201}, "voice.register.consent.by must be at most 200 characters"),
        ({"method": 7}, "voice.register.consent.method must be a string"),
        ({"method": "\t"}, "voice.register.consent.method must not be blank"),
        ({"at": "last week"}, "voice.register.consent.at must be an ISO 8601 date or date-time"),
        ({"at": "2024-05-01T12:30:00" + "0" * 60}, "consent.at must be at most 64 characters"),
        ({"statement": "s" * 2001}, "consent.statement must be at most 2000 characters"),
        ({"statement": 3}, "voice.register.consent.statement must be a string"),
        ({"signature": "x"}, "unknown field(s) in voice.register.consent: 'signature'"),
    ],
)
def test_an_ill_formed_consent_is_refused_naming_what_is_wrong(change, says) -> None:
    session = open_session(VOICE_CAPS)
    session.receive_data(encode(register_map(WIRE | change)))
    error = assert_error(session, "invalid_message", "r1")
    assert says in error.message
    assert error.about == "request" and not error.retryable
    assert session.registrations == frozenset()  # nothing started


@pytest.mark.parametrize("missing", ["granted", "by", "method", "at"])
def test_every_key_but_the_statement_is_required(missing) -> None:
    session = open_session(VOICE_CAPS)
    wire = dict(WIRE)
    del wire[missing]
    session.receive_data(encode(register_map(wire)))
    error = assert_error(session, "invalid_message", "r1")
    assert error.message == f"voice.register.consent.{missing} is required"


@pytest.mark.parametrize("consent", ["granted", ["granted"], True])
def test_a_consent_that_is_not_a_map_is_refused(consent) -> None:
    session = open_session(VOICE_CAPS)
    session.receive_data(encode(register_map(consent)))
    error = assert_error(session, "invalid_message", "r1")
    assert error.message == "voice.register.consent must be a map"


def test_the_statement_may_be_null_or_left_out() -> None:
    assert consent_from_wire(WIRE | {"statement": None}).statement is None
    assert consent_from_wire({k: v for k, v in WIRE.items() if k != "statement"}) == Consent(
        True, "Anna Li", "signed form", "2024-05-01"
    )


# -- the session ------------------------------------------------------------------------


def test_the_assembled_registration_carries_chunk_0s_consent() -> None:
    session = open_session(VOICE_CAPS)
    session.receive_data(encode(VoiceRegister(uid("r1"), b"ab", final=False, consent=CONSENT)))
    session.receive_data(encode(VoiceRegister(uid("r1"), b"cd", seq=1)))
    assert session.events_received() == [VoiceRegister(uid("r1"), b"abcd", consent=CONSENT)]


def test_consent_on_a_later_chunk_abandons_the_upload() -> None:
    session = open_session(VOICE_CAPS)
    session.receive_data(encode(VoiceRegister(uid("r1"), b"ab", final=False)))
    session.receive_data(encode(VoiceRegister(uid("r1"), b"cd", seq=1, consent=CONSENT)))
    error = assert_error(session, "invalid_message", "r1")
    assert "consent are allowed only on chunk 0" in error.message
    assert session.registrations == frozenset()


def test_consent_required_is_an_error_code() -> None:
    assert "consent_required" in ERROR_CODES


# -- server messages --------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
def test_voice_list_entries_carry_their_consent_or_null(binary) -> None:
    listing = VoiceListing(
        uid("l1"),
        (VoiceInfo("anna", "persistent", {"usable_s": 5.0}, CONSENT), VoiceInfo("b", "session")),
    )
    data = encode_server(listing, binary)
    wire = msgpack.unpackb(data) if binary else json.loads(data)
    assert [v["consent"] for v in wire["voices"]] == [WIRE, None]
    assert decode_server(data) == listing


def test_a_voice_list_from_an_older_server_reads_as_no_consent() -> None:
    older = {"type": "voice.list", "id": "l1", "voices": [{"voice": "a", "scope": "session"}]}
    later = {
        "type": "voice.list",
        "id": "l1",
        "voices": [{"voice": "a", "scope": "session", "consent": WIRE | {"witness": "Bo"}}],
    }  # a key a later revision adds: skipped
    assert decode_server(msgpack.packb(older)) == VoiceListing(
        uid("l1"), (VoiceInfo("a", "session"),)
    )
    assert decode_server(msgpack.packb(later)).voices[0].consent == CONSENT


def welcome(capabilities: Capabilities) -> Welcome:
    audio = AudioSpec(sample_rate=22050)
    return Welcome(1, "s-1", audio, Limits(), capabilities)


@pytest.mark.parametrize("binary", [True, False])
def test_the_welcome_announces_consent_required_and_the_watermark(binary) -> None:
    caps = Capabilities(
        voice_registration=True,
        consent_required=True,
        watermark=Watermark("perthnet-implicit", all_output=False),
    )
    data = encode_server(welcome(caps), binary)
    wire = msgpack.unpackb(data) if binary else json.loads(data)
    assert wire["capabilities"]["consent_required"] is True
    assert wire["capabilities"]["watermark"] == {"model": "perthnet-implicit", "all_output": False}
    assert decode_server(data) == welcome(caps)


def test_a_welcome_from_an_older_server_requires_no_consent_and_says_no_watermark() -> None:
    wire = msgpack.unpackb(encode_server(welcome(Capabilities()), True))
    for key in ("consent_required", "watermark"):
        del wire["capabilities"][key]
    caps = decode_server(msgpack.packb(wire)).capabilities
    assert (caps.consent_required, caps.watermark) == (False, None)


# -- the client's requests --------------------------------------------------------------


def test_the_client_puts_the_consent_on_chunk_0_only() -> None:
    chunks = VoiceRequests().register(
        b"x" * 100, Limits(), name=None, scope="session", chunk_bytes=40, consent=CONSENT
    )
    assert [c.consent for c in chunks] == [CONSENT, None, None]


def test_the_client_leaves_room_for_the_consent_in_chunk_0() -> None:
    limits = Limits(max_message_bytes=4096)
    consent = Consent(True, "Anna", "signed form", "2024-05-01", "ü" * 1000)
    chunks = VoiceRequests().register(
        b"x" * 20000, limits, name=None, scope="session", chunk_bytes=48 * 1024, consent=consent
    )
    assert chunks[0].consent == consent
    assert all(len(encode_client(c)) <= limits.max_message_bytes for c in chunks)


@pytest.mark.parametrize(
    ("consent", "says"),
    [
        (Consent(True, " ", "signed form", "2024-05-01"), "consent.by must not be blank"),
        (Consent(True, "Anna", "signed form", "May 1st"), "consent.at must be an ISO 8601"),
        (Consent(True, "Anna", "m" * 201, "2024-05-01"), "consent.method must be at most 200"),
    ],
)
def test_the_client_refuses_a_consent_the_server_would_refuse(consent, says) -> None:
    with pytest.raises(ValueError, match=says):
        check_consent(consent)
    with pytest.raises(ValueError, match=says):
        VoiceRequests().register(
            b"x", Limits(), name=None, scope="session", chunk_bytes=10, consent=consent
        )
