"""``voxlive bench scaleout``: what the Redis path costs and what a second worker buys.

Starts its own processes on this machine, all on the bundled voice: a redis-server on
a free port (or the one ``--redis`` names), a ``--role all`` server, a gateway, and the
workers (``--role worker --workers N``, which shares the cores out between them). Then:

- **latency**: one session each on ``--role all`` and on the gateway (one worker),
  alternating, the same short sentence with fresh seeds; first audio p50 of each and
  the difference (the Redis path's added latency);
- **throughput**: closed-loop load (``--sessions`` × ``--utterances``) through the
  gateway with 1 worker, then with 2 (``--workers 2``), and on ``--role all`` for
  reference, ``--repeats`` times in turn; audio seconds per wall second of each (the
  median of its runs) and the ratio 2 ÷ 1.

Every process runs with the watermark as shipped, without the per-address utterance
rate limit (all load comes from one address) and without the cache of repeated lines
(the load repeats its sentences). Nothing else should run meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from voxlive.client import Client

from .server import measure, run_load

__all__ = ["bench_scaleout", "format_scaleout"]

SENTENCE = "Thanks for the follow, and welcome to the stream!"
START_TIMEOUT_S = 240.0
BENCH_FLAGS = [
    *("--utterances-per-s-per-ip", "0", "--utterances-per-s-per-key", "0"),
    *("--cache-bytes", "0"),
]
"""Every utterance comes from this machine's one address: the per-address limit is off;
the load repeats its sentences: the cache of repeated lines is off."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def _process(args: list[str], ready_ports: list[int], env: dict[str, str]) -> Iterator[None]:
    """A ``voxlive serve`` process, ready on every one of ``ready_ports``; stopped on exit."""
    cmd = [sys.executable, "-m", "voxlive", "serve", "--host", "127.0.0.1", *BENCH_FLAGS, *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + START_TIMEOUT_S
        while not all(_ready(p) for p in ready_ports):
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}")
            if time.monotonic() > end:
                raise RuntimeError(f"{' '.join(args)} not ready after {START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server on PATH: install it, or pass --redis URL")
    port = _free_port()
    with tempfile.TemporaryDirectory() as work:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", work],
            stdout=subprocess.DEVNULL,
        )
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


async def _latency(all_url: str, gateway_url: str, rounds: int) -> dict[str, Any]:
    a = await Client.connect(all_url)
    g = await Client.connect(gateway_url)
    direct: list[float] = []
    redis_path: list[float] = []
    base = int(time.time()) % (1 << 30)
    try:
        for i in range(rounds + 1):  # the first round warms both paths
            first = [
                await measure(c, SENTENCE, 60.0, seed=base + 2 * i + k, cache=False)
                for k, c in enumerate((a, g) if i % 2 else (g, a))
            ]
            if i % 2 == 0:
                first.reverse()
            if i and all(s.first_audio_ms is not None for s in first):
                direct.append(first[0].first_audio_ms or 0.0)
                redis_path.append(first[1].first_audio_ms or 0.0)
    finally:
        await a.close()
        await g.close()
    p50_all, p50_gateway = statistics.median(direct), statistics.median(redis_path)
    return {
        "rounds": len(direct),
        "role_all_first_audio_ms_p50": round(p50_all, 1),
        "gateway_first_audio_ms_p50": round(p50_gateway, 1),
        "added_ms": round(p50_gateway - p50_all, 1),
    }


def bench_scaleout(
    *,
    redis_url: str | None = None,
    rounds: int = 20,
    sessions: int = 8,
    utterances: int = 4,
    repeats: int = 2,
) -> dict[str, Any]:
    """Measure (module docstring); returns the report.

    Throughput is measured ``repeats`` times in turn (1 worker, 2 workers, ``--role all``;
    the workers started afresh each time) and each figure is the median of its runs.
    """
    env = dict(os.environ)
    report: dict[str, Any] = {"cores": os.cpu_count(), "sessions": sessions}
    report["utterances_per_session"] = utterances
    runs: dict[str, list[dict[str, Any]]] = {"role_all": [], "one": [], "two": []}
    with _redis(redis_url) as url:
        common = ["--redis", url]
        all_port, gateway_port, worker_port = _free_port(), _free_port(), _free_port()
        with (
            _process(["--port", str(all_port)], [all_port], env),
            _process(
                ["--role", "gateway", "--port", str(gateway_port), *common], [gateway_port], env
            ),
        ):
            all_url, gateway_url = f"ws://127.0.0.1:{all_port}", f"ws://127.0.0.1:{gateway_port}"
            for repeat in range(repeats):
                with _process(
                    ["--role", "worker", "--port", str(worker_port), *common], [worker_port], env
                ):
                    if repeat == 0:
                        report["latency"] = asyncio.run(_latency(all_url, gateway_url, rounds))
                    runs["one"].append(asyncio.run(run_load(gateway_url, sessions, utterances)))
                ports = [worker_port, worker_port + 1]
                args = ["--role", "worker", "--workers", "2", "--port", str(worker_port)]
                with _process([*args, *common], ports, env):
                    runs["two"].append(asyncio.run(run_load(gateway_url, sessions, utterances)))
                runs["role_all"].append(asyncio.run(run_load(all_url, sessions, utterances)))
    figures = {k: [one_figure(r) for r in v] for k, v in runs.items()}
    median = {k: round(statistics.median(v), 2) for k, v in figures.items()}
    report["throughput"] = {
        "role_all_audio_s_per_s": median["role_all"],
        "one_worker_audio_s_per_s": median["one"],
        "two_workers_audio_s_per_s": median["two"],
        "two_over_one": round(median["two"] / max(median["one"], 1e-9), 2),
        "runs_audio_s_per_s": figures,
        "failed": {k: sum(r["failed"] for r in v) for k, v in runs.items()},
        "errors": {k: [r["errors"] for r in v] for k, v in runs.items()},
    }
    return report


def one_figure(run: dict[str, Any]) -> float:
    return float(run["audio_s_per_s"])


def format_scaleout(report: dict[str, Any]) -> str:
    lat, thr = report["latency"], report["throughput"]
    return (
        f"first audio, one session ({lat['rounds']} rounds): --role all p50 "
        f"{lat['role_all_first_audio_ms_p50']} ms, gateway + worker p50 "
        f"{lat['gateway_first_audio_ms_p50']} ms (added {lat['added_ms']} ms)\n"
        f"throughput, {report['sessions']} sessions × {report['utterances_per_session']} on "
        f"{report['cores']} cores, audio s per s: --role all {thr['role_all_audio_s_per_s']}, "
        f"1 worker {thr['one_worker_audio_s_per_s']}, 2 workers "
        f"{thr['two_workers_audio_s_per_s']} (2 ÷ 1 = {thr['two_over_one']})"
    )
