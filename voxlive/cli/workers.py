"""``voxlive serve --role worker --workers N``: N worker processes on one machine.

Each child is the same command with ``--workers 1 --port <port + i>`` and an even share
of the machine's cores (``OMP_NUM_THREADS``: torch's threads). A child that exits on its
own is started again after a pause that grows while it keeps failing; SIGTERM or
SIGINT goes to every child (each drains as a lone worker would) and the supervisor
exits when they all have. A second signal kills them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Final

from voxlive.server.config import Config

__all__ = ["child_command", "run_workers"]

logger = logging.getLogger(__name__)

RESTART_S: Final = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Pause before starting a child that exited again (the last repeats)."""
HEALTHY_S: Final = 60.0
"""A child that ran this long before exiting starts its pauses over."""


def child_command(orig_argv: list[str], argv: list[str], port: int) -> list[str]:
    """The command of one child: this process's, with ``--workers 1 --port port``.

    ``orig_argv`` is the interpreter's whole command line (``sys.orig_argv``), ``argv``
    the arguments ``voxlive`` parsed (its tail); later flags win in ``voxlive serve``,
    so the two are appended.
    """
    head = orig_argv[: len(orig_argv) - len(argv)] if argv else orig_argv
    return [sys.executable, *head[1:], *argv, "--workers", "1", "--port", str(port)]


def run_workers(config: Config, argv: list[str]) -> int:
    """Start ``config.workers`` workers and keep them running until a signal.

    Returns:
        0 once every child exited after a signal; 128 + the signal's number after a
        second one.
    """
    n = config.workers
    cores = os.cpu_count() or 1
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // n)))
    commands = [child_command(sys.orig_argv, argv, config.port + i) for i in range(n)]
    children: list[subprocess.Popen[bytes] | None] = [None] * n
    started = [0.0] * n
    failures = [0] * n
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        for child in children:
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGKILL if len(signals) > 1 else signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        logger.info("starting %d workers on ports %d-%d", n, config.port, config.port + n - 1)
        next_start = [0.0] * n
        while True:
            now = time.monotonic()
            for i in range(n):
                child = children[i]
                if child is not None and child.poll() is not None and not signals:
                    ran = now - started[i]
                    failures[i] = 0 if ran > HEALTHY_S else failures[i] + 1
                    pause = RESTART_S[min(failures[i], len(RESTART_S)) - 1] if failures[i] else 0
                    logger.error(
                        "worker %d exited with %s after %.0f s: starting it again in %.0f s",
                        i,
                        child.returncode,
                        ran,
                        pause,
                    )
                    children[i] = None
                    next_start[i] = now + pause
                if children[i] is None and not signals and now >= next_start[i]:
                    children[i] = subprocess.Popen(commands[i], env=env)
                    started[i] = now
            if signals and all(c is None or c.poll() is not None for c in children):
                return 0 if len(signals) == 1 else 128 + signals[-1]
            time.sleep(0.2)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
