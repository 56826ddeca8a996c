"""``voxlive bench hostile`` and ``voxlive bench soak``: good clients beside bad ones.

The bad clients are those a public server meets: one that never reads its audio, slow
ones that send a frame a byte at a time, hundreds of idle connections, a ``speak``
flood, and upload bombs (reference clips over the cap, a WAV header declaring 4 GB).
They connect from other loopback addresses than the good clients (127.0.0.2 …), as
other hosts would, so per-address limits apply to them and not to the good clients.

``run_hostile`` measures the good clients' first audio alone and beside the bad
clients, alternating the two conditions; ``run_soak`` keeps a mix running for minutes
and reads the server's memory, connections and tasks from ``/metrics``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import statistics
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .server import run_load
from .server_metrics import read_metrics

__all__ = ["Hostiles", "run_hostile", "run_soak"]

HELLO = json.dumps({"type": "hello", "version": 1})
NEVER_READS_AUDIO = {"sample_rate": 48000, "format": "f32le"}
SERVER_FIGURES = (
    "voxlive_slow_consumer_closes_total",
    "voxlive_send_stalls_total",
    "voxlive_sessions_opened_total",
)
"""What the server counted of the bad clients (``/metrics``), reported as differences."""
LONG = (
    "This is a long announcement that nobody will ever listen to, read again and again "
    "while the client that asked for it keeps its socket open and never reads a byte. "
) * 8


@dataclass
class Hostiles:
    """How many bad clients of each kind, and what became of them."""

    never_reads: int = 2
    slow_senders: int = 10
    idle: int = 500
    flooders: int = 1
    bombers: int = 1
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per kind: close codes and error codes seen, counted."""

    def note(self, kind: str, what: str) -> None:
        counts = self.outcomes.setdefault(kind, {})
        counts[what] = counts.get(what, 0) + 1


def _source(i: int) -> tuple[str, int]:
    """Loopback source address ``i`` (127.0.0.2, 127.0.0.3, …): another host, per address."""
    return (f"127.0.{(i // 250) % 250}.{2 + i % 250}", 0)


async def _open(url: str, i: int, hello: str = HELLO, **kw: Any) -> ClientConnection:
    ws = await connect(url, max_size=None, local_addr=_source(i), open_timeout=10, **kw)
    await ws.send(hello)
    return ws


async def _never_reads(url: str, i: int, stop: asyncio.Event, h: Hostiles) -> None:
    """Asks for long speech, never reads it: the server must pause, then close 4008."""
    try:
        # The most bytes a second of audio can take (48 kHz float), so the socket's
        # buffers fill fast; the library stops reading once one message is queued.
        hello = json.dumps({"type": "hello", "version": 1, "audio": NEVER_READS_AUDIO})
        ws = await _open(url, i, hello, max_queue=1)
    except (OSError, InvalidHandshake) as exc:
        h.note("never_reads", f"refused:{type(exc).__name__}")
        return
    try:
        for k in range(8):
            await ws.send(json.dumps({"type": "speak", "id": f"n{k}", "text": LONG}))
        # It never reads, so it never sees the server's close (4008) either: the server's
        # own count says (voxlive_slow_consumer_closes_total, in the report).
        await stop.wait()
        h.note("never_reads", "lasted")
    except ConnectionClosed:
        h.note("never_reads", "closed while sending")
    finally:
        ws.transport.abort()


async def _until_closed_or(ws: ClientConnection, stop: asyncio.Event) -> None:
    closed = asyncio.create_task(ws.wait_closed())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
    for t in (closed, stopped):
        t.cancel()


async def _slow_sender(url: str, i: int, stop: asyncio.Event, h: Hostiles) -> None:
    """A valid handshake, then a hello frame sent one byte every 200 ms, over and over."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=_source(i))
    except OSError:
        h.note("slow_senders", "refused")
        return
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            h.note("slow_senders", "handshake refused")
            return
        frame = _masked_text_frame(HELLO.encode())
        while not stop.is_set():
            for byte in frame:
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
                if stop.is_set() or reader.at_eof():
                    break
            if reader.at_eof():
                h.note("slow_senders", "closed by server")
                return
        h.note("slow_senders", "lasted")
    except (OSError, asyncio.IncompleteReadError, TimeoutError, RuntimeError):
        # RuntimeError: uvloop's word for writing to a transport the server closed.
        h.note("slow_senders", "closed by server")
    finally:
        writer.close()


def _masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else b""
    if not header:
        header = bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(payload))
    return header + mask + bytes(b ^ mask[k % 4] for k, b in enumerate(payload))


async def _idle(url: str, i: int, stop: asyncio.Event, h: Hostiles) -> None:
    """Says hello, then nothing: the server may keep it or close it (idle timeout)."""
    try:
        ws = await _open(url, i)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        h.note("idle", f"refused:{type(exc).__name__}")
        return
    try:
        await ws.recv()  # welcome; then nothing is read or sent
        await _until_closed_or(ws, stop)
    except ConnectionClosed:
        pass
    finally:
        h.note("idle", f"close:{ws.close_code}")
        await ws.close()


async def _flood(url: str, i: int, stop: asyncio.Event, h: Hostiles) -> None:
    """``speak`` as fast as the socket takes it, reading the answers."""
    try:
        ws = await _open(url, i)
    except (OSError, InvalidHandshake) as exc:
        h.note("flooders", f"refused:{type(exc).__name__}")
        return

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for msg in ws:
                if isinstance(msg, str) and '"error"' in msg:
                    h.note("flooders", f"error:{json.loads(msg).get('code')}")

    reader = asyncio.create_task(read())
    k = 0
    try:
        while not stop.is_set() and not reader.done():
            await ws.send(json.dumps({"type": "speak", "id": f"f{k % 10_000}", "text": "Spam!"}))
            k += 1
            if k % 50 == 0:
                await asyncio.sleep(0)
    except ConnectionClosed:
        pass
    finally:
        h.note("flooders", f"sent:{min(k, 10**9) // 1000 * 1000}+")
        await ws.close()
        await reader


async def _bomb(url: str, i: int, stop: asyncio.Event, h: Hostiles) -> None:
    """Reference uploads over the cap, and WAV headers declaring 4 GB, in a loop."""
    lying = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + struct.pack("<I", 16)
    lying += struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16) + b"data"
    lying += struct.pack("<I", 0xFFFFFF00) + b"\x00" * 4096
    chunk = os.urandom(48 * 1024)
    n = 0
    while not stop.is_set():
        try:
            ws = await _open(url, i)
        except (OSError, InvalidHandshake, InvalidStatus) as exc:
            h.note("bombers", f"refused:{type(exc).__name__}")
            await asyncio.sleep(1)
            continue
        try:
            await ws.recv()  # welcome
            n += 1
            rid = f"b{n}"
            msg = {"type": "voice.register", "id": rid, "seq": 0, "final": True, "audio": lying}
            await ws.send(_pack(msg))
            for seq in range(400):  # 19 MB, over the 10 MiB cap
                last = seq == 399
                msg = {"type": "voice.register", "id": f"{rid}x", "seq": seq, "final": last}
                await ws.send(_pack(msg | {"audio": chunk}))
            async with asyncio.timeout(30):
                async for answer in ws:
                    if isinstance(answer, str):
                        code = json.loads(answer).get("code")
                        h.note("bombers", f"error:{code}")
                        if code == "too_large":
                            break
        except (ConnectionClosed, TimeoutError):
            h.note("bombers", f"close:{ws.close_code}")
        finally:
            await ws.close()


def _pack(msg: dict[str, Any]) -> bytes:
    import msgpack  # the client's own dependency

    data: bytes = msgpack.packb(msg, use_bin_type=True)
    return data


Kind = Callable[[str, int, asyncio.Event, Hostiles], Coroutine[Any, Any, None]]


async def _start(url: str, h: Hostiles, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    kinds: list[tuple[Kind, int]] = [
        (_never_reads, h.never_reads),
        (_slow_sender, h.slow_senders),
        (_idle, h.idle),
        (_flood, h.flooders),
        (_bomb, h.bombers),
    ]
    tasks: list[asyncio.Task[None]] = []
    i = 0
    for kind, count in kinds:
        for _ in range(count):
            tasks.append(asyncio.create_task(kind(url, i, stop, h)))
            i += 1
            if i % 50 == 0:
                await asyncio.sleep(0.05)  # connect in waves, as real crowds arrive
    await asyncio.sleep(1.0)  # let them settle in before the good clients start
    return tasks


async def _stop(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=10)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in done:
        if not t.cancelled() and (exc := t.exception()) is not None:
            # A bad client that failed in a way of its own: counted, never hidden.
            raise RuntimeError(f"hostile client failed: {exc!r}") from exc


KINDS = ("never_reads", "slow_senders", "idle", "flooders", "bombers")


@contextlib.asynccontextmanager
async def _elsewhere(url: str, h: Hostiles) -> AsyncIterator[None]:
    """The bad clients in a process of their own (their event loop is not the good
    clients', whose timings it would delay) while the block runs; their outcomes are
    added to ``h.outcomes``."""
    spec = json.dumps({k: getattr(h, k) for k in KINDS})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voxlive.bench.hostile",
        url,
        spec,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    ready = await proc.stdout.readline()
    try:
        if ready.strip() != b"ready":
            raise RuntimeError(f"the hostile clients did not start: {ready!r}")
        yield
    finally:
        proc.stdin.close()
        out = await proc.stdout.read()
        if await proc.wait() != 0:
            raise RuntimeError(f"the hostile clients failed (exit {proc.returncode})")
        for kind, counts in json.loads(out or b"{}").items():
            for what, n in counts.items():
                h.outcomes.setdefault(kind, {})
                h.outcomes[kind][what] = h.outcomes[kind].get(what, 0) + n


async def _hostiles_main(url: str, spec: dict[str, int]) -> None:
    """The child process: start the bad clients, stop them when stdin closes."""
    h = Hostiles()
    for kind in KINDS:
        setattr(h, kind, int(spec[kind]))
    stop = asyncio.Event()
    tasks = await _start(url, h, stop)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await _stop(tasks, stop)
    print(json.dumps(h.outcomes), flush=True)


async def run_hostile(
    url: str,
    *,
    sessions: int = 4,
    rate: float = 2.0,
    utterances: int = 24,
    rounds: int = 2,
    hostiles: Hostiles | None = None,
    seed: int = 5,
) -> dict[str, Any]:
    """Good clients' first audio alone and beside the bad clients, ``rounds`` times each.

    The good load is open loop (``rate`` utterances/s over ``sessions`` sessions,
    ``utterances`` in all, the same schedule every time).
    """
    h = hostiles or Hostiles()
    alone: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    server: dict[str, float] = {}
    for _ in range(rounds):
        alone.append(await _good(url, sessions, rate, utterances, seed))
        before = await read_metrics(url) or {}
        async with _elsewhere(url, h):
            beside.append(await _good(url, sessions, rate, utterances, seed))
        after = await read_metrics(url) or {}
        for name in SERVER_FIGURES:
            if name in after:
                server[name] = server.get(name, 0) + after[name] - before.get(name, 0)
        for name, value in after.items():
            if name.startswith("voxlive_utterance_errors_total{"):
                server[name] = server.get(name, 0) + value - before.get(name, 0)
    p95_alone = statistics.median(_p95(r) for r in alone)
    p95_beside = statistics.median(_p95(r) for r in beside)
    return {
        "good": {"sessions": sessions, "rate": rate, "utterances": utterances, "rounds": rounds},
        "hostiles": {
            "never_reads": h.never_reads,
            "slow_senders": h.slow_senders,
            "idle": h.idle,
            "flooders": h.flooders,
            "bombers": h.bombers,
        },
        "first_audio_p95_ms": {"alone": p95_alone, "beside_hostiles": p95_beside},
        "ratio": round(p95_beside / p95_alone, 3) if p95_alone else None,
        "good_failed": sum(r["failed"] for r in alone + beside),
        "outcomes": h.outcomes,
        "server": server,
        "runs": {"alone": alone, "beside_hostiles": beside},
    }


async def _good(url: str, sessions: int, rate: float, utterances: int, seed: int) -> dict[str, Any]:
    per_session = max(1, utterances // sessions)
    return await run_load(url, sessions, per_session, rate=rate, seed=seed)


def _p95(report: dict[str, Any]) -> float:
    value = report["first_audio_ms"]["p95"]
    return float(value) if value is not None else float("inf")


async def run_soak(
    url: str,
    *,
    minutes: float = 3.0,
    sessions: int = 4,
    rate: float = 2.0,
    hostiles: Hostiles | None = None,
) -> dict[str, Any]:
    """Good load in rounds beside bad clients that come and go, for ``minutes``.

    Reads ``/metrics`` after the first round (the start: caches and kernels warm) and
    after the last, once every bad client has gone: resident memory, open connections,
    the event loop's tasks.
    """
    h = hostiles or Hostiles(idle=100, slow_senders=5)
    deadline = time.monotonic() + minutes * 60
    rounds: list[dict[str, Any]] = []
    start: dict[str, float] | None = None
    while True:
        async with _elsewhere(url, h):
            rounds.append(await _good(url, sessions, rate, sessions * 4, len(rounds)))
        if start is None:
            await asyncio.sleep(2.0)  # the bad clients' sockets closed
            start = await read_metrics(url) or {}
        if time.monotonic() >= deadline:
            break
    await asyncio.sleep(2.0)
    end = await read_metrics(url) or {}
    keys = {
        "rss_bytes": "process_resident_memory_bytes",
        "connections": "voxlive_sessions",
        "tasks": "voxlive_event_loop_tasks",
    }
    start_v = {k: start.get(m) for k, m in keys.items()}
    end_v = {k: end.get(m) for k, m in keys.items()}
    rss0, rss1 = start_v["rss_bytes"], end_v["rss_bytes"]
    return {
        "minutes": minutes,
        "rounds": len(rounds),
        "good_utterances": sum(r["utterances"] for r in rounds),
        "good_failed": sum(r["failed"] for r in rounds),
        "start": start_v,
        "end": end_v,
        "rss_drift": round(rss1 / rss0 - 1, 4) if rss0 and rss1 else None,
        "outcomes": h.outcomes,
    }


def format_hostile(r: dict[str, Any]) -> str:
    fa = r["first_audio_p95_ms"]
    return (
        f"good clients' p95 first audio: alone {fa['alone']:.0f} ms, beside hostile clients "
        f"{fa['beside_hostiles']:.0f} ms (×{r['ratio']}); good utterances failed: "
        f"{r['good_failed']}\nhostile clients: {r['hostiles']}\noutcomes: {r['outcomes']}"
        f"\nthe server counted: {r['server']}"
    )


def format_soak(r: dict[str, Any]) -> str:
    return (
        f"soak {r['minutes']} min, {r['rounds']} rounds, {r['good_utterances']} good "
        f"utterances ({r['good_failed']} failed); RSS {r['start']['rss_bytes']} → "
        f"{r['end']['rss_bytes']} (drift {r['rss_drift']}); connections "
        f"{r['start']['connections']} → {r['end']['connections']}; tasks "
        f"{r['start']['tasks']} → {r['end']['tasks']}"
    )


if __name__ == "__main__":
    asyncio.run(_hostiles_main(sys.argv[1], json.loads(sys.argv[2])))
