"""What the streams share: keys, field names, errors, the client and Redis helpers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, NewType, TypeVar

import msgpack
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from voxlive.protocol.types import PRIORITIES, Priority

logger = logging.getLogger(__name__)

GROUP: Final = "workers"
DEAD_LETTERS: Final = "voxlive:work:dead"
CANCELS: Final = "voxlive:cancel"
AUDIO: Final = "audio"
"""Result field of raw PCM bytes (the worker's format: float32 or int16)."""
MARKS: Final = "marks"
"""Result field of marks, msgpack (:func:`pack_marks`)."""
REDIS_RETRY_S: Final = 0.25
"""Gateways' and workers' pause before calling Redis again after it could not be reached."""
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


def _after(entry: str) -> str:
    """The smallest stream id above ``entry``."""
    ms, _, seq = entry.partition("-")
    return f"{ms}-{int(seq) + 1}"


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()
