"""A session that floods control messages is read no faster than ``messages_per_s``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.asyncio.client import connect

from .harness import run, run_server

pytestmark = pytest.mark.tiny_voice

RATE, BURST = 100.0, 50


def test_a_flood_is_read_at_the_session_rate_and_the_rest_waits_in_its_socket(server_voice):
    async def main() -> tuple[int, int, float, str]:
        async with run_server(server_voice, messages_per_s=RATE, message_burst=BURST) as app:
            async with connect(f"ws://127.0.0.1:{app.port}") as ws:
                await ws.send(json.dumps({"type": "hello", "version": 1}))
                await ws.recv()
                answers = 0

                async def read() -> None:
                    nonlocal answers
                    async for _ in ws:
                        answers += 1

                reader = asyncio.create_task(read())
                t0 = time.monotonic()
                sent = 0
                # Unknown ids to cancel: each one the server reads gets one error back.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):  # sends block once TCP backs up
                        while True:
                            await ws.send(json.dumps({"type": "cancel", "id": f"x{sent}"}))
                            sent += 1
                            if sent % 100 == 0:
                                await asyncio.sleep(0)
                elapsed = time.monotonic() - t0
                await asyncio.sleep(0.3)  # answers in flight
                read_by_server = answers
                reader.cancel()
                ws.transport.abort()  # no closing handshake behind the unread flood
                # Another session is served as usual meanwhile.
                async with connect(f"ws://127.0.0.1:{app.port}") as other:
                    await other.send(json.dumps({"type": "hello", "version": 1}))
                    welcome = json.loads(await other.recv())["type"]
            return sent, read_by_server, elapsed, welcome

    sent, read, elapsed, welcome = run(main())
    assert welcome == "welcome"
    assert sent > 5 * read  # most of the flood was never read
    assert read <= BURST + RATE * (elapsed + 0.3) + 20
    assert read >= BURST  # the burst itself is read at once
