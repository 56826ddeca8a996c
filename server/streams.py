"""Redis Streams between gateways and workers (DESIGN.md "Scale-out"; docs/scale-out.md).

Gateways hold the WebSockets and enqueue sentences; workers pull as many as their
batcher has room for, synthesize, and stream the audio back to the gateway that asked.
Everything here is what Redis Streams give, used as they are meant to be:

- **work**: ``voxlive:work:<priority>``, one stream per priority class, consumer group
  ``workers``. At-least-once: an entry stays pending until acked; a worker's long
  sentence keeps its claim with :meth:`WorkQueue.refresh`; a dead worker's entries are
  taken over with :meth:`WorkQueue.reclaim` (XAUTOCLAIM), and one delivered too often
  goes to ``voxlive:work:dead`` instead of looping forever.
- **results**: ``voxlive:results:<gateway>``, one stream per gateway (not pub/sub, which
  is at-most-once). :class:`ResultReader` trims what it read and deduplicates retried
  chunks (the rule is on :class:`Dedup`).
- **cancel**: ``voxlive:cancel``, read by every worker (no group: each sees every cancel).

Every coroutine raises :class:`StreamsUnavailable` when Redis cannot be reached, and
works again once it can (a consumer group lost with Redis's data is created again).
The client must speak RESP2 and return bytes (:func:`connect` makes one).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, NewType, TypeVar

import msgpack
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from voxlive.protocol.types import PRIORITIES, Priority

__all__ = [
    "AUDIO",
    "CANCELS",
    "DEAD_LETTERS",
    "GROUP",
    "MARKS",
    "CancelFeed",
    "Dedup",
    "JobId",
    "Overloaded",
    "Pulled",
    "QueueDepth",
    "Result",
    "ResultReader",
    "ResultWriter",
    "StreamsError",
    "StreamsUnavailable",
    "WorkItem",
    "WorkQueue",
    "connect",
    "pack_marks",
    "results_key",
    "unpack_marks",
    "work_key",
]

logger = logging.getLogger(__name__)

GROUP: Final = "workers"
DEAD_LETTERS: Final = "voxlive:work:dead"
CANCELS: Final = "voxlive:cancel"
AUDIO: Final = "audio"
"""Result field of raw PCM bytes (the worker's format: float32 or int16)."""
MARKS: Final = "marks"
"""Result field of marks, msgpack (:func:`pack_marks`)."""
BLOCK_SLICE_MS: Final = 1000
"""Longest single blocking read: below the client's socket timeout, so a hung Redis
is told apart from an idle one."""
_DEADLINE: Final = "_deadline"
_DOWN: Final = (
    redis_errors.ConnectionError,  # BusyLoadingError included
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,
)
_T = TypeVar("_T")
_PRIORITY: Final[dict[str, Priority]] = {p: p for p in PRIORITIES}

JobId = NewType("JobId", str)
"""``<priority>/<entry id>``: names a work entry across the three streams."""


class StreamsError(Exception):
    """Base of this module's errors."""


class StreamsUnavailable(StreamsError):
    """Redis cannot be reached; retryable (answer ``unavailable``)."""


class Overloaded(StreamsError):
    """A work stream holds ``cap`` entries already; try again after ``retry_after_s``."""

    def __init__(self, priority: Priority, length: int, cap: int, retry_after_s: float) -> None:
        super().__init__(f"{priority} queue holds {length} of {cap}, retry after {retry_after_s} s")
        self.priority: Priority = priority
        self.length = length
        self.cap = cap
        self.retry_after_s = retry_after_s


def connect(url: str, *, retries: int = 3, connect_timeout_s: float = 1.0) -> aioredis.Redis:
    """A client for this module: RESP2, bytes replies, few quick retries.

    Raises:
        ValueError: ``url`` is not a Redis URL.
    """
    return aioredis.Redis.from_url(
        url,
        protocol=2,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=max(5.0, 2 * BLOCK_SLICE_MS / 1000),
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), retries),
    )


def work_key(priority: Priority) -> str:
    return f"voxlive:work:{priority}"


def results_key(gateway: str) -> str:
    return f"voxlive:results:{gateway}"


def pack_marks(marks: object) -> bytes:
    """Marks as a result field. Raises: TypeError: not msgpack-serialisable."""
    data: bytes = msgpack.packb(marks, use_bin_type=True)
    return data


def unpack_marks(data: bytes) -> Any:
    """Raises: ValueError: ``data`` is not msgpack."""
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ValueError("marks are not valid msgpack") from exc


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

    async def submit(
        self,
        job: Mapping[str, bytes | str],
        priority: Priority = "normal",
        deadline: float | None = None,
    ) -> JobId:
        """Enqueue one sentence; ``deadline`` is Unix time (s).

        Raises:
            ValueError: Unknown priority, or a field name starting with ``_`` (reserved).
            Overloaded: The stream holds ``cap`` entries (the check is not atomic across
                gateways: they may overshoot it together, ``maxlen`` bounds that).
            StreamsUnavailable: Redis cannot be reached.
        """
        key = _key_of(priority)
        payload: dict[Any, Any] = _user_fields(job)
        if deadline is not None:
            payload[_DEADLINE] = repr(float(deadline))
        async with _reachable("submit"):
            length = await self._redis.xlen(key)
            if length >= self.cap:
                raise Overloaded(priority, length, self.cap, self.retry_after_s)
            entry = await self._redis.xadd(key, payload, maxlen=self.maxlen, approximate=True)
        return JobId(f"{priority}/{_text(entry)}")

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
    not missed), trims what it has read (XTRIM MINID: the socket that wanted them is in
    this process, so nothing is left to re-read them for), and passes results through
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
            reply: Any = await self._redis.xread(
                {self.key: self._last}, count=self.count, block=block
            )
            if not reply:
                return []
            entries = reply[0][1]
            self._last = _text(entries[-1][0])
            await self._redis.xtrim(self.key, minid=_after(self._last), approximate=False)
        results = (_result(_text(e), f) for e, f in entries)
        return [r for r in results if r is not None and self.dedup.admit(r)]

    def __aiter__(self) -> AsyncIterator[Result]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Result]:
        while True:
            for result in await self.read(block_ms=BLOCK_SLICE_MS):
                yield result


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

    async def poll(self) -> list[str]:
        """Read the cancels sent since the last poll (one round trip when there are few);
        returns the utterances newly cancelled.

        Raises:
            StreamsUnavailable: Redis cannot be reached.
        """
        new: list[str] = []
        async with _reachable("poll"):
            while True:
                reply: Any = await self._redis.xread({CANCELS: self._last}, count=1000)
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


@contextlib.asynccontextmanager
async def _reachable(what: str) -> AsyncIterator[None]:
    """Turn "Redis is not there" into :class:`StreamsUnavailable`."""
    try:
        yield
    except _DOWN as exc:
        raise StreamsUnavailable(f"redis unreachable ({what})") from exc


def _check_client(redis: aioredis.Redis) -> None:
    kwargs = redis.connection_pool.connection_kwargs
    if kwargs.get("decode_responses") or kwargs.get("protocol") not in (None, 2, "2"):
        raise ValueError("need a RESP2 client returning bytes (see connect())")


def _key_of(priority: str) -> str:
    if priority not in _PRIORITY:
        raise ValueError(f"unknown priority {priority!r}")
    return work_key(_PRIORITY[priority])


def _user_fields(fields: Mapping[str, bytes | str]) -> dict[str, bytes | str]:
    for name in fields:
        if not name or name.startswith("_"):
            raise ValueError(f"field name {name!r} is empty or reserved (leading '_')")
    return dict(fields)


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


def _after(entry: str) -> str:
    """The smallest stream id above ``entry``."""
    ms, _, seq = entry.partition("-")
    return f"{ms}-{int(seq) + 1}"


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()
