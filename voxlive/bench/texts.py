"""Fixed benchmark sentences (chat-like, varied length). No heavy imports here."""

from __future__ import annotations

__all__ = ["BENCH_SENTENCES", "FIRST_AUDIO_SENTENCE"]

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
