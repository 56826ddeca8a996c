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

from .base import (
    AUDIO,
    CANCELS,
    DEAD_LETTERS,
    GROUP,
    MARKS,
    REDIS_RETRY_S,
    JobId,
    Overloaded,
    StreamsError,
    StreamsUnavailable,
    connect,
    pack_marks,
    results_key,
    unpack_marks,
    work_key,
)
from .cancel import CancelFeed
from .results import Dedup, Result, ResultReader, ResultWriter
from .work import Pulled, QueueDepth, WorkItem, WorkQueue, watch_depth

__all__ = [
    "AUDIO",
    "CANCELS",
    "DEAD_LETTERS",
    "GROUP",
    "MARKS",
    "REDIS_RETRY_S",
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
    "watch_depth",
    "work_key",
]
