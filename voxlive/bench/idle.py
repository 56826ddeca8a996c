"""``voxlive bench idle``: server memory per idle connection.

Starts ``voxlive serve`` in a subprocess on a free port, opens connections that
say ``hello`` and then wait, and reads the server's resident memory from
``/proc`` before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from typing import Any

from voxlive.protocol.codec import encode_client
from voxlive.protocol.messages import Hello

__all__ = ["bench_idle"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise OSError(f"no VmRSS for pid {pid}")


async def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise OSError(f"server did not listen on port {port} within {timeout_s} s")
            await asyncio.sleep(0.2)


async def _measure(connections: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    port = _free_port()
    cmd = [sys.executable, "-m", "voxlive", "serve", "--port", str(port)]
    # Every connection comes from this address: lift the per-address and total limits.
    room = str(connections + 64)
    cmd += ["--max-sessions-per-ip", room, "--max-sessions", str(max(1000, connections + 64))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opened = []
    try:
        await _wait_for_port(port, 60)

        async def one() -> Any:
            ws = await connect(f"ws://127.0.0.1:{port}")
            await ws.send(encode_client(Hello(version=1)))
            await ws.recv()  # welcome
            return ws

        opened += [await one() for _ in range(16)]  # warm up allocator pools
        await asyncio.sleep(0.5)
        before = _rss_kib(proc.pid)
        for start in range(0, connections, 50):
            batch = min(50, connections - start)
            opened += await asyncio.gather(*(one() for _ in range(batch)))
        await asyncio.sleep(1.0)
        after = _rss_kib(proc.pid)
    finally:
        for ws in opened:
            with contextlib.suppress(Exception):
                await ws.close()
        proc.terminate()
        proc.wait(20)
    return {
        "connections": connections,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_idle_connection": (after - before) / connections,
    }


def bench_idle(connections: int) -> dict[str, Any]:
    """Returns the JSON-ready report. Raises OSError if the server cannot start."""
    if connections < 1:
        raise ValueError("--connections must be ≥ 1")
    return asyncio.run(_measure(connections))
