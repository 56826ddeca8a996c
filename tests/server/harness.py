"""A real server on a free port, and a minimal raw-protocol client, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from voxlive.engine.interface import Engine
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.voice import Voice
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import AudioFrame, AudioSpec, Done, Hello, Welcome
from voxlive.server.app import App
from voxlive.server.config import Config

T = TypeVar("T")

UNLIMITED: dict[str, Any] = {
    "utterances_per_s_per_ip": 0.0,
    "utterances_per_s_per_key": 0.0,
    "registrations_per_hour": 0,
    "messages_per_s": 0.0,
    "watermark": False,
}
"""Rate limits off: tests send bursts from one address that a deployed server's
defaults refuse (``test_limits.py`` turns each back on through ``overrides``). The
built-in voices unmarked, so that tests can compare the server's audio with the
engine's (``test_watermark.py`` turns it on; registered voices are marked anyway)."""

_load_speaker = SpeakerEncoder.load
"""The real loader, kept apart from tests that redirect ``SpeakerEncoder.load`` here."""


@functools.cache
def shared_speaker() -> SpeakerEncoder:
    """One speaker encoder for every test server (loading it takes a while)."""
    return _load_speaker()


@contextlib.asynccontextmanager
async def run_server(
    voice: Voice | Engine, speaker: SpeakerEncoder | None = None, **overrides: Any
) -> AsyncIterator[App]:
    """Start an App on a free port in this loop; stop it (gracefully) on exit.

    ``voice``: a voice or any engine; ``speaker``: the speaker encoder (the shared
    real one by default).
    """
    config = Config(port=0, **(UNLIMITED | overrides))
    stop = asyncio.Event()
    ready = asyncio.Event()
    app = App(config, voice, speaker or shared_speaker())
    task = asyncio.create_task(app.serve(stop, lambda _: ready.set()))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def url(app: App) -> str:
    return f"ws://127.0.0.1:{app.port}"


async def open_session(app: App, audio: AudioSpec | None = None, **kw: Any) -> ClientConnection:
    ws = await connect(url(app), max_size=None, **kw)
    await ws.send(encode_client(Hello(version=1, audio=audio or AudioSpec())))
    welcome = decode_server(await ws.recv())
    assert isinstance(welcome, Welcome), welcome
    return ws


async def collect(
    ws: ClientConnection, ids: set[str], timeout: float = 60.0
) -> tuple[list[Any], dict[int, list[AudioFrame]], dict[str, Done]]:
    """Read until every id in ``ids`` is done; returns (messages, frames by stream, done by id)."""
    messages: list[Any] = []
    frames: dict[int, list[AudioFrame]] = {}
    done: dict[str, Done] = {}
    async with asyncio.timeout(timeout):
        while set(done) < ids:
            msg = decode_server(await ws.recv())
            if isinstance(msg, AudioFrame):
                frames.setdefault(msg.stream, []).append(msg)
            else:
                messages.append(msg)
                if isinstance(msg, Done):
                    done[msg.id] = msg
    return messages, frames, done


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a fresh loop (no pytest plugin needed)."""
    return asyncio.run(coro)
