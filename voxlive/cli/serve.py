"""``voxlive serve``: the server's process life (threads and signals)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import threading

from voxlive.server.app import App
from voxlive.server.config import Config
from voxlive.server.warmup import warm_up

from ..loop import run_loop
from .errors import EXIT_FAILED, CommandError

__all__ = ["check_port_free", "port_in_use", "serve_until_signalled"]

logger = logging.getLogger(__name__)


def port_in_use(host: str, port: int) -> CommandError:
    """The one-line error for a port another process listens on (exit status 1)."""
    return CommandError(
        f"port {port} is in use on {host} (another server running? pick another with "
        "--port or VOXLIVE_PORT)",
        EXIT_FAILED,
    )


def check_port_free(host: str, port: int) -> None:
    """Fail before the model loads when something already listens on ``host:port``.

    Binds a probe socket the way the server will (``SO_REUSEADDR``, so a port whose
    last connections linger in TIME_WAIT still counts as free). Port 0 always is.

    Raises:
        CommandError: the port is taken, or the address cannot be bound (e.g. it is
            not this host's, or the port is privileged).
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}: {exc.strerror}", EXIT_FAILED) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise port_in_use(host, port) from None
                message = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
                raise CommandError(message, EXIT_FAILED) from None


def serve_until_signalled(config: Config) -> int:
    """Run the server: event loop in a thread, engine on the main thread.

    SIGTERM/SIGINT start a graceful shutdown; a second SIGINT exits at once.

    Raises:
        CommandError: the port is in use (checked before the voice loads, and again
            when the server binds it).
    """
    check_port_free(config.host, config.port)
    app = App(config)
    if config.warm_up:
        warm_up(app.engine)  # here: the main thread is the engine's (see Batcher.run)
    bound = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    failed: list[BaseException] = []

    async def serve() -> int:
        stop["event"] = asyncio.Event()
        await app.serve(stop["event"], lambda _: bound.set(), engine_thread=False)
        return 0

    def loop_main() -> None:
        try:
            run_loop(serve())
        except BaseException as exc:  # reported by the main thread, not as a thread traceback
            failed.append(exc)

    def on_signal(signum: int, frame: object) -> None:
        event = stop.get("event")
        if event is not None and event.is_set() and signum == signal.SIGINT:
            logger.warning("second interrupt: exiting now")
            os._exit(130)
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        if event is not None:
            app.loop.call_soon_threadsafe(event.set)

    loop_thread = threading.Thread(target=loop_main, name="voxlive-loop")
    loop_thread.start()
    while not bound.wait(0.1):
        if not loop_thread.is_alive():
            break
    if not bound.is_set():  # the loop failed before listening
        loop_thread.join()
        error = failed[0] if failed else RuntimeError("the server stopped before listening")
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            raise port_in_use(config.host, config.port) from None
        raise error
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.batcher.run()
    loop_thread.join()
    if failed:
        raise failed[0]
    return 0
