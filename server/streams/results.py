"""Result streams, one per gateway, and the deduplication of retried chunks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from .base import (
    BLOCK_SLICE_MS,
    _after,
    _check_client,
    _reachable,
    _text,
    _user_fields,
    logger,
    results_key,
)


@dataclass(frozen=True, slots=True)
class Result:
    """One chunk of a sentence's audio (or its final status), as a gateway reads it."""

    utterance: str
    sentence: int
    chunk: int
    """Index within the sentence, from 0; the same span in every attempt."""
    attempt: int
    """The work item's ``attempt`` that made it."""
    last: bool
    """The sentence's final chunk."""
    fields: dict[str, bytes]
    """Payload: :data:`AUDIO`, :data:`MARKS`, a status, as the worker put it."""


class ResultWriter:
    """Workers' side of the result streams.

    Args:
        redis: A client from :func:`connect`.
        maxlen: ``MAXLEN ~`` of each result stream (a gateway that far behind has lost).
        ttl_s: A result stream expires this long after its last write (dead gateways).
    """

    def __init__(self, redis: aioredis.Redis, *, maxlen: int = 10_000, ttl_s: int = 3600) -> None:
        _check_client(redis)
        self._redis = redis
        self.maxlen = maxlen
        self.ttl_s = ttl_s

    async def send(
        self,
        gateway: str,
        utterance: str,
        sentence: int,
        chunk_index: int,
        fields: Mapping[str, bytes | str],
        *,
        last: bool = False,
        attempt: int = 1,
    ) -> str:
        """Append a chunk to ``gateway``'s results; returns its entry id.

        Raises:
            ValueError: A field name starting with ``_`` (reserved).
            StreamsUnavailable: Redis cannot be reached.
        """
        payload: dict[Any, Any] = _user_fields(fields)
        payload |= {
            "_u": utterance,
            "_s": str(sentence),
            "_c": str(chunk_index),
            "_a": str(attempt),
            "_l": "1" if last else "0",
        }
        key = results_key(gateway)
        async with _reachable("send"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, payload, maxlen=self.maxlen, approximate=True)
            pipe.expire(key, self.ttl_s)
            entry, _ = await pipe.execute()
        return _text(entry)


class Dedup:
    """Which results a gateway passes on: each chunk once, in order, per sentence.

    The rule: per (utterance, sentence), the **highest attempt seen so far owns the
    sentence** (a higher attempt exists only because the lower one was reclaimed as
    dead); a result is passed on iff it comes from the owning attempt and its chunk is
    the next one not yet passed on, or later. So a retry's chunks 0..k, already passed on
    from the dead attempt, are dropped; the dead attempt's late chunks are dropped once
    the retry has been seen; and nothing is passed on for a sentence after its ``last``.
    Requires chunk ``i`` to cover the same span in every attempt (deterministic chunking).
    A gap (chunks lost to trimming) is passed on with a warning rather than stalling.

    Memory: :meth:`forget` drops an utterance (remembered as finished, among the last
    ``forgotten`` ones, so stragglers are dropped); at most ``max_utterances`` are kept,
    the least recently seen forgotten first.
    """

    def __init__(self, max_utterances: int = 10_000, forgotten: int = 4096) -> None:
        self.max_utterances = max_utterances
        self.forgotten = forgotten
        self._live: OrderedDict[str, dict[int, list[int]]] = OrderedDict()
        """utterance → sentence → [owning attempt, next chunk, done]."""
        self._gone: OrderedDict[str, None] = OrderedDict()
        self.dropped = 0
        """Results dropped so far (duplicates and stragglers)."""

    def admit(self, result: Result) -> bool:
        """Whether to pass ``result`` on (and note that it was)."""
        ok = self._admit(result)
        self.dropped += not ok
        return ok

    def forget(self, utterance: str) -> None:
        """The utterance is finished or cancelled: drop its state and its stragglers."""
        self._live.pop(utterance, None)
        self._gone[utterance] = None
        self._gone.move_to_end(utterance)
        while len(self._gone) > self.forgotten:
            self._gone.popitem(last=False)

    def _admit(self, r: Result) -> bool:
        if r.utterance in self._gone:
            return False
        sentences = self._live.setdefault(r.utterance, {})
        self._live.move_to_end(r.utterance)
        if len(self._live) > self.max_utterances:
            oldest = next(iter(self._live))
            logger.warning("dedup state full: forgetting utterance %s", oldest)
            self.forget(oldest)
        state = sentences.setdefault(r.sentence, [r.attempt, 0, 0])
        attempt, next_chunk, done = state
        if done or r.attempt < attempt or r.chunk < next_chunk:
            state[0] = max(attempt, r.attempt)
            return False
        if r.chunk > next_chunk:
            logger.warning(
                "%s/%d: chunks %d..%d lost", r.utterance, r.sentence, next_chunk, r.chunk
            )
        state[:] = [r.attempt, r.chunk + 1, int(r.last)]
        return True


class ResultReader:
    """A gateway's side of its result stream: ``async for result in reader``.

    Reads from the start of the stream (results written before the reader started are
    not missed), trims what it has read at its next read, off the results' path (XTRIM
    MINID: the socket that wanted them is in this process, so nothing is left to re-read
    them for), and passes results through
    :class:`Dedup`.

    Raises (from iteration and :meth:`read`):
        StreamsUnavailable: Redis cannot be reached.
    """

    def __init__(
        self, redis: aioredis.Redis, gateway: str, *, count: int = 256, dedup: Dedup | None = None
    ) -> None:
        _check_client(redis)
        self._redis = redis
        self.key = results_key(gateway)
        self.count = count
        self.dedup = Dedup() if dedup is None else dedup
        self._last = "0-0"
        self._untrimmed = False

    def forget(self, utterance: str) -> None:
        """The utterance is finished or cancelled (see :meth:`Dedup.forget`)."""
        self.dedup.forget(utterance)

    async def read(self, block_ms: int = 0) -> list[Result]:
        """The next results, deduplicated; waits up to ``block_ms`` (0: not at all) for some.

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        block = min(block_ms, BLOCK_SLICE_MS) if block_ms > 0 else None
        async with _reachable("read"):
            if self._untrimmed:  # what the last read returned: trimmed now, off its path
                await self._redis.xtrim(self.key, minid=_after(self._last), approximate=False)
                self._untrimmed = False
            reply: Any = await self._redis.xread(
                {self.key: self._last}, count=self.count, block=block
            )
            if not reply:
                return []
            entries = reply[0][1]
            self._last = _text(entries[-1][0])
            self._untrimmed = True
        results = (_result(_text(e), f) for e, f in entries)
        return [r for r in results if r is not None and self.dedup.admit(r)]

    def __aiter__(self) -> AsyncIterator[Result]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Result]:
        while True:
            for result in await self.read(block_ms=BLOCK_SLICE_MS):
                yield result


def _result(entry: str, raw: dict[bytes, bytes]) -> Result | None:
    fields = {_text(k): v for k, v in raw.items()}
    try:
        return Result(
            utterance=fields.pop("_u").decode(),
            sentence=int(fields.pop("_s")),
            chunk=int(fields.pop("_c")),
            attempt=int(fields.pop("_a")),
            last=fields.pop("_l") == b"1",
            fields=fields,
        )
    except (KeyError, ValueError):
        logger.warning("result %s is malformed: dropped", entry)
        return None
