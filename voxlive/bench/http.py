"""``voxlive bench http``: the HTTP speech API's first byte beside the WebSocket's first
audio, on one running server, alternating, one request at a time.

Each round speaks the same short sentence once over a WebSocket session (time from
``speak`` to the first audio frame) and once as ``POST /v1/audio/speech`` with
``response_format: pcm`` at the voice's own rate (time from sending the request to
the first byte of the body). Seeds are drawn afresh, so nothing replays a line the
server kept (repeated-line cache).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from voxlive.client import Client

from .server import measure

__all__ = ["bench_http", "format_http"]

SENTENCE = "Thanks for the follow!"


async def _http_first_byte(host: str, port: int, body: dict[str, Any]) -> tuple[float, int]:
    """ms from sending the request to the first body byte, and the body's length."""
    payload = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    t0 = time.perf_counter()
    writer.write(head + payload)
    await writer.drain()
    headers = await reader.readuntil(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {(await reader.read()).decode(errors='replace')}")
    size = int((await reader.readline()).strip(), 16)  # the first chunk
    first_ms = (time.perf_counter() - t0) * 1000
    total = size
    await reader.readexactly(size + 2)
    while size:
        size = int((await reader.readline()).strip(), 16)
        total += size
        await reader.readexactly(size + 2)
    writer.close()
    return first_ms, total


async def bench_http(url: str, rounds: int = 20, text: str = SENTENCE) -> dict[str, Any]:
    """Measure (module docstring); returns the report."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 8765
    client = await Client.connect(url)
    rate = client.sample_rate
    ws_ms: list[float] = []
    http_ms: list[float] = []
    base = random.randrange(1 << 30)  # seeds no earlier run used: nothing replays
    try:
        for i in range(rounds + 1):  # the first round warms both paths
            sample = await measure(client, text, 60.0, seed=base + 2 * i)
            first, _ = await _http_first_byte(
                host,
                port,
                {
                    "model": "voxlive",
                    "input": text,
                    "voice": "en",
                    "response_format": "pcm",
                    "sample_rate": rate,
                    "seed": base + 2 * i + 1,
                },
            )
            if i and sample.first_audio_ms is not None:
                ws_ms.append(sample.first_audio_ms)
                http_ms.append(first)
    finally:
        await client.close()
    ws, http = statistics.median(ws_ms), statistics.median(http_ms)
    return {
        "url": url,
        "text": text,
        "rounds": len(ws_ms),
        "sample_rate": rate,
        "ws_first_audio_ms": {"p50": round(ws, 1), "max": round(max(ws_ms), 1)},
        "http_first_byte_ms": {"p50": round(http, 1), "max": round(max(http_ms), 1)},
        "http_minus_ws_ms": round(http - ws, 1),
    }


def format_http(report: dict[str, Any]) -> str:
    return (
        f"{report['rounds']} rounds of {report['text']!r} at {report['sample_rate']} Hz: "
        f"WebSocket first audio p50 {report['ws_first_audio_ms']['p50']} ms, HTTP first "
        f"byte p50 {report['http_first_byte_ms']['p50']} ms "
        f"(difference {report['http_minus_ws_ms']} ms)"
    )
