"""Benchmark sentences (chat-like, varied length) and the reader of text files of
lines (``-f`` / ``--texts``) that the commands share. No heavy imports here."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BENCH_SENTENCES", "FIRST_AUDIO_SENTENCE", "load_texts", "read_lines"]


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped, in order.

    Raises:
        ValueError: the file cannot be read or is not UTF-8 (the message names it).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


BENCH_SENTENCES = [
    "Welcome back to the stream, everyone, it is great to see you all here again.",
    "Thanks for the follow!",
    "The dragon sleeps in the cave beyond the northern mountains, guarding its gold.",
    "Could you tell me which way the train station is?",
    "We finally beat the boss after three hours of trying, and the chat went wild.",
    "Don't forget to drink some water.",
    "In the morning the market opens early, and the bakers sell fresh bread until noon.",
    "That was a really close game, good job team.",
    "Please keep the chat friendly and respectful to everyone.",
    "The weather tomorrow looks sunny with a light breeze from the west.",
    "I have a quest for you, traveler, if you are brave enough to accept it.",
    "Let me read the next question from the chat.",
    "Our next stop is the old library at the end of the street.",
    "Yes, absolutely!",
    "If you enjoyed the stream, hit the like button and share it with a friend.",
    "The guards will close the city gates at sunset, so hurry.",
]
FIRST_AUDIO_SENTENCE = (
    "Thank you so much for the gifted subscriptions, everyone, "
    "let's keep going and finish this level together tonight."
)  # 20 words


def load_texts(path: Path | None) -> list[str]:
    """The sentences of ``--texts FILE``, or the built-in ones without a file.

    Raises:
        ValueError: the file cannot be read or has no non-empty line.
    """
    if path is None:
        return list(BENCH_SENTENCES)
    texts = read_lines(path)
    if not texts:
        raise ValueError(f"{path}: no non-empty lines")
    return texts
