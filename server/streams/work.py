"""Work streams: one per priority class, consumer group ``workers`` (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from voxlive.protocol.types import PRIORITIES, Priority

from .base import (
    _DEADLINE,
    _PRIORITY,
    _T,
    BLOCK_SLICE_MS,
    DEAD_LETTERS,
    GROUP,
    JobId,
    Overloaded,
    StreamsUnavailable,
    _check_client,
    _key_of,
    _reachable,
    _text,
    _user_fields,
    logger,
    work_key,
)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One sentence taken from a work stream."""

    id: JobId
    priority: Priority
    fields: dict[str, bytes]
    """The job as submitted (values as bytes)."""
    deadline: float | None
    """Unix time (s) after which it is no use; ``None``: none."""
    attempt: int
    """How often it was delivered (1 on the first pull, +1 per reclaim): tag results with it."""


@dataclass(frozen=True, slots=True)
class Pulled:
    """What :meth:`WorkQueue.pull` or :meth:`WorkQueue.reclaim` took."""

    items: list[WorkItem] = field(default_factory=list)
    """To run, highest priority first; never more than asked for."""
    expired: list[WorkItem] = field(default_factory=list)
    """Deadline passed: acked and dropped (tell the gateway ``expired``)."""
    dead: list[WorkItem] = field(default_factory=list)
    """Delivered more than ``max_deliveries`` times: moved to :data:`DEAD_LETTERS`."""


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """A work stream, for metrics."""

    length: int
    """Entries in the stream: waiting plus pending."""
    pending: int
    """Delivered to a worker and not acked yet."""

    @property
    def waiting(self) -> int:
        return max(0, self.length - self.pending)


class WorkQueue:
    """The work streams, from both sides: gateways submit, workers pull/refresh/ack.

    Args:
        redis: A client from :func:`connect` (or one like it).
        cap: Entries a stream may hold before :meth:`submit` raises :class:`Overloaded`.
        maxlen: ``MAXLEN ~`` on every add, a bound on memory should many gateways pass
            the cap check at once; must exceed ``cap`` (entries beyond it are lost).
        max_deliveries: Deliveries after which a reclaimed entry is dead-lettered.
        retry_after_s: The hint :class:`Overloaded` carries.
        clock: Unix time, for deadlines.

    Raises:
        ValueError: A bound is out of range, or the client decodes replies or speaks RESP3.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        cap: int = 10_000,
        maxlen: int | None = None,
        max_deliveries: int = 3,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_client(redis)
        maxlen = 2 * cap if maxlen is None else maxlen
        if cap < 1 or maxlen <= cap or max_deliveries < 1:
            raise ValueError(f"need 1 ≤ cap < maxlen and max_deliveries ≥ 1, got {cap}, {maxlen}")
        self._redis = redis
        self.cap = cap
        self.maxlen = maxlen
        self.max_deliveries = max_deliveries
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._add = redis.register_script(_ADD_UNDER_CAP)

    async def submit(
        self,
        job: Mapping[str, bytes | str],
        priority: Priority = "normal",
        deadline: float | None = None,
    ) -> JobId:
        """Enqueue one sentence; ``deadline`` is Unix time (s).

        Raises:
            ValueError: Unknown priority, or a field name starting with ``_`` (reserved).
            Overloaded: The stream holds ``cap`` entries (checked and added in one
                script: gateways submitting together cannot overshoot it).
            StreamsUnavailable: Redis cannot be reached.
        """
        key = _key_of(priority)
        payload: dict[Any, Any] = _user_fields(job)
        if deadline is not None:
            payload[_DEADLINE] = repr(float(deadline))
        flat = [part for pair in payload.items() for part in pair]
        async with _reachable("submit"):
            reply = await self._add(keys=[key], args=[self.cap, self.maxlen, *flat])
        if isinstance(reply, int):
            raise Overloaded(priority, reply, self.cap, self.retry_after_s)
        return JobId(f"{priority}/{_text(reply)}")

    async def pull(self, consumer: str, max_items: int, block_ms: int = 0) -> Pulled:
        """Take up to ``max_items`` new entries, realtime before normal before bulk.

        Expired entries are acked, dropped and reported; they take no slot. Waits up to
        ``block_ms`` for work when there is none (0: do not wait).

        Raises:
            ValueError: ``max_items`` < 1.
            StreamsUnavailable: Redis cannot be reached.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be ≥ 1, got {max_items}")
        end = time.monotonic() + block_ms / 1000
        async with _reachable("pull"):
            while True:
                # The last ids are read *before* looking for work, so that an entry added
                # after that look ends the wait below (no lost wake-up).
                marks = await self._last_ids() if block_ms > 0 else None
                got = await self._read_new(consumer, max_items)
                wait_ms = min(BLOCK_SLICE_MS, int((end - time.monotonic()) * 1000))
                if got.items or got.expired or marks is None or wait_ms <= 0:
                    return got
                await self._redis.xread(marks, count=1, block=wait_ms)

    async def ack(self, ids: Iterable[JobId]) -> int:
        """Done with these (delivered, expired or given up): drop them. Returns how many
        were still pending.

        Raises:
            ValueError: An id is not a :data:`JobId`.
            StreamsUnavailable: Redis cannot be reached.
        """
        by_priority = _group_ids(ids)
        async with _reachable("ack"), self._redis.pipeline(transaction=False) as pipe:
            for priority, entries in by_priority.items():
                pipe.xack(work_key(priority), GROUP, *entries)
                pipe.xdel(work_key(priority), *entries)
            replies = await pipe.execute()
        return sum(int(n) for n in replies[0::2])

    async def refresh(self, consumer: str, ids: Iterable[JobId]) -> list[JobId]:
        """Keep the claim on entries ``consumer`` is still running (resets their idle
        time; XCLAIM JUSTID, so not a delivery). Call it well within the reclaimers'
        ``min_idle_ms``.

        Returns:
            The ids still ``consumer``'s; the others were reclaimed (stop them) or acked.

        Raises:
            ValueError: An id is not a :data:`JobId`.
            StreamsUnavailable: Redis cannot be reached.
        """
        kept: list[JobId] = []
        async with _reachable("refresh"):
            for priority, entries in _group_ids(ids).items():
                claimed = await self._with_group(partial(self._claim, priority, consumer, entries))
                kept += [JobId(f"{priority}/{e}") for e in claimed]
        return kept

    async def reclaim(self, consumer: str, min_idle_ms: int, max_items: int) -> Pulled:
        """Take over up to ``max_items`` entries pending longer than ``min_idle_ms`` (their
        worker died or stalled), highest priority first (XAUTOCLAIM).

        Each claim counts as a delivery; an entry now delivered more than
        ``max_deliveries`` times goes to :data:`DEAD_LETTERS` and is reported in ``dead``.

        Raises:
            ValueError: ``max_items`` < 1.
            StreamsUnavailable: Redis cannot be reached.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be ≥ 1, got {max_items}")
        got = Pulled()
        async with _reachable("reclaim"):
            for priority in PRIORITIES:
                cursor = "0-0"
                while len(got.items) < max_items:
                    count = max_items - len(got.items)
                    reply = await self._with_group(
                        partial(self._autoclaim, priority, consumer, min_idle_ms, cursor, count)
                    )
                    claimed = [(_text(e), f) for e, f in reply[1] if f is not None]
                    await self._sort_reclaimed(priority, consumer, claimed, got)
                    cursor = _text(reply[0])
                    if cursor == "0-0":
                        break
        return got

    async def depth(self) -> dict[Priority, QueueDepth]:
        """Length and pending count of each work stream.

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        async with _reachable("depth"):
            replies = await self._with_group(self._depths)
        return {
            p: QueueDepth(length=int(replies[2 * i]), pending=int(replies[2 * i + 1]["pending"]))
            for i, p in enumerate(PRIORITIES)
        }

    async def dead_letters(self) -> int:
        """Entries in :data:`DEAD_LETTERS` (each has the job's fields plus ``_stream``,
        ``_id`` and ``_deliveries``).

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        async with _reachable("dead_letters"):
            return int(await self._redis.xlen(DEAD_LETTERS))

    async def _read_new(self, consumer: str, max_items: int) -> Pulled:
        got = Pulled()
        for priority in PRIORITIES:
            while len(got.items) < max_items:
                count = max_items - len(got.items)
                reply = await self._with_group(partial(self._read_group, priority, consumer, count))
                entries = [(_text(e), f) for e, f in reply[0][1]] if reply else []
                items = [_item(priority, e, f, attempt=1) for e, f in entries]
                stale = [i for i in items if self._expired(i)]
                got.items.extend(i for i in items if not self._expired(i))
                got.expired.extend(stale)
                await self._drop(stale)
                if len(entries) < count:
                    break  # this stream has no more new entries
        return got

    async def _read_group(self, priority: Priority, consumer: str, count: int) -> Any:
        streams: dict[Any, Any] = {work_key(priority): ">"}
        return await self._redis.xreadgroup(GROUP, consumer, streams, count=count)

    async def _claim(self, priority: Priority, consumer: str, entries: list[str]) -> list[str]:
        """XCLAIM JUSTID those of ``entries`` still pending at ``consumer``; returns them."""
        owners = await self._pending(priority, entries)
        mine = [e for e in entries if owners.get(e, ("", 0))[0] == consumer]
        if not mine:
            return []
        ids: list[Any] = list(mine)
        claimed: Any = await self._redis.xclaim(
            work_key(priority), GROUP, consumer, 0, ids, justid=True
        )
        return [_text(e) for e in claimed]

    async def _autoclaim(
        self, priority: Priority, consumer: str, min_idle_ms: int, cursor: str, count: int
    ) -> list[Any]:
        key = work_key(priority)
        reply: Any = await self._redis.xautoclaim(
            key, GROUP, consumer, min_idle_ms, cursor, count=count
        )
        return list(reply)

    async def _sort_reclaimed(
        self, priority: Priority, consumer: str, claimed: list[tuple[str, Any]], got: Pulled
    ) -> None:
        owners = await self._pending(priority, [e for e, _ in claimed])
        expired: list[WorkItem] = []
        for entry, fields in claimed:
            owner, deliveries = owners.get(entry, ("", 0))
            if owner != consumer:
                continue  # acked or claimed by another since: not ours to run
            item = _item(priority, entry, fields, attempt=deliveries)
            if deliveries > self.max_deliveries:
                await self._bury(item, fields)
                got.dead.append(item)
            elif self._expired(item):
                expired.append(item)
            else:
                got.items.append(item)
        await self._drop(expired)
        got.expired.extend(expired)

    async def _bury(self, item: WorkItem, fields: dict[bytes, bytes]) -> None:
        key, entry = work_key(item.priority), item.id.partition("/")[2]
        letter: dict[Any, Any] = dict(fields)
        letter |= {"_stream": key, "_id": entry, "_deliveries": str(item.attempt)}
        logger.warning("%s delivered %d times: dead-lettered", item.id, item.attempt)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(DEAD_LETTERS, letter, maxlen=self.maxlen, approximate=True)
            pipe.xack(key, GROUP, entry)
            pipe.xdel(key, entry)
            await pipe.execute()

    async def _drop(self, items: list[WorkItem]) -> None:
        if items:
            await self.ack([i.id for i in items])

    async def _pending(self, priority: Priority, entries: list[str]) -> dict[str, tuple[str, int]]:
        """Entry → (consumer, deliveries), for those of ``entries`` still pending."""
        if not entries:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xpending_range(work_key(priority), GROUP, entry, entry, 1)
            replies = await pipe.execute(raise_on_error=True)
        return {
            _text(row["message_id"]): (_text(row["consumer"]), int(row["times_delivered"]))
            for reply in replies
            for row in reply
        }

    async def _depths(self) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for priority in PRIORITIES:
                pipe.xlen(work_key(priority))
                pipe.xpending(work_key(priority), GROUP)
            return list(await pipe.execute())

    async def _last_ids(self) -> dict[Any, Any]:
        """Each work stream's newest entry id (``0-0`` when empty)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for priority in PRIORITIES:
                pipe.xrevrange(work_key(priority), count=1)
            replies = await pipe.execute()
        return {
            work_key(p): _text(reply[0][0]) if reply else "0-0"
            for p, reply in zip(PRIORITIES, replies, strict=True)
        }

    async def _with_group(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, creating the consumer groups first if Redis lost them (NOGROUP)."""
        try:
            return await call()
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        await self._create_groups()
        return await call()

    async def _create_groups(self) -> None:
        for priority in PRIORITIES:
            with contextlib.suppress(redis_errors.ResponseError):  # BUSYGROUP: it exists
                # From id 0: entries added before any worker came are delivered too.
                await self._redis.xgroup_create(work_key(priority), GROUP, id="0", mkstream=True)
        logger.info("consumer group %r created on the work streams", GROUP)

    def _expired(self, item: WorkItem) -> bool:
        return item.deadline is not None and item.deadline <= self._clock()


async def watch_depth(
    queue: WorkQueue,
    seen: Callable[[dict[Priority, QueueDepth] | None], None],
    every_s: float = 2.0,
) -> None:
    """Read the work streams' depth every ``every_s`` until cancelled (gateways' and
    workers' metrics); ``seen`` gets each reading, or ``None`` when Redis could not be
    reached."""
    while True:
        try:
            depth: dict[Priority, QueueDepth] | None = await queue.depth()
        except StreamsUnavailable:
            depth = None
        seen(depth)
        await asyncio.sleep(every_s)


_ADD_UNDER_CAP = """
local length = redis.call('XLEN', KEYS[1])
if length >= tonumber(ARGV[1]) then
  return length
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""
"""XADD unless the stream holds ``cap`` entries already (then its length): one round
trip, and atomic, so gateways submitting at once cannot overshoot the cap together."""


def _group_ids(ids: Iterable[JobId]) -> dict[Priority, list[str]]:
    out: dict[Priority, list[str]] = defaultdict(list)
    for job in ids:
        priority, _, entry = job.partition("/")
        if priority not in _PRIORITY or not entry:
            raise ValueError(f"not a job id: {job!r}")
        out[_PRIORITY[priority]].append(entry)
    return out


def _item(priority: Priority, entry: str, raw: dict[bytes, bytes], attempt: int) -> WorkItem:
    fields = {_text(k): v for k, v in raw.items()}
    deadline = fields.pop(_DEADLINE, None)
    return WorkItem(
        id=JobId(f"{priority}/{entry}"),
        priority=priority,
        fields=fields,
        deadline=None if deadline is None else float(deadline),
        attempt=attempt,
    )
