"""Entry point of ``voxlive`` (and ``python -m server``).

The only place that configures logging and picks the event loop: uvloop when
installed (as uvicorn's ``loops/uvloop.py``), the standard asyncio loop
otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

__all__ = ["main", "run_loop"]

logger = logging.getLogger("server")


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run a coroutine on uvloop if available, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(main)
    return uvloop.run(main)


def serve_until_signalled(config: Any) -> int:
    """Run the server: event loop in a thread, engine on the main thread.

    SIGTERM/SIGINT start a graceful shutdown; a second SIGINT exits at once.
    """
    import threading

    from .app import App

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


def main(argv: Sequence[str] | None = None) -> int:
    from .cli import build_parser, dispatch

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
