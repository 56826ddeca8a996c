"""``voxlive serve``: the server's process life (threads and signals)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import threading
from typing import Any, Final, NoReturn

from voxlive.server.app import App
from voxlive.server.config import Config
from voxlive.server.warmup import warm_up

from ..loop import run_loop
from .errors import EXIT_FAILED, CommandError

__all__ = ["StartupInterrupted", "check_port_free", "port_in_use", "serve_until_signalled"]

logger = logging.getLogger(__name__)

STARTUP_EXIT_S: Final = 2.0
"""After a signal during start-up, the process exits within this even if unwinding hangs."""
FORCE_CLOSE_S: Final = 1.0
"""On a second signal, how long the close frames may take before the process exits."""


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

    Signals (``_Lifecycle``): SIGTERM or SIGINT while the voices load or warm up ends the
    process at once (the server never listened); once it runs, the first one starts a
    graceful shutdown (the port stops accepting connections, so ``/readyz`` no longer
    answers 200, and new utterances are refused; in-flight ones finish for up to
    ``graceful_shutdown_s``, then every session is closed with 1012) and a second
    one closes the sessions with 1012 and exits without waiting. With a keys file or a
    blocked-words file, SIGHUP reads them again.

    Returns:
        0 after a graceful shutdown; 128 + the signal's number when a signal ended the
        start-up or a second one cut the shutdown short.

    Raises:
        CommandError: the port is in use (checked before the voice loads, and again
            when the server binds it).
    """
    life = _Lifecycle(reloads=bool(config.keys_file or config.blocked_words_file))
    life.install()
    try:
        return _serve(config, life)
    except StartupInterrupted as exc:
        return 128 + exc.signum
    finally:
        life.uninstall()


def _serve(config: Config, life: _Lifecycle) -> int:
    check_port_free(config.host, config.port)
    logger.info("loading voices (%s)", config.voices)
    app = life.app = App(config)
    if config.warm_up:
        warm_up(app.engine)  # here: the main thread is the engine's (see Batcher.run)
    bound = threading.Event()
    failed: list[BaseException] = []

    async def serve() -> int:
        stop = asyncio.Event()
        life.attach(asyncio.get_running_loop(), stop)
        await app.serve(stop, lambda _: bound.set(), engine_thread=False)
        return 0

    def loop_main() -> None:
        try:
            run_loop(serve())
        except BaseException as exc:  # reported by the main thread, not as a thread traceback
            failed.append(exc)

    loop_thread = threading.Thread(target=loop_main, name="voxlive-loop")
    life.starting_loop()
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
    app.batcher.run()  # a gateway's returns at once: it has no engine thread
    while loop_thread.is_alive():  # in slices, so that signals are handled meanwhile
        loop_thread.join(0.2)
    if failed:
        raise failed[0]
    return 0


class StartupInterrupted(BaseException):
    """SIGTERM or SIGINT before the server listened: start-up stops where it is.

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that no ``except Exception``
    in loading code swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Lifecycle:
    """What SIGTERM, SIGINT and SIGHUP do, from start-up to exit.

    Signal handlers run on the main thread, which loads the voices and then runs the
    engine; the event loop runs on another thread and is reached through
    ``call_soon_threadsafe``.

    Args:
        reloads: SIGHUP reloads the keys and blocked-words files (else it keeps its
            default action: a closed terminal still ends the server).
    """

    def __init__(self, *, reloads: bool) -> None:
        self.app: App | None = None
        self._reloads = reloads
        self._lock = threading.RLock()  # the handler may interrupt its own thread's hold
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._loop_started = False
        self._stop_asked = False  # before the loop could take it
        self._signals = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        handled = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if self._reloads else [])
        for signum in handled:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def starting_loop(self) -> None:
        """From here a signal stops the server instead of interrupting the start-up."""
        with self._lock:
            self._loop_started = True

    def attach(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        """The running loop and its stop event (called on the loop's thread)."""
        with self._lock:
            self._loop, self._stop = loop, stop
            if self._stop_asked:
                stop.set()

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            self._reload()
            return
        self._signals += 1
        if self._signals > 1:
            self._exit_now(signum, name)
        with self._lock:
            if not self._loop_started:
                logger.warning("%s during start-up: exiting", name)
                # If unwinding the load hangs (a thread that does not end), exit anyway.
                timer = threading.Timer(STARTUP_EXIT_S, os._exit, (128 + signum,))
                timer.daemon = True
                timer.start()
                raise StartupInterrupted(signum)
            logger.info("%s received: shutting down (a second signal exits at once)", name)
            if self._loop is None or self._stop is None:
                self._stop_asked = True
            else:
                self._loop.call_soon_threadsafe(self._stop.set)

    def _reload(self) -> None:
        with self._lock:
            loop, app = self._loop, self.app
        if loop is None or app is None:
            logger.info("SIGHUP during start-up: the files are being read anyway")
            return
        loop.call_soon_threadsafe(app.reload)

    def _exit_now(self, signum: int, name: str) -> NoReturn:
        """Close every session with 1012, briefly waiting for the close frames, and exit."""
        logger.warning("second signal (%s): closing every session and exiting now", name)
        loop, app = self._loop, self.app
        if loop is not None and app is not None and loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(app.close_now(), loop)
            try:
                closing.result(FORCE_CLOSE_S)
            except BaseException:  # timed out or cancelled: exit all the same
                pass
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(128 + signum)
