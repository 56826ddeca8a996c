"""The cancel feed every worker reads."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from .base import (
    BLOCK_SLICE_MS,
    CANCELS,
    _check_client,
    _reachable,
    _text,
)


class CancelFeed:
    """Cancelled utterances: gateways :meth:`cancel`, workers :meth:`poll` and check.

    Every worker reads the whole ``voxlive:cancel`` stream (no group), from
    ``horizon_s`` back when it starts, so one that starts (or reclaims) late still
    knows; entries older than ``horizon_s`` are trimmed (``MINID ~``) and forgotten.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        horizon_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_client(redis)
        self._redis = redis
        self.horizon_s = horizon_s
        self._clock = clock
        self._last = f"{int((clock() - horizon_s) * 1000)}-0"
        self._cancelled: OrderedDict[str, int] = OrderedDict()
        """utterance → ms of its cancel entry, oldest first."""

    async def cancel(self, utterance: str) -> None:
        """Tell every worker to stop ``utterance``'s sentences.

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        cutoff = f"{int((self._clock() - self.horizon_s) * 1000)}-0"
        async with _reachable("cancel"):
            await self._redis.xadd(CANCELS, {"u": utterance}, minid=cutoff, approximate=True)

    async def poll(self, block_ms: int = 0) -> list[str]:
        """Read the cancels sent since the last poll (one round trip when there are few);
        returns the utterances newly cancelled. ``block_ms``: wait up to this long for
        one when there are none (at most 1 s; 0: do not wait).

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        new: list[str] = []
        block = min(block_ms, BLOCK_SLICE_MS) if block_ms > 0 else None
        async with _reachable("poll"):
            while True:
                reply: Any = await self._redis.xread({CANCELS: self._last}, count=1000, block=block)
                block = None
                entries = reply[0][1] if reply else []
                for entry, fields in entries:
                    self._last = _text(entry)
                    utterance = _text(fields.get(b"u", b""))
                    if utterance not in self._cancelled:
                        new.append(utterance)
                    self._cancelled[utterance] = int(self._last.partition("-")[0])
                    self._cancelled.move_to_end(utterance)
                if len(entries) < 1000:
                    break
        self._prune()
        return new

    def is_cancelled(self, utterance: str) -> bool:
        """As of the last :meth:`poll` (no round trip)."""
        return utterance in self._cancelled

    def _prune(self) -> None:
        if not self._cancelled:
            return
        newest = next(reversed(self._cancelled.values()))
        while self._cancelled and next(iter(self._cancelled.values())) < newest - (
            self.horizon_s * 1000
        ):
            self._cancelled.popitem(last=False)
