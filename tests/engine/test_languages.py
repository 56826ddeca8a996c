"""Language runs: mixed Chinese/English chat goes to the right voice, nothing lost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxlive.engine.languages import Run, split_runs


def squeeze(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("我有3个苹果", [Run("zh", "我有3个苹果")]),
        ("Hello world, how are you?", [Run("en", "Hello world, how are you?")]),
        ("今天天气很好。", [Run("zh", "今天天气很好。")]),
        (
            "Thank you 谢谢 for the gift!",
            [Run("en", "Thank you"), Run("zh", "谢谢"), Run("en", "for the gift!")],
        ),
        ("I paid 50 元", [Run("en", "I paid"), Run("zh", "50 元")]),
        ("GG了", [Run("zh", "GG了")]),
        ("这个OK吗", [Run("zh", "这个OK吗")]),
        ("up主来了", [Run("zh", "up主来了")]),
        ("BGM好听", [Run("zh", "BGM好听")]),
        ("yyds主播", [Run("zh", "yyds主播")]),
        ("u1s1真好", [Run("zh", "u1s1真好")]),
        ("跑了5km", [Run("zh", "跑了5km")]),
        (
            "这个boss好难",
            [Run("zh", "这个"), Run("en", "boss"), Run("zh", "好难")],
        ),
        (
            "今天的stream太棒了，thank you so much everybody",
            [
                Run("zh", "今天的"),
                Run("en", "stream"),
                Run("zh", "太棒了，"),
                Run("en", "thank you so much everybody"),
            ],
        ),
        ("hi 你好", [Run("en", "hi"), Run("zh", "你好")]),
        ("OK", [Run("en", "OK")]),
    ],
)
def test_text_is_cut_into_language_runs(text: str, runs: list[Run]) -> None:
    assert split_runs(text) == runs


def test_text_without_letters_or_han_takes_the_default_language() -> None:
    assert split_runs("666") == [Run("en", "666")]
    assert split_runs("666", default="zh") == [Run("zh", "666")]


def test_blank_text_has_no_runs() -> None:
    assert split_runs("") == []
    assert split_runs(" \n\t") == []


MIXED = st.text(
    alphabet=st.one_of(
        st.sampled_from("谢谢你好主播今天，。！"),
        st.sampled_from("abcGOKxyz'"),
        st.sampled_from("0123456789 \n.,!?$¥%😂-"),
        st.characters(),
    ),
    max_size=60,
)


@given(MIXED)
def test_runs_give_the_text_back_up_to_whitespace(text: str) -> None:
    runs = split_runs(text)
    assert squeeze("".join(r.text for r in runs)) == squeeze(text)
    assert all(r.text and r.text == r.text.strip() for r in runs)
    assert all(a.lang != b.lang for a, b in zip(runs, runs[1:], strict=False))


def test_accented_and_full_width_words_are_judged_by_their_letters() -> None:
    assert split_runs("我爱café") == [Run("zh", "我爱"), Run("en", "café")]
    assert split_runs("ｈｅｌｌｏ你好") == [Run("en", "ｈｅｌｌｏ"), Run("zh", "你好")]
