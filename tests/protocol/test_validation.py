"""Field validation of client messages: types, ranges, ids, unknown fields (SPEC.md §4)."""

from __future__ import annotations

import json

import msgpack  # type: ignore[import-untyped]
import pytest

from voxlive.protocol import (
    Append,
    AudioSpec,
    Cancel,
    Flush,
    Hello,
    InvalidMessage,
    Limits,
    MalformedMessage,
    Speak,
    SpeakOptions,
    UnsupportedVersion,
    decode_client,
)

from .helpers import raw, uid

BASE: dict[str, dict[str, object]] = {
    "hello": {"type": "hello", "version": 1},
    "speak": {"type": "speak", "id": "u1", "text": "hi"},
    "append": {"type": "append", "id": "u1", "text": "hi"},
    "flush": {"type": "flush", "id": "u1"},
    "end": {"type": "end", "id": "u1"},
    "cancel": {"type": "cancel"},
}

BAD_SPEAK_OPTIONS = [
    ("speed", 0.24),
    ("speed", 4.01),
    ("speed", "1"),
    ("speed", True),
    ("speed", None),
    ("speed", float("nan")),
    ("speed", float("inf")),
    ("speed", float("-inf")),
    ("speed", 2**64 - 1),
    ("intensity", -0.1),
    ("intensity", 1.1),
    ("intensity", None),
    ("pitch", -12.5),
    ("pitch", 12.5),
    ("volume", -30.5),
    ("volume", 12.5),
    ("priority", "urgent"),
    ("priority", 1),
    ("priority", None),
    ("deadline_ms", 0),
    ("deadline_ms", 600_001),
    ("deadline_ms", 1.5),
    ("deadline_ms", True),
    ("timestamps", 1),
    ("timestamps", "true"),
    ("timestamps", None),
    ("seed", -1),
    ("seed", 2**63),
    ("seed", 1.0),
    ("seed", False),
    ("cache", 0),
    ("cache", "false"),
    ("cache", None),
    ("voice", 5),
    ("voice", "v" * 129),
    ("emotion", ["happy"]),
    ("emotion", {"name": "happy"}),
]

GOOD_SPEAK_OPTIONS = [
    ("speed", 0.25),
    ("speed", 4),
    ("speed", 1),
    ("intensity", 0),
    ("intensity", 1.0),
    ("pitch", -12),
    ("volume", 12),
    ("priority", "bulk"),
    ("deadline_ms", 1),
    ("deadline_ms", 600_000),
    ("deadline_ms", None),
    ("seed", 0),
    ("seed", 2**63 - 1),
    ("seed", None),
    ("cache", False),
    ("cache", True),
    ("voice", None),
    ("emotion", None),
]

BAD_IDS = ["", "x" * 65, "a b", "é", "a\n", "a/b", 5, None, True, b"u1", ["u1"]]


def decode(wire: dict[str, object], binary: bool = True):
    return decode_client(raw(wire, binary), Limits())


def assert_invalid(wire: dict[str, object], code: str = "invalid_message", id: str | None = "u1"):
    with pytest.raises(InvalidMessage) as info:
        decode(wire)
    assert (info.value.code, info.value.id) == (code, id)
    assert info.value.close_code is None
    return info.value


@pytest.mark.parametrize(("name", "value"), BAD_SPEAK_OPTIONS)
def test_speak_rejects_ill_typed_or_out_of_range_option(name, value) -> None:
    error = assert_invalid(BASE["speak"] | {name: value})
    assert f"speak.{name}" in error.message


@pytest.mark.parametrize(("name", "value"), BAD_SPEAK_OPTIONS)
def test_first_append_rejects_ill_typed_or_out_of_range_option(name, value) -> None:
    assert_invalid(BASE["append"] | {name: value})


@pytest.mark.parametrize(("name", "value"), GOOD_SPEAK_OPTIONS)
def test_speak_accepts_option_at_its_bounds(name, value) -> None:
    message = decode(BASE["speak"] | {name: value})
    assert isinstance(message, Speak)
    assert getattr(message.options, name) == value or value is None


def test_integer_number_options_become_floats() -> None:
    message = decode(BASE["speak"] | {"speed": 2, "pitch": 0})
    assert isinstance(message, Speak)
    assert type(message.options.speed) is float
    assert type(message.options.pitch) is float


def test_huge_json_number_is_rejected_without_overflow() -> None:
    with pytest.raises(InvalidMessage):
        decode_client('{"type":"speak","id":"u1","text":"x","speed":1e400}', Limits())
    with pytest.raises(InvalidMessage):
        decode_client('{"type":"speak","id":"u1","text":"x","speed":' + "9" * 400 + "}", Limits())


@pytest.mark.parametrize("kind", ["speak", "append", "flush", "end"])
@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
def test_bad_id_is_invalid_and_reported_without_id(kind, bad_id) -> None:
    assert_invalid(BASE[kind] | {"id": bad_id}, id=None)


@pytest.mark.parametrize("kind", ["speak", "append", "flush", "end"])
def test_missing_id_is_invalid(kind) -> None:
    wire = dict(BASE[kind])
    del wire["id"]
    error = assert_invalid(wire, id=None)
    assert "required" in error.message


def test_id_may_use_every_allowed_character() -> None:
    id = "AZaz09._:-" + "x" * 54
    assert decode(BASE["flush"] | {"id": id}) == Flush(uid(id))
    assert decode(BASE["cancel"] | {"id": id}) == Cancel(uid(id))


@pytest.mark.parametrize("bad_id", [b for b in BAD_IDS if b is not None], ids=repr)
def test_cancel_with_bad_id_is_invalid(bad_id) -> None:
    assert_invalid(BASE["cancel"] | {"id": bad_id}, id=None)


def test_cancel_with_null_id_cancels_everything() -> None:
    assert decode(BASE["cancel"] | {"id": None}) == Cancel()


@pytest.mark.parametrize("kind", list(BASE))
def test_unknown_field_is_invalid(kind) -> None:
    with pytest.raises(InvalidMessage, match="unknown field.*'sped'"):
        decode(BASE[kind] | {"sped": 2})


def test_unknown_field_report_escapes_and_truncates_the_name() -> None:
    with pytest.raises(InvalidMessage) as info:
        decode_client('{"type":"cancel","\\ud800' + "z" * 100 + '":1}', Limits())
    assert "\\ud800" in info.value.message
    assert len(info.value.message) < 120


def test_unknown_field_with_bytes_key_is_invalid() -> None:
    data = msgpack.packb({"type": "cancel", b"id": "x"}, use_bin_type=True)
    with pytest.raises(InvalidMessage, match="unknown field"):
        decode_client(data, Limits())


@pytest.mark.parametrize("kind", ["flush", "end", "cancel"])
def test_text_is_not_a_field_of_flush_end_or_cancel(kind) -> None:
    assert_invalid(BASE[kind] | {"id": "u1", "text": "x"})


# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["speak", "append"])
def test_missing_text_is_invalid(kind) -> None:
    wire = dict(BASE[kind])
    del wire["text"]
    assert_invalid(wire)


@pytest.mark.parametrize("kind", ["speak", "append"])
@pytest.mark.parametrize("text", [5, None, b"hi", ["hi"]], ids=repr)
def test_non_string_text_is_invalid(kind, text) -> None:
    assert_invalid(BASE[kind] | {"text": text})


@pytest.mark.parametrize("kind", ["speak", "append"])
def test_empty_text_is_empty_text(kind) -> None:
    assert_invalid(BASE[kind] | {"text": ""}, code="empty_text")


def test_whitespace_speak_is_empty_text() -> None:
    assert_invalid(BASE["speak"] | {"text": " \n\t"}, code="empty_text")


def test_whitespace_append_is_a_valid_piece() -> None:
    assert decode(BASE["append"] | {"text": " "}) == Append(uid("u1"), " ")


@pytest.mark.parametrize("kind", ["speak", "append"])
def test_text_over_max_text_chars_is_text_too_long(kind) -> None:
    assert_invalid(BASE[kind] | {"text": "a" * 5001}, code="text_too_long")


def test_text_limit_counts_code_points_not_bytes() -> None:
    assert decode(BASE["speak"] | {"text": "🎉" * 5000}) == Speak(uid("u1"), "🎉" * 5000)


def test_text_with_lone_surrogate_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="speak.text must be a string"):
        decode_client('{"type":"speak","id":"u1","text":"a\\ud800"}', Limits())


def test_msgpack_text_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        decode_client(b"\x83\xa4type\xa5speak\xa2id\xa2u1\xa4text\xa2\xff\xfe", Limits())


# --- append options ------------------------------------------------------------------------


def test_append_without_option_fields_has_no_options() -> None:
    assert decode(BASE["append"]) == Append(uid("u1"), "hi", None)


def test_append_with_one_option_field_has_all_options() -> None:
    assert decode(BASE["append"] | {"speed": 2}) == Append(uid("u1"), "hi", SpeakOptions(speed=2.0))


def test_append_with_explicit_null_option_still_has_options() -> None:
    assert decode(BASE["append"] | {"voice": None}) == Append(uid("u1"), "hi", SpeakOptions())


# --- hello ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 99, 2**32 - 1])
def test_unknown_version_is_unsupported(version) -> None:
    with pytest.raises(UnsupportedVersion, match="supported: 1"):
        decode(BASE["hello"] | {"version": version})


def test_version_is_checked_before_unknown_fields() -> None:
    with pytest.raises(UnsupportedVersion):
        decode(BASE["hello"] | {"version": 2, "features": ["visemes"]})


@pytest.mark.parametrize("version", ["1", 1.0, True, None, -1, 2**32])
def test_ill_typed_version_is_invalid(version) -> None:
    assert_invalid(BASE["hello"] | {"version": version}, id=None)


def test_hello_without_version_is_invalid() -> None:
    assert_invalid({"type": "hello"}, id=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token", 5),
        ("token", "t" * 513),
        ("audio", "s16le"),
        ("audio", None),
        ("audio", {"sample_rate": 7999}),
        ("audio", {"sample_rate": 48001}),
        ("audio", {"sample_rate": 22050.0}),
        ("audio", {"sample_rate": True}),
        ("audio", {"format": "mp3"}),
        ("audio", {"format": None}),
        ("audio", {"frame_ms": 9}),
        ("audio", {"frame_ms": 201}),
        ("audio", {"channels": 1}),
    ],
)
def test_hello_rejects_bad_field(field, value) -> None:
    assert_invalid(BASE["hello"] | {field: value}, id=None)


@pytest.mark.parametrize(
    ("audio", "spec"),
    [
        ({}, AudioSpec()),
        ({"sample_rate": None}, AudioSpec()),
        ({"sample_rate": 8000, "frame_ms": 10}, AudioSpec(8000, "s16le", 10)),
        (
            {"sample_rate": 48000, "format": "f32le", "frame_ms": 200},
            AudioSpec(48000, "f32le", 200),
        ),
    ],
)
def test_hello_accepts_audio_at_its_bounds(audio, spec) -> None:
    assert decode(BASE["hello"] | {"audio": audio}) == Hello(1, None, spec)


def test_hello_accepts_token_of_512_chars_and_json_encoding() -> None:
    wire = BASE["hello"] | {"token": "t" * 512}
    assert decode_client(json.dumps(wire), Limits()) == Hello(1, "t" * 512)
