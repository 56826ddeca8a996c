"""Text of one utterance through the front end, results back in the order the text came."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

from voxlive.engine.interface import Text

__all__ = ["SentenceOrder"]


class SentenceOrder:
    """Runs ``prepare`` on a thread pool; ``deliver`` gets each result (or error) in order.

    Pool threads may finish out of order; a result waits for the ones submitted
    before it. Lives on the event loop thread.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: Executor,
        prepare: Callable[[str], Text],
        deliver: Callable[[Text | Exception], None],
    ) -> None:
        self._loop = loop
        self._pool = pool
        self._prepare = prepare
        self._deliver = deliver
        self._waiting: deque[asyncio.Future[Text]] = deque()
        self._closed = False

    @property
    def busy(self) -> bool:
        """Some text is still in the front end."""
        return bool(self._waiting)

    def submit(self, text: str) -> None:
        future = self._loop.run_in_executor(self._pool, self._prepare, text)
        self._waiting.append(future)
        future.add_done_callback(lambda _: self._drain())

    def close(self) -> None:
        """Deliver nothing more."""
        self._closed = True

    def _drain(self) -> None:
        while self._waiting and self._waiting[0].done() and not self._closed:
            future = self._waiting.popleft()
            try:
                result: Text | Exception = future.result()
            except Exception as exc:
                result = exc
            self._deliver(result)
