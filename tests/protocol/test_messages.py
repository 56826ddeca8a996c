"""Message values: configuration checks and the guards behind exhaustive matches."""

from __future__ import annotations

import pytest

from voxlive.protocol import Capabilities, Limits, encode_client, encode_server
from voxlive.protocol.fields import show


@pytest.mark.parametrize("field", ["max_message_bytes", "max_text_chars", "max_inflight"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_limits_must_be_positive_integers(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


def test_pending_text_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pending_text_chars"):
        Limits(max_pending_text_chars=0)


@pytest.mark.parametrize("rate", [7999, 48001])
def test_capabilities_default_sample_rate_must_be_in_range(rate) -> None:
    with pytest.raises(ValueError, match="default_sample_rate"):
        Capabilities(default_sample_rate=rate)


@pytest.mark.parametrize("formats", [(), ("s16le", "opus")])
def test_capabilities_formats_must_be_known_and_non_empty(formats) -> None:
    with pytest.raises(ValueError, match="formats"):
        Capabilities(formats=formats)


EMOTIONS = ("neutral", "happy", "angry")


@pytest.mark.parametrize(
    ("aliases", "match"),
    [
        ({"glad": "joyful"}, "not in emotions"),
        ({"mad": "Angry"}, "not in emotions"),  # values are canonical names, exactly
        ({" ": "happy"}, "non-blank"),
        ({"": "happy"}, "non-blank"),
        ({3: "happy"}, "non-blank string"),
    ],
)
def test_capabilities_emotion_aliases_must_name_listed_emotions(aliases, match) -> None:
    with pytest.raises(ValueError, match=match):
        Capabilities(emotions=EMOTIONS, emotion_aliases=aliases)


def test_capabilities_keep_a_read_only_copy_of_the_aliases() -> None:
    aliases = {"开心": "happy"}
    caps = Capabilities(emotions=EMOTIONS, emotion_aliases=aliases)
    aliases["生气"] = "angry"
    assert caps.emotion_aliases == {"开心": "happy"}
    with pytest.raises(TypeError):
        caps.emotion_aliases["生气"] = "angry"  # type: ignore[index]
    assert caps == Capabilities(emotions=EMOTIONS, emotion_aliases={"开心": "happy"})


@pytest.mark.parametrize(
    ("emotion", "canonical"),
    [
        ("happy", "happy"),
        (" Happy\n", "happy"),
        ("ANGRY", "angry"),
        ("开心", "happy"),
        (" 开心 ", "happy"),
        ("furious", "angry"),
        ("FURIOUS", "angry"),
        ("Neutral", "neutral"),  # a canonical name wins over the alias spelled the same
        ("joyful", None),
        ("", None),
        ("happy sad", None),
    ],
)
def test_resolve_emotion_ignores_case_and_surrounding_space(emotion, canonical) -> None:
    aliases = {"开心": "happy", "Furious": "angry", "neutral": "happy"}
    caps = Capabilities(emotions=EMOTIONS, emotion_aliases=aliases)
    assert caps.resolve_emotion(emotion) == canonical


def test_resolve_emotion_without_emotions_resolves_nothing() -> None:
    assert Capabilities().resolve_emotion("happy") is None


def test_encoders_refuse_objects_that_are_not_messages() -> None:
    with pytest.raises(AssertionError):
        encode_client(object())  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        encode_server(object(), binary=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("speed", "'speed'"),
        ("x" * 40, "'" + "x" * 32 + "'..."),
        (b"id", "b'id'"),
        ("\ud800", "'\\ud800'"),
        (5, "a value of type int"),
        ([[]], "a value of type list"),
    ],
)
def test_peer_values_are_shown_short_and_escaped(value, shown) -> None:
    assert show(value) == shown
