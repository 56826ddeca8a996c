"""``voxlive serve``: the server's process life (threads and signals)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from voxlive.server.app import App
from voxlive.server.config import Config

from ..loop import run_loop

__all__ = ["serve_until_signalled"]

logger = logging.getLogger(__name__)


def serve_until_signalled(config: Config) -> int:
    """Run the server: event loop in a thread, engine on the main thread.

    SIGTERM/SIGINT start a graceful shutdown; a second SIGINT exits at once.
    """
    app = App(config)
    bound = threading.Event()
    stop: dict[str, asyncio.Event] = {}

    async def serve() -> int:
        stop["event"] = asyncio.Event()
        await app.serve(stop["event"], lambda _: bound.set(), engine_thread=False)
        return 0

    def on_signal(signum: int, frame: object) -> None:
        event = stop.get("event")
        if event is not None and event.is_set() and signum == signal.SIGINT:
            logger.warning("second interrupt: exiting now")
            os._exit(130)
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        if event is not None:
            app.loop.call_soon_threadsafe(event.set)

    loop_thread = threading.Thread(target=lambda: run_loop(serve()), name="voxlive-loop")
    loop_thread.start()
    while not bound.wait(0.1):
        if not loop_thread.is_alive():
            return 1  # the loop failed to start (e.g. port in use); it logged why
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.batcher.run()
    loop_thread.join()
    return 0
