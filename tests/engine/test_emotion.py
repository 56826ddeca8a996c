"""Emotion vocabulary and prosody composition (pure)."""

from __future__ import annotations

import pytest

from voxlive.engine.emotion import EMOTIONS, prosody, resolve

REQUIRED = ["neutral", "happy", "excited", "sad", "angry", "calm", "surprised", "fearful"]


def test_the_vocabulary_has_every_required_emotion() -> None:
    assert set(REQUIRED) <= set(EMOTIONS)


@pytest.mark.parametrize(
    ("tag", "emotion"),
    [("开心", "happy"), ("高兴", "happy"), ("激动", "excited"), ("兴奋", "excited"),
     ("难过", "sad"), ("伤心", "sad"), ("生气", "angry"), ("愤怒", "angry"),
     ("平静", "calm"), ("惊讶", "surprised"), ("害怕", "fearful"), ("Furious", "angry"),
     (" HAPPY ", "happy")],
)  # fmt: skip
def test_synonyms_in_english_and_chinese_map_to_the_vocabulary(tag, emotion) -> None:
    assert resolve(tag) == emotion


def test_an_unknown_tag_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="supported: neutral, happy"):
        resolve("bored")


def test_neutral_without_pitch_or_volume_needs_no_world_pass() -> None:
    for intensity in (0.0, 0.7, 1.0):
        assert prosody("neutral", intensity).is_neutral
    assert not prosody("neutral", pitch_st=1.0).is_neutral


def test_any_emotion_at_intensity_zero_is_neutral() -> None:
    for name in EMOTIONS:
        p = prosody(name, 0.0)
        assert p.is_neutral and p.length_scale == 1.0


@pytest.mark.parametrize("name", [n for n in EMOTIONS if n != "neutral"])
def test_deviations_grow_with_intensity(name) -> None:
    weak, strong = prosody(name, 0.3), prosody(name, 1.0)
    for field in ("f0_shift_st", "gain_db", "tilt_db_per_octave"):
        assert abs(getattr(strong, field)) >= abs(getattr(weak, field))
    assert abs(strong.length_scale - 1) >= abs(weak.length_scale - 1)
    assert abs(strong.f0_range - 1) >= abs(weak.f0_range - 1)


def test_directions_follow_the_published_rules() -> None:
    sad, excited, angry, surprised = (
        prosody(n, 1.0) for n in ("sad", "excited", "angry", "surprised")
    )
    assert sad.length_scale > 1 and sad.f0_shift_st < 0 and sad.f0_range < 1 and sad.gain_db < 0
    assert excited.length_scale < 1 and excited.f0_shift_st > 0 and excited.f0_range > 1
    assert angry.gain_db > excited.gain_db - 1 and angry.tilt_db_per_octave > 0
    assert surprised.end_contour_st > 0 and sad.end_contour_st < 0


def test_explicit_controls_compose_with_the_emotion() -> None:
    base = prosody("happy", 0.5)
    more = prosody("happy", 0.5, speed=1.2, pitch_st=2.0, volume_db=-3.0)
    assert more.length_scale == pytest.approx(base.length_scale / 1.2)
    assert more.f0_shift_st == pytest.approx(base.f0_shift_st + 2.0)
    assert more.gain_db == pytest.approx(base.gain_db - 3.0)


@pytest.mark.parametrize(
    "kwargs", [{"intensity": 1.5}, {"speed": 9.0}, {"pitch_st": 20.0}, {"volume_db": 40.0}]
)
def test_out_of_range_controls_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        prosody("happy", **kwargs)
