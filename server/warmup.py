"""Warming an engine up before a server takes connections.

A fresh process builds a convolution kernel for every new batch shape, so its first
minute under load runs well below its speed (``docs/performance.md``, "Server").
Speaking a few sentences of each voice's language in the batches a live load starts
with (one, two and three sentences at a time) builds most of them before anyone
listens. Only the engine interface is used: any engine can be warmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final

from voxlive.engine.interface import Controls, Engine, FinalChunk, SentenceRequest, Stream

__all__ = ["WARM_UP_TEXTS", "warm_up"]

logger = logging.getLogger(__name__)

WARM_UP_TEXTS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "Hi!",
        "Thanks for the follow, welcome in.",
        "Could you tell me which way the old market is from here?",
        "We finally beat the boss after three hours of trying, and the whole chat went wild "
        "for a good minute.",
        "In the morning the bakers open early, the streets fill with people, and by noon "
        "every stall in the square has sold out of fresh bread and warm pastries.",
    ),
    "zh": (
        "你好!",
        "谢谢大家的关注,欢迎来到直播间。",
        "今天我们一起把这一关打完,然后再看看弹幕里大家的问题。",
    ),
}
"""Sentences by language subtag, short to long (first chunks, later chunks, last chunks)."""
BATCHES: Final = (1, 2, 3)


class _Ignore:
    def audio(self, chunk: FinalChunk) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass


def warm_up(engine: Engine) -> float:
    """Speak :data:`WARM_UP_TEXTS` through ``engine`` in batches of 1, 2 and 3; returns seconds.

    Runs on the caller's thread, which must be the one the engine will run on. A voice
    whose language has no sentences here is skipped.
    """
    start = time.perf_counter()
    for size in BATCHES:
        requests = _requests(engine)
        for i in range(0, len(requests), size):
            _run(engine, engine.begin(requests[i : i + size]))
    seconds = time.perf_counter() - start
    logger.info("engine warmed up in %.1f s", seconds)
    return seconds


def _requests(engine: Engine) -> list[SentenceRequest]:
    """Every warm-up sentence, each text under a performance of its own."""
    requests: list[SentenceRequest] = []
    for voice in engine.voices:
        for text in WARM_UP_TEXTS.get(voice.language.split("-")[0].lower(), ()):
            prepared = engine.prepare(text, voice.name)
            performance = engine.perform(Controls(seed=0), _Ignore())
            sentences = prepared.sentences
            requests += [SentenceRequest(performance, i, s) for i, s in enumerate(sentences)]
            performance.end(len(sentences))
    return requests


def _run(engine: Engine, streams: Sequence[Stream]) -> None:
    while not all(s.done for s in streams):
        for _ in engine.step([s for s in streams if not s.done]):
            pass
