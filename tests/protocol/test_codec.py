"""Codec: every message round-trips in msgpack and JSON; audio frames are byte-exact."""

from __future__ import annotations

import json

import msgpack  # type: ignore[import-untyped]
import pytest

from voxlive.protocol import (
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
    InvalidMessage,
    Limits,
    MalformedMessage,
    Marks,
    MessageTooBig,
    Phoneme,
    ServerMessage,
    Speak,
    SpeakOptions,
    Started,
    StreamId,
    UnknownRequest,
    Viseme,
    Welcome,
    Word,
    decode_audio_frame,
    decode_client,
    decode_server,
    encode_audio_frame,
    encode_client,
    encode_server,
)
from voxlive.protocol.codec import parse_client

from .helpers import raw, uid

ENCODINGS = pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])

FULL_OPTIONS = SpeakOptions(
    voice="joe",
    emotion="happy",
    intensity=0.25,
    speed=1.5,
    pitch=-2.0,
    volume=3.5,
    priority="realtime",
    deadline_ms=1500,
    timestamps=True,
    seed=2**63 - 1,
)

CLIENT_MESSAGES: list[ClientMessage] = [
    Hello(version=1),
    Hello(
        version=1, token="t0k3n", audio=AudioSpec(sample_rate=48000, format="f32le", frame_ms=20)
    ),
    Speak(uid("u1"), "Hello there."),
    Speak(uid("A.b_c:d-9"), "Grüße, 世界 🎉", FULL_OPTIONS),
    Append(uid("u2"), " piece"),
    Append(uid("u2"), "first", SpeakOptions()),
    Append(uid("u2"), "first", FULL_OPTIONS),
    Flush(uid("u2")),
    End(uid("u2")),
    Cancel(uid("u2")),
    Cancel(),
]

EMOTION_WELCOME = Welcome(
    version=1,
    session="s-3",
    audio=AudioSpec(sample_rate=22050, format="s16le", frame_ms=40),
    limits=Limits(),
    capabilities=Capabilities(
        emotions=("neutral", "happy", "angry"),
        emotion_aliases={"开心": "happy", "Furious": "angry"},  # v1.3
    ),
)

SERVER_MESSAGES: list[ServerMessage] = [
    Welcome(
        version=1,
        session="s-1",
        audio=AudioSpec(sample_rate=22050, format="s16le", frame_ms=40),
        limits=Limits(),
        capabilities=Capabilities(),
    ),
    Welcome(
        version=1,
        session="s-2",
        audio=AudioSpec(sample_rate=16000, format="f32le", frame_ms=10),
        limits=Limits(max_message_bytes=1000, max_text_chars=10, max_inflight=2),
        capabilities=Capabilities(
            emotions=("happy",), voices=("joe",), timestamps=False, pitch=True, formats=("f32le",)
        ),
    ),
    EMOTION_WELCOME,
    Started(uid("u1"), StreamId(7), 12.5),
    Started(uid("u1"), StreamId(7), 12.5, emotion="happy", intensity=0.7),  # v1.3
    Started(uid("u1"), StreamId(7), 0.0, emotion="neutral"),
    Started(uid("u1"), StreamId(7), 0.0, intensity=1),
    Marks(uid("u1"), StreamId(7), 0),
    Marks(
        uid("u1"),
        StreamId(7),
        2205,
        words=(Word("hi", 2205, 4410), Word("là", 4410, 8820)),
        phonemes=(Phoneme("h", 2205, 3000), Phoneme("aɪ", 3000, 4410)),
    ),
    Marks(  # v1.5
        uid("u1"),
        StreamId(7),
        0,
        words=(Word("map", 0, 900),),
        phonemes=(Phoneme("m", 100, 300), Phoneme("æ", 300, 700), Phoneme("p", 700, 900)),
        visemes=(Viseme("sil", 0, 100), Viseme("PP", 100, 300), Viseme("aa", 300, 700)),
    ),
    Done(uid("u1"), StreamId(7), "completed", 22050, 1000.0, 80.5, 0.12),
    Done(uid("u1"), None, "expired"),
    Error("overloaded", "busy", retryable=True, retry_after_ms=250),
    Error("unknown_id", "no such utterance", id=uid("u9")),
]


@ENCODINGS
@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=repr)
def test_client_message_round_trips(message, binary) -> None:
    data = encode_client(message, binary)
    assert isinstance(data, bytes) == binary
    assert decode_client(data, Limits()) == message


@ENCODINGS
@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=repr)
def test_server_message_round_trips(message, binary) -> None:
    data = encode_server(message, binary)
    assert isinstance(data, bytes) == binary
    assert decode_server(data) == message


def test_msgpack_and_json_carry_the_same_map() -> None:
    message = Speak(uid("u1"), "hi", FULL_OPTIONS)
    assert msgpack.unpackb(encode_client(message)) == json.loads(encode_client(message, False))


def test_speak_wire_map_is_flat_and_complete_but_for_an_unset_intensity() -> None:
    # intensity is not nullable (SPEC.md §4.4): unset, it is left out and the server's
    # default applies (reported in started.intensity).
    assert json.loads(encode_client(Speak(uid("u1"), "hi"), binary=False)) == {
        "type": "speak",
        "id": "u1",
        "text": "hi",
        "voice": None,
        "emotion": None,
        "speed": 1.0,
        "pitch": 0.0,
        "volume": 0.0,
        "priority": "normal",
        "deadline_ms": None,
        "timestamps": False,
        "seed": None,
    }


def test_speak_sends_cache_only_when_false() -> None:
    # v1.8: a server before it refuses unknown fields, so the default stays off the wire.
    off = Speak(uid("u1"), "hi", SpeakOptions(cache=False))
    assert json.loads(encode_client(off, binary=False))["cache"] is False
    assert "cache" not in json.loads(encode_client(Speak(uid("u1"), "hi"), binary=False))


def test_later_append_carries_no_option_fields() -> None:
    assert json.loads(encode_client(Append(uid("u1"), "x"), binary=False)) == {
        "type": "append",
        "id": "u1",
        "text": "x",
    }


def test_welcome_wire_map_announces_mono_audio_and_capabilities() -> None:
    wire = json.loads(encode_server(SERVER_MESSAGES[0], binary=False))
    assert wire["audio"] == {"sample_rate": 22050, "format": "s16le", "frame_ms": 40, "channels": 1}
    assert wire["limits"] == {
        "max_message_bytes": 65536,
        "max_text_chars": 5000,
        "max_inflight": 64,
        "max_pending_text_chars": 20000,
        "max_reference_bytes": 10 * 1024 * 1024,  # v1.2
        "max_registrations": 2,  # v1.2
    }
    assert wire["capabilities"] == {
        "emotions": [],
        "voices": [],
        "timestamps": True,
        "default_sample_rate": 22050,
        "pitch": False,
        "volume": False,
        "formats": ["s16le", "f32le"],
        "voice_registration": False,  # v1.2
        "emotion_aliases": {},  # v1.3
        "builtin_voices": [],  # v1.4
        "consent_required": False,  # v1.7
        "watermark": None,  # v1.7
    }


def test_welcome_wire_map_carries_emotion_aliases_as_a_map() -> None:
    wire = json.loads(encode_server(EMOTION_WELCOME, binary=False))
    assert wire["capabilities"]["emotions"] == ["neutral", "happy", "angry"]
    assert wire["capabilities"]["emotion_aliases"] == {"开心": "happy", "Furious": "angry"}


@ENCODINGS
def test_started_leaves_the_v13_echo_out_unless_set(binary) -> None:
    def wire(message: Started) -> dict[str, object]:
        data = encode_server(message, binary)
        return msgpack.unpackb(data) if binary else json.loads(data)

    plain = {"type": "started", "id": "u1", "stream": 7, "queue_ms": 1.5}
    assert wire(Started(uid("u1"), StreamId(7), 1.5)) == plain
    echoed = Started(uid("u1"), StreamId(7), 1.5, emotion="happy", intensity=0.7)
    assert wire(echoed) == plain | {"emotion": "happy", "intensity": 0.7}


def test_server_msgpack_never_starts_with_the_audio_kind_byte() -> None:
    for message in SERVER_MESSAGES:
        data = encode_server(message, binary=True)
        assert data[0] in range(0x80, 0x90) or data[0] in (0xDE, 0xDF)


def test_json_output_keeps_unicode_readable() -> None:
    data = encode_server(Error("internal", "é"), binary=False)
    assert '"é"' in data


@pytest.mark.parametrize("binary", [True, False])
def test_encoding_refuses_non_finite_numbers(binary) -> None:
    with pytest.raises(ValueError, match="NaN"):
        encode_server(Done(uid("u1"), StreamId(1), "completed", rtf=float("nan")), binary)
    with pytest.raises(ValueError, match="NaN"):
        encode_client(Speak(uid("u1"), "x", SpeakOptions(speed=float("inf"))), binary)


# --- audio frames --------------------------------------------------------------------------


def test_audio_frame_header_is_byte_exact() -> None:
    frame = AudioFrame(StreamId(0x01020304), seq=5, offset=0x00ABCDEF, pcm=b"\x10\x20\x30\x40")
    assert encode_audio_frame(frame) == (
        b"\x01"  # kind
        b"\x00"  # flags
        b"\x10\x00"  # header_len = 16
        b"\x04\x03\x02\x01"  # stream
        b"\x05\x00\x00\x00"  # seq
        b"\xef\xcd\xab\x00"  # offset
        b"\x10\x20\x30\x40"  # pcm
    )


@pytest.mark.parametrize(
    ("last", "cancelled", "flags"),
    [(False, False, 0), (True, False, 1), (False, True, 2), (True, True, 3)],
)
def test_audio_frame_flags_encode_last_and_cancelled_bits(last, cancelled, flags) -> None:
    frame = AudioFrame(StreamId(1), 0, 0, b"\0\0", last=last, cancelled=cancelled)
    data = encode_audio_frame(frame)
    assert data[1] == flags
    assert decode_audio_frame(data) == frame


def test_empty_last_frame_is_just_a_header() -> None:
    frame = AudioFrame(StreamId(3), seq=9, offset=100, pcm=b"", last=True)
    data = encode_audio_frame(frame)
    assert len(data) == 16
    assert decode_server(data) == frame


def test_empty_frame_that_is_not_last_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_audio_frame(AudioFrame(StreamId(3), 0, 0, b""))


@pytest.mark.parametrize("field", ["stream", "seq", "offset"])
@pytest.mark.parametrize("value", [-1, 2**32])
def test_audio_frame_numbers_must_fit_in_u32(field, value) -> None:
    values = {"stream": StreamId(0), "seq": 0, "offset": 0, field: value}
    with pytest.raises(ValueError, match="u32"):
        encode_audio_frame(AudioFrame(**values, pcm=b"\0\0"))


def test_audio_frame_accepts_memoryview_pcm() -> None:
    data = encode_audio_frame(AudioFrame(StreamId(0), 0, 0, memoryview(b"\1\2")))
    assert data.endswith(b"\1\2")


def test_decoder_skips_a_longer_header_and_unknown_flags() -> None:
    header = b"\x01\x84\x14\x00" + b"\x02\0\0\0" + b"\x03\0\0\0" + b"\x04\0\0\0" + b"XTRA"
    frame = decode_audio_frame(header + b"\xaa\xbb")
    assert frame == AudioFrame(StreamId(2), 3, 4, b"\xaa\xbb", last=False, cancelled=False)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x10\x00" + b"\0" * 11,  # shorter than a header
        b"\x02\x00\x10\x00" + b"\0" * 12,  # wrong kind
        b"\x01\x00\x0f\x00" + b"\0" * 12,  # header_len below 16
        b"\x01\x00\x20\x00" + b"\0" * 12,  # header_len past the end
    ],
    ids=["short", "kind", "header-too-small", "header-past-end"],
)
def test_broken_audio_frames_are_malformed(data) -> None:
    with pytest.raises(MalformedMessage):
        decode_audio_frame(data)


# --- decoding failures ---------------------------------------------------------------------


def test_size_is_checked_before_decoding() -> None:
    with pytest.raises(MessageTooBig):
        decode_client(b"\xc1" * 101, Limits(max_message_bytes=100))


def test_message_at_the_size_limit_is_accepted() -> None:
    data = raw({"type": "cancel", "id": "x" * 10})
    assert decode_client(data, Limits(max_message_bytes=len(data))) == Cancel(uid("x" * 10))


@pytest.mark.parametrize(
    ("text", "too_big"),
    [("a" * 100, False), ("é" * 50, False), ("é" * 51, True), ("🎉" * 26, True), ("a" * 101, True)],
)
def test_json_size_counts_utf8_bytes(text, too_big) -> None:
    payload = json.dumps({"type": "x", "t": text}, ensure_ascii=False)
    limit = len(payload.encode()) - len(text.encode()) + 100
    if too_big:
        with pytest.raises(MessageTooBig):
            parse_client(payload, Limits(max_message_bytes=limit))
    else:
        assert parse_client(payload, Limits(max_message_bytes=limit))[0] == "x"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"\x81\xa4type",  # truncated map
        b"\x80\x80",  # trailing data
        msgpack.packb([1, 2]),
        msgpack.packb("speak"),
        msgpack.packb({"id": "x"}),
        msgpack.packb({"type": 1}),
        msgpack.packb({1: "speak"}),
        b"\x82\xa4type\xa6cancel\xa4type\xa6cancel",  # duplicate key
        "",
        "{",
        "[]",
        "null",
        '"speak"',
        '{"type": null}',
        '{"type": "cancel", "type": "cancel"}',
        '{"type": "speak", "speed": NaN}',
        '{"type": "speak", "speed": Infinity}',
        "[" * 100_000,
    ],
)
def test_undecodable_payloads_are_malformed(data) -> None:
    with pytest.raises(MalformedMessage):
        decode_client(data, Limits(max_message_bytes=1_000_000))


def test_unknown_type_is_an_unknown_request() -> None:
    with pytest.raises(UnknownRequest, match="speek"):
        decode_client(raw({"type": "speek"}), Limits())


def test_decode_server_rejects_unknown_types_and_bad_fields() -> None:
    with pytest.raises(UnknownRequest):
        decode_server(raw({"type": "hello"}))
    with pytest.raises(MalformedMessage):
        decode_server(b"\xc1")
    with pytest.raises(MalformedMessage):
        decode_server("[1]")
    with pytest.raises(InvalidMessage, match="queue_ms"):
        decode_server(raw({"type": "started", "id": "u", "stream": 1}))


def test_decode_server_ignores_unknown_fields() -> None:
    wire = msgpack.unpackb(encode_server(Started(uid("u"), StreamId(1), 2.0), True))
    assert decode_server(raw(wire | {"future": [1, 2]})) == Started(uid("u"), StreamId(1), 2.0)


def test_decode_server_skips_formats_it_does_not_know() -> None:
    wire = json.loads(encode_server(SERVER_MESSAGES[0], binary=False))
    wire["capabilities"]["formats"] = ["opus", "f32le"]
    welcome = decode_server(json.dumps(wire))
    assert isinstance(welcome, Welcome)
    assert welcome.capabilities.formats == ("f32le",)


def test_welcome_of_a_server_before_v13_has_no_emotion_aliases() -> None:
    wire = json.loads(encode_server(SERVER_MESSAGES[1], binary=False))
    del wire["capabilities"]["emotion_aliases"]
    welcome = decode_server(json.dumps(wire))
    assert isinstance(welcome, Welcome)
    assert welcome == SERVER_MESSAGES[1]
    assert welcome.capabilities.emotions == ("happy",)
    assert welcome.capabilities.emotion_aliases == {}


def test_decode_server_skips_emotion_aliases_it_cannot_use() -> None:
    wire = msgpack.unpackb(encode_server(EMOTION_WELCOME, binary=True))
    wire["capabilities"]["emotion_aliases"] |= {
        "glad": "joyful",  # names no listed emotion
        " ": "happy",  # blank
        "mad": 3,  # not a string
    }
    wire["capabilities"]["emotion_aliases"][b"joy"] = "happy"  # a bin key, not a string
    welcome = decode_server(msgpack.packb(wire))
    assert isinstance(welcome, Welcome)
    assert welcome.capabilities.emotion_aliases == {"开心": "happy", "Furious": "angry"}


def test_started_from_a_server_before_v13_has_no_echo() -> None:
    started = decode_server('{"type":"started","id":"u1","stream":7,"queue_ms":1.5}')
    assert started == Started(uid("u1"), StreamId(7), 1.5)
    assert (started.emotion, started.intensity) == (None, None)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("intensity", 1.5, "intensity"), ("intensity", "0.5", "intensity"), ("emotion", 3, "emotion")],
)
def test_decode_server_rejects_a_bad_started_echo(field, value, match) -> None:
    wire = {"type": "started", "id": "u1", "stream": 7, "queue_ms": 1.5, field: value}
    with pytest.raises(InvalidMessage, match=match):
        decode_server(raw(wire))


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("capabilities", "emotion_aliases"), ["开心"], "a map"),
        (("capabilities", "formats"), ["opus"], "no known format"),
        (("capabilities", "formats"), "s16le", "a list"),
        (("capabilities", "emotions"), [1], "list of strings"),
        (("capabilities",), None, "a map"),
        ((), None, "audio is required"),
    ],
)
def test_decode_server_rejects_bad_welcome(path, value, match) -> None:
    wire = json.loads(encode_server(SERVER_MESSAGES[0], binary=False))
    if path:
        target = wire
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    else:
        del wire["audio"]
    with pytest.raises(InvalidMessage, match=match):
        decode_server(json.dumps(wire))


def test_decode_server_rejects_marks_with_non_map_words() -> None:
    wire = {"type": "marks", "id": "u", "stream": 1, "offset": 0, "words": [1], "phonemes": []}
    with pytest.raises(InvalidMessage, match="list of maps"):
        decode_server(raw(wire))


@ENCODINGS
def test_marks_carry_visemes_as_a_list_of_v_start_end_maps(binary) -> None:
    marks = Marks(uid("u"), StreamId(1), 50, visemes=(Viseme("sil", 50, 60), Viseme("PP", 60, 90)))
    data = encode_server(marks, binary)
    wire = msgpack.unpackb(data) if binary else json.loads(data)
    assert wire == {
        "type": "marks",
        "id": "u",
        "stream": 1,
        "offset": 50,
        "words": [],
        "phonemes": [],
        "visemes": [{"v": "sil", "start": 50, "end": 60}, {"v": "PP", "start": 60, "end": 90}],
    }


def test_marks_from_a_server_before_v15_have_no_visemes() -> None:
    wire = {"type": "marks", "id": "u", "stream": 1, "offset": 0, "words": [], "phonemes": []}
    marks = decode_server(raw(wire | {"phonemes": [{"p": "h", "start": 0, "end": 5}]}))
    assert marks == Marks(uid("u"), StreamId(1), 0, phonemes=(Phoneme("h", 0, 5),))
    assert isinstance(marks, Marks) and marks.visemes == ()


@pytest.mark.parametrize(
    ("visemes", "match"),
    [
        ([1], "list of maps"),
        ("PP", "a list"),
        ([{"v": "PP", "start": 0}], "end is required"),
        ([{"v": 3, "start": 0, "end": 1}], "v"),
        ([{"v": "PP", "start": -1, "end": 1}], "start"),
    ],
)
def test_decode_server_rejects_marks_with_bad_visemes(visemes, match) -> None:
    wire = {"type": "marks", "id": "u", "stream": 1, "offset": 0, "words": [], "phonemes": []}
    with pytest.raises(InvalidMessage, match=match):
        decode_server(raw(wire | {"visemes": visemes}))
