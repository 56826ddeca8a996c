"""One sentence splitter for whole texts and streamed text (engine.sentences)."""

from __future__ import annotations

import pytest

from voxlive.engine.sentences import split_complete, split_sentences


def test_a_whole_text_splits_after_terminators_followed_by_space() -> None:
    text = 'One. Two is here! "Three?" she asked. Four'
    assert split_sentences(text) == ["One.", "Two is here!", '"Three?" she asked.', "Four"]


@pytest.mark.parametrize("text", ["Wait... then go.", "It is e.g. this one.", "No end"])
def test_ellipses_lowercase_continuations_and_no_terminator_do_not_split(text) -> None:
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Hi. How", ("Hi.", "How")),
        ("Hi.", ("", "Hi.")),  # the next piece may continue it ("Hi.5")
        ("Hi. ", ("Hi.", "")),
        ("Hi. how are", ("", "Hi. how are")),  # as the whole text would be cut
        ("你好。", ("你好。", "")),  # a CJK terminator needs no space
        ("One. Two. Thr", ("One. Two.", "Thr")),
    ],
)
def test_streamed_text_releases_only_complete_sentences(text, want) -> None:
    assert split_complete(text) == want


def test_streamed_pieces_are_cut_where_the_whole_text_is() -> None:
    pieces = ["Hello the", "re, how are", " you today? I am fi", "ne, thanks", " for asking."]
    out, rest = [], ""
    for piece in pieces:
        ready, rest = split_complete(rest + piece)
        out += split_sentences(ready)
    out += split_sentences(rest)
    assert out == split_sentences("".join(pieces))
