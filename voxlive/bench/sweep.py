"""``voxlive bench server --sweep``: capacity, then the latency curve under it.

Three phases against one running server, in one run, after a warm-up (the capacity
phase's closed loop, not reported: a fresh server builds kernels in its first batches):

1. **one session**: ``FIRST_AUDIO_SENTENCE`` spoken again and again through a
   single session — first audio with nothing else running (the sentence
   ``voxlive bench engine`` times its first chunk on);
2. **capacity**: the closed loop (``sessions`` × ``utterances``) — utterances/s,
   audio s/s and the server's CPU at saturation;
3. **curve**: open loop (Poisson arrivals) at each fraction of that capacity
   (default 20 %, 50 %, 70 %, 90 %): first-audio percentiles and losses.

With ``--engine-baseline``, ``voxlive bench engine`` runs first (in a process of
its own while the server idles, on the same sentences) and the report adds the
ratios the server is judged by: throughput at capacity over the engine's best
batch, CPU seconds per audio second over the engine's, and one-session first
audio minus the engine's first chunk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .server import run_load
from .server_metrics import format_server, shown
from .texts import FIRST_AUDIO_SENTENCE

__all__ = ["DEFAULT_LOADS", "engine_baseline", "format_sweep", "run_sweep"]

DEFAULT_LOADS: Final = (0.2, 0.5, 0.7, 0.9)
SINGLE_UTTERANCES: Final = 8
"""Utterances of the one-session phase (after one more as warm-up)."""
_CURVE_KEYS: Final = ("completed", "failed", "errors", "first_audio_ms", "total_ms", "server")


async def run_sweep(
    url: str,
    sessions: int,
    utterances: int,
    texts: Sequence[str],
    *,
    loads: Sequence[float] = DEFAULT_LOADS,
    baseline: dict[str, Any] | None = None,
    seed: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run the three phases; returns the JSON-ready report.

    Args:
        url, sessions, utterances, texts: as :func:`~.server.run_load`.
        loads: fractions of the measured capacity to offer in open loop.
        baseline: ``voxlive bench engine``'s report, for the ratios.
        seed: seed of the open-loop schedules.
        options: the rest of :func:`~.server.run_load`'s keyword arguments.

    Raises:
        ValueError: a load is not in (0, 1.5], or as :func:`~.server.run_load`.
    """
    if not loads or any(not 0 < f <= 1.5 for f in loads):
        raise ValueError("--loads must be fractions of capacity in (0, 1.5]")
    # Warm-up, not reported: a fresh server's first batches build its kernels.
    warm = await run_load(url, sessions, utterances, None, texts, **options)
    await run_load(url, 1, 1, None, [FIRST_AUDIO_SENTENCE], **options)
    single = await run_load(url, 1, SINGLE_UTTERANCES, None, [FIRST_AUDIO_SENTENCE], **options)
    capacity = await run_load(url, sessions, utterances, None, texts, **options)
    curve = []
    per_s = capacity["utterances_per_s"]
    for fraction in loads:
        rate = max(per_s * fraction, 0.01)
        load = await run_load(url, sessions, utterances, rate, texts, seed=seed, **options)
        point = {"load": fraction, "rate": round(rate, 3)}
        point.update({k: load[k] for k in _CURVE_KEYS})
        curve.append(point)
    report: dict[str, Any] = {
        "mode": "sweep",
        "sessions": sessions,
        "utterances_per_session": utterances,
        "warm_up_completed": warm["completed"],
        "single": {k: single[k] for k in ("completed", "first_audio_ms", "rtf")},
        "capacity": capacity,
        "curve": curve,
    }
    if baseline is not None:
        report["engine"] = baseline["engine"]
        report["ratios"] = _ratios(baseline["engine"], single, capacity)
    return report


def _ratios(engine: dict[str, Any], single: dict[str, Any], cap: dict[str, Any]) -> dict[str, Any]:
    best = max(engine["audio_s_per_s"], key=lambda b: engine["audio_s_per_s"][b])
    server = cap.get("server") or {}
    cpu, engine_cpu = server.get("cpu_s_per_audio_s"), engine["cpu_s_per_audio_s"][best]
    first = single["first_audio_ms"]["p50"]
    return {
        "engine_best_batch": int(best),
        "throughput": round(cap["audio_s_per_s"] / engine["audio_s_per_s"][best], 3),
        "cpu_per_audio_s": None if cpu is None else round(cpu / engine_cpu, 3),
        "first_audio_minus_first_chunk_ms": None
        if first is None
        else round(first - engine["first_chunk_ms"]["p50"], 1),
    }


def engine_baseline(texts: Path | None, timeout_s: float = 900.0) -> dict[str, Any]:
    """``voxlive bench engine --no-piper --json`` in a child process (same sentences).

    Raises:
        RuntimeError: it failed or printed no report.
    """
    argv = [sys.executable, "-m", "voxlive", "bench", "engine", "--no-piper", "--json"]
    argv += ["--batches", "1,8,16", "--repeats", "8"]
    if texts is not None:
        argv += ["--texts", str(texts)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"voxlive bench engine failed: {done.stderr.strip()[-500:]}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError("voxlive bench engine printed no JSON report") from exc
    return report


def format_sweep(report: dict[str, Any]) -> str:
    """A few human-readable lines of a sweep report."""
    cap, single = report["capacity"], report["single"]
    lines = [
        f"one session: first audio p50 {shown(single['first_audio_ms']['p50'])} ms, "
        f"p95 {shown(single['first_audio_ms']['p95'])} ms",
        f"capacity ({report['sessions']} sessions × {report['utterances_per_session']}, "
        f"closed loop): {cap['utterances_per_s']:.2f} utterances/s, "
        f"{cap['audio_s_per_s']:.2f} audio s/s, first audio p95 "
        f"{shown(cap['first_audio_ms']['p95'])} ms",
    ]
    if cap.get("server") is not None:
        lines.append("  server at capacity: " + format_server(cap["server"]))
    lines.append("load  rate/s  first audio p50 / p95 / p99 ms   completed  errors")
    for p in report["curve"]:
        fa = p["first_audio_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in p["errors"].items()) or "-"
        lines.append(
            f"{p['load']:>4.0%}  {p['rate']:>6.2f}  "
            f"{shown(fa['p50']):>7} / {shown(fa['p95']):>7} / {shown(fa['p99']):>7}"
            f"   {p['completed']:>4}/{p['completed'] + p['failed']:<4}  {errors}"
        )
    if "ratios" in report:
        r, e = report["ratios"], report["engine"]
        lines.append(
            f"engine alone: {e['audio_s_per_s'][str(r['engine_best_batch'])]:.2f} audio s/s "
            f"(batch {r['engine_best_batch']}), first chunk p50 {e['first_chunk_ms']['p50']:.1f} ms"
        )
        extra = r["first_audio_minus_first_chunk_ms"]
        lines.append(
            f"server / engine: throughput {r['throughput']}×, CPU per audio s "
            f"{r['cpu_per_audio_s']}×, first audio "
            + ("n/a" if extra is None else f"{extra:+.1f} ms")
            + " over the engine's first chunk"
        )
    return "\n".join(lines)
