"""``voxlive serve``'s life in a real process: signals during start-up, graceful drain under
load, and a second signal that exits at once.

The server is the real command line (``voxlive.cli.main``) in a subprocess that speaks
with the tiny voice: a few lines before ``main`` point the engine's default voice files
at it (and, for the start-up test, make loading take long, in Python, as a real load
does). One test runs the real voice, unchanged, and is marked slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    AudioSpec,
    Done,
    End,
    Error,
    Hello,
    Speak,
    SpeakOptions,
    Started,
    Welcome,
)
from voxlive.protocol.types import CloseCode, UtteranceId

from .harness import run

LAUNCHER = """
import os, sys, time
from pathlib import Path

import voxlive.engine.streaming as streaming
from voxlive.engine.loader import VoiceFiles

files = VoiceFiles(Path(os.environ["TINY_MODEL"]), Path(os.environ["TINY_CONFIG"]))
streaming.default_voice_files = lambda: files
load_s = float(os.environ.get("SLOW_LOAD_S", "0"))
if load_s:
    from voxlive.engine.vits import VitsEngine

    real_load = VitsEngine.load.__func__

    def slow_load(cls, *args, **kwargs):
        print("loading the voice slowly", file=sys.stderr, flush=True)
        end = time.monotonic() + load_s
        while time.monotonic() < end:
            time.sleep(0.01)
        return real_load(cls, *args, **kwargs)

    VitsEngine.load = classmethod(slow_load)

from voxlive.cli.main import main

sys.exit(main(sys.argv[1:]))
"""

SERVE = ["serve", "--voices", "en", "--port", "0", "--warm-up", "false", "--web", "false"]
LONG = (
    "The old library at the end of the street opens early in the morning. Inside, the "
    "shelves reach all the way to the ceiling, and the air smells of paper and dust."
)
EXIT_S = 3.0
"""A signal that ends the process does so within this (start-up, second signal)."""


class Server:
    """A ``voxlive serve`` process and the lines of its log (stderr)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._more = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.port = 0

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], cwd: Path) -> Server:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace"))
            self._more.set()
        self._more.set()

    async def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        """The first log line matching ``pattern`` (waiting for it to be written)."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if match := re.search(pattern, line):
                        return match
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"no {pattern!r} in the log:\n{self.log}")
                self._more.clear()
                await self._more.wait()

    async def listening(self) -> int:
        self.port = int((await self.wait_for(r"listening on ws://127\.0\.0\.1:(\d+)"))[1])
        return self.port

    def signal(self, signum: int) -> float:
        self.proc.send_signal(signum)
        return time.monotonic()

    async def exit_code(self, timeout: float = 60.0) -> int:
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._reader

    @property
    def log(self) -> str:
        return "".join(self.lines)


def environment(**more: str) -> dict[str, str]:
    """This process's environment without ``VOXLIVE_*`` settings, plus ``more``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VOXLIVE_")} | more


@contextlib.asynccontextmanager
async def serving(argv: list[str], env: dict[str, str], cwd: Path) -> AsyncIterator[Server]:
    """A server process, killed on the way out if it is still running."""
    server = await Server.start(argv, env, cwd)
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture
def launch(tiny_voice_files, tmp_path):
    """``serving`` ``voxlive serve`` with the tiny voice, more arguments and environment."""

    def start(*args: str, **env: str) -> contextlib.AbstractAsyncContextManager[Server]:
        files = {"TINY_MODEL": tiny_voice_files.model, "TINY_CONFIG": tiny_voice_files.config}
        environ = environment(**{k: str(v) for k, v in files.items()}, **env)
        return serving([sys.executable, "-c", LAUNCHER, *SERVE, *args], environ, tmp_path)

    return start


async def session(port: int) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}", max_size=None)
    await ws.send(encode_client(Hello(version=1, audio=AudioSpec())))
    assert isinstance(decode_server(await ws.recv()), Welcome)
    return ws


def append(uid: str, text: str, first: bool = False) -> bytes:
    options = SpeakOptions() if first else None
    return encode_client(Append(UtteranceId(uid), text, options))


async def until_closed(ws: ClientConnection, timeout: float = 60.0) -> list[Any]:
    """Every control message up to the close (audio frames dropped)."""
    messages: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = decode_server(await ws.recv())
                if not hasattr(message, "pcm"):
                    messages.append(message)
    except ConnectionClosed:
        pass
    return messages


async def until_started(ws: ClientConnection, uid: str, kept: list[Any]) -> None:
    async with asyncio.timeout(60):
        while True:
            message = decode_server(await ws.recv())
            if not hasattr(message, "pcm"):
                kept.append(message)
            if isinstance(message, Started) and message.id == uid:
                return


async def refused(port: int) -> bool:
    """Whether a new session cannot be opened (refused, or cut during the handshake)."""
    try:
        ws = await connect(f"ws://127.0.0.1:{port}", open_timeout=2)
    except (OSError, InvalidHandshake, TimeoutError):
        return True
    await ws.close()
    return False


def test_sigterm_under_load_finishes_every_utterance_in_flight_then_closes_with_1012(launch):
    async def main():
        async with launch("--graceful-shutdown-s", "60") as server:
            return await drain(server)

    async def drain(server: Server):
        port = await server.listening()
        sockets = [await session(port) for _ in range(3)]
        seen: list[list[Any]] = [[] for _ in sockets]
        for i, ws in enumerate(sockets):
            # A streamed utterance waiting for more text is in flight for sure, and
            # a whole one beside it.
            await ws.send(append(f"s{i}", "Thanks for the raid, everyone. ", first=True))
            await ws.send(encode_client(Speak(UtteranceId(f"p{i}"), LONG)))
        for i, ws in enumerate(sockets):
            await until_started(ws, f"s{i}", seen[i])
        server.signal(signal.SIGTERM)
        await server.wait_for("SIGTERM received: shutting down")
        async with asyncio.timeout(10):
            while not await refused(port):  # the listening socket closes
                await asyncio.sleep(0.05)
        await sockets[0].send(encode_client(Speak(UtteranceId("late"), "Too late.")))
        for i, ws in enumerate(sockets):
            await ws.send(append(f"s{i}", "See you next stream."))
            await ws.send(encode_client(End(UtteranceId(f"s{i}"))))
        for i, ws in enumerate(sockets):
            seen[i] += await until_closed(ws)
        codes = [ws.close_code for ws in sockets]
        return seen, codes, await server.exit_code(), server.log

    seen, codes, exit_code, log = run(main())
    assert codes == [CloseCode.SERVICE_RESTART] * 3, log
    for i, messages in enumerate(seen):
        done = {m.id: m.status for m in messages if isinstance(m, Done)}
        assert done.pop(f"s{i}") == "completed" and done.pop(f"p{i}") == "completed"
        assert done == ({"late": "failed"} if i == 0 else {})
        assert isinstance(messages[-1], Done)  # then the close, nothing after it
    errors = [(m.code, m.id) for m in seen[0] if isinstance(m, Error)]
    assert errors == [("overloaded", "late")]
    assert exit_code == 0, log
    assert "cancelling" not in log


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_second_signal_closes_every_session_and_exits_at_once(launch, second):
    async def main():
        async with launch("--graceful-shutdown-s", "60") as server:
            return await twice(server)

    async def twice(server: Server):
        port = await server.listening()
        ws = await session(port)
        await ws.send(append("s", "This never ends. ", first=True))
        await until_started(ws, "s", [])
        server.signal(signal.SIGTERM)
        await server.wait_for("SIGTERM received: shutting down")
        sent_at = server.signal(second)
        code = await server.exit_code(timeout=30)
        took = time.monotonic() - sent_at
        await until_closed(ws, timeout=10)
        return code, took, ws.close_code, server.log

    code, took, close_code, log = run(main())
    assert code == 128 + second, log
    assert took < EXIT_S, log
    assert close_code == CloseCode.SERVICE_RESTART, log
    assert "second signal" in log


def test_sighup_reloads_the_keys_file(launch, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("sk-old-key-0123456789 old\n", encoding="utf-8")
    new = {"Authorization": "Bearer sk-new-key-0123456789"}

    async def main():
        async with launch("--keys-file", str(keys)) as server:
            port = await server.listening()
            with pytest.raises(InvalidStatus) as before:
                await connect(f"ws://127.0.0.1:{port}", additional_headers=new)
            keys.write_text("sk-new-key-0123456789 new\n", encoding="utf-8")
            server.signal(signal.SIGHUP)
            await server.wait_for("reloaded 1 API keys")
            ws = await connect(f"ws://127.0.0.1:{port}", additional_headers=new)
            await ws.send(encode_client(Hello(version=1)))
            welcome = decode_server(await ws.recv())
            await ws.close()
            server.signal(signal.SIGTERM)
            return before.value.response.status_code, welcome, await server.exit_code()

    status, welcome, code = run(main())
    assert status == 401 and isinstance(welcome, Welcome) and code == 0


def test_sigterm_while_the_voice_loads_exits_within_a_couple_of_seconds(launch):
    async def main():
        async with launch(SLOW_LOAD_S="120") as server:
            await server.wait_for("loading the voice slowly")
            sent_at = server.signal(signal.SIGTERM)
            code = await server.exit_code(timeout=30)
            return code, time.monotonic() - sent_at, server.log

    code, took, log = run(main())
    assert code == 128 + signal.SIGTERM, log
    assert took < EXIT_S, log
    assert "SIGTERM during start-up: exiting" in log
    assert "listening" not in log


@pytest.mark.slow
def test_sigterm_while_the_real_voice_loads_exits_within_a_couple_of_seconds(tmp_path):
    async def main():
        argv = [sys.executable, "-m", "voxlive", "serve", "--voices", "en", "--port", "0"]
        async with serving(argv, environment(), tmp_path) as server:
            await server.wait_for("loading voices")
            sent_at = server.signal(signal.SIGTERM)
            code = await server.exit_code(timeout=60)
            return code, time.monotonic() - sent_at, server.log

    code, took, log = run(main())
    assert code == 128 + signal.SIGTERM, log
    assert took < EXIT_S, log
