"""``voxlive bench server``: a load generator for a running server.

Two ways to offer load, both with ``sessions`` WebSocket connections and
``utterances`` utterances per session:

- closed loop (default): every session sends its utterances one after another, the
  next as soon as the previous one is ``done``;
- open loop (``rate``): utterances arrive as a Poisson process of ``rate`` per second
  in total, each to a random session (every session still gets exactly
  ``utterances``), and nobody waits for ``done`` before sending the next.

Per utterance it measures first-audio latency (send → first audio frame), total
latency (send → ``done``) and the audio received; the report gives percentiles,
throughput and the aggregate real-time factor (wall time / audio seconds). Every wait
is bounded by ``timeout_s``, so a run always ends.

A danmaku-like load (``repeat_share``): that share of the utterances says one of the
first ``repeat_lines`` texts with the server's default seed (a live chat's common
comments, which its cache of repeated lines can replay); the others each carry a seed
of their own, so none repeats. The report adds the server's cache hits and misses.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from voxlive.client import Client, ClientError, Utterance
from voxlive.protocol.codec import SAMPLE_WIDTH
from voxlive.protocol.messages import AudioFrame, Done, Error

from .server_metrics import format_server, read_metrics, server_figures, shown
from .texts import load_texts

__all__ = ["Sample", "cache_figures", "format_report", "run_load", "summarize"]

DEFAULT_TIMEOUT_S: Final = 120.0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


@dataclass(slots=True)
class Sample:
    """What one utterance of the run measured."""

    status: str = "error"
    """``done.status``, or ``error`` when no ``done`` came (timeout, lost connection)."""
    first_audio_ms: float | None = None
    """Send → first audio frame, in ms; ``None`` without audio."""
    total_ms: float | None = None
    """Send → ``done``, in ms; ``None`` without ``done``."""
    audio_s: float = 0.0
    """Seconds of audio received."""
    codes: list[str] = field(default_factory=list)
    """Error codes seen: the server's, a ``ClientError`` code, or ``timeout``."""


async def run_load(
    url: str,
    sessions: int,
    utterances: int,
    rate: float | None = None,
    texts: Sequence[str] | None = None,
    *,
    sample_rate: int | None = None,
    token: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    seed: int | None = None,
    emotions: Sequence[str] = (),
    intensity: float | None = None,
    repeat_share: float = 0.0,
    repeat_lines: int = 20,
) -> dict[str, Any]:
    """Offer load to the server at ``url`` and return the report (see ``summarize``).

    Args:
        url: ``ws://host:port`` of a running server.
        sessions: WebSocket connections, opened before the clock starts.
        utterances: Utterances per session.
        rate: Open loop at this many utterances/s in total; ``None`` for closed loop.
        texts: Sentences, used in turn; ``None`` for the built-in ones.
        sample_rate: Output rate asked for in ``hello``; ``None`` for the voice's.
        token: ``hello.token``.
        timeout_s: Longest wait for one utterance, in seconds.
        seed: Seed of the open-loop schedule (arrival times, session choice).
        emotions: Emotions given to the utterances in turn (empty: none, neutral).
        intensity: Their intensity; ``None``: the server's default.
        repeat_share: Share of utterances drawn from ``repeat_lines`` common lines (0–1).
        repeat_lines: How many of ``texts`` (the first ones) are the common lines.

    Raises:
        ValueError: a count, the rate or the timeout is not positive, ``texts`` is empty,
            or ``repeat_share`` is not in [0, 1].
        ClientError: a session could not be opened.
    """
    if sessions < 1 or utterances < 1 or timeout_s <= 0 or (rate is not None and rate <= 0):
        raise ValueError("sessions, utterances, rate and timeout must be positive")
    texts = list(texts) if texts is not None else load_texts(None)
    if not texts:
        raise ValueError("texts must not be empty")
    if not 0 <= repeat_share <= 1 or repeat_lines < 1:
        raise ValueError("repeat share must be in [0, 1] and repeat lines positive")
    clients = await _connect_all(url, sessions, sample_rate, token, timeout_s)
    try:
        for text in texts:
            clients[0].check_text(text)  # fail before the clock starts, not mid-run
        before = await read_metrics(url)
        t0 = time.perf_counter()
        kinds = [_kind(e, intensity) for e in emotions] or [{}]
        rng = random.Random(seed)
        total = sessions * utterances
        plan = _plan(total, texts, kinds, repeat_share, repeat_lines, rng)
        if rate is None:
            samples = await _closed_loop(clients, utterances, plan, timeout_s)
        else:
            samples = await _open_loop(clients, utterances, rate, plan, timeout_s, rng)
        wall_s = time.perf_counter() - t0
        after = await read_metrics(url) if before is not None else None
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    report = summarize(samples, wall_s)
    report["server"] = server_figures(before, after, wall_s)
    report["cache"] = cache_figures(before, after)
    report.update(
        mode="closed" if rate is None else "open",
        sessions=sessions,
        utterances_per_session=utterances,
        rate=rate,
        sample_rate=clients[0].sample_rate,
        emotions=list(emotions),
        repeat_share=repeat_share,
        repeat_lines=repeat_lines if repeat_share else None,
    )
    return report


def _plan(
    total: int,
    texts: list[str],
    kinds: list[dict[str, Any]],
    repeat_share: float,
    repeat_lines: int,
    rng: random.Random,
) -> list[tuple[str, dict[str, Any]]]:
    """Each utterance's text and speak options, in the order the loops send them.

    Fresh utterances are synthesized (``cache: false``): the load's sentences come round
    again, and a server would otherwise replay them from its cache of repeated lines.
    """
    if not repeat_share:
        fresh = [kind | {"cache": False} for kind in kinds]
        return [(texts[k % len(texts)], fresh[k % len(fresh)]) for k in range(total)]
    common = texts[:repeat_lines]
    plan = []
    for k in range(total):
        if rng.random() < repeat_share:
            plan.append((rng.choice(common), kinds[0]))
        else:  # a seed of its own: never the same key twice
            plan.append((texts[k % len(texts)], kinds[k % len(kinds)] | {"seed": 1_000_003 + k}))
    return plan


def cache_figures(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, Any] | None:
    """The server's cache hits and misses during the run (``None``: not served)."""
    names = ("voxlive_cache_hits_total", "voxlive_cache_misses_total")
    if before is None or after is None or any(n not in before or n not in after for n in names):
        return None
    hits, misses = (int(after[n] - before[n]) for n in names)
    ratio = round(hits / (hits + misses), 3) if hits + misses else None
    return {"hits": hits, "misses": misses, "hit_ratio": ratio}


def _kind(emotion: str, intensity: float | None) -> dict[str, Any]:
    """One utterance kind's speak options (an unset intensity is the server's default)."""
    return (
        {"emotion": emotion} if intensity is None else {"emotion": emotion, "intensity": intensity}
    )


async def _connect_all(
    url: str, sessions: int, sample_rate: int | None, token: str | None, timeout_s: float
) -> list[Client]:
    opening = [
        Client.connect(url, sample_rate=sample_rate, token=token, open_timeout_s=timeout_s)
        for _ in range(sessions)
    ]
    results = await asyncio.gather(*opening, return_exceptions=True)
    clients = [r for r in results if isinstance(r, Client)]
    failures = [r for r in results if not isinstance(r, Client)]
    if failures:
        await asyncio.gather(*(c.close() for c in clients))
        raise failures[0]
    return clients


async def _closed_loop(
    clients: list[Client],
    utterances: int,
    plan: list[tuple[str, dict[str, Any]]],
    timeout_s: float,
) -> list[Sample]:
    async def one_session(i: int, c: Client) -> list[Sample]:
        picks = [plan[i * utterances + j] for j in range(utterances)]
        return [await measure(c, text, timeout_s, **options) for text, options in picks]

    per_session = await asyncio.gather(*(one_session(i, c) for i, c in enumerate(clients)))
    return [sample for samples in per_session for sample in samples]


async def _open_loop(
    clients: list[Client],
    utterances: int,
    rate: float,
    plan: list[tuple[str, dict[str, Any]]],
    timeout_s: float,
    rng: random.Random,
) -> list[Sample]:
    targets = [c for c in clients for _ in range(utterances)]
    rng.shuffle(targets)
    tasks: list[asyncio.Task[Sample]] = []
    due = time.perf_counter()
    for k, c in enumerate(targets):
        due += rng.expovariate(rate)  # Poisson arrivals: exponential gaps
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        text, options = plan[k]
        tasks.append(asyncio.create_task(measure(c, text, timeout_s, **options)))
    return list(await asyncio.gather(*tasks))


async def measure(c: Client, text: str, timeout_s: float, **options: Any) -> Sample:
    """Speak ``text`` (with ``speak`` ``options``) on ``c`` and time it.

    Never raises for server or connection trouble.

    Raises:
        ValueError: ``text`` is empty or longer than the server accepts.
    """
    sample = Sample()
    width = SAMPLE_WIDTH[c.format]
    received = 0
    t0 = time.perf_counter()
    utterance: Utterance | None = None
    try:
        async with asyncio.timeout(timeout_s):
            utterance = c.speak(text, **options)
            async for event in utterance:
                now = time.perf_counter()
                if isinstance(event, AudioFrame) and event.pcm:
                    if sample.first_audio_ms is None:
                        sample.first_audio_ms = (now - t0) * 1000
                    received += len(event.pcm)
                elif isinstance(event, Error):
                    sample.codes.append(event.code)
                elif isinstance(event, Done):
                    sample.status, sample.total_ms = event.status, (now - t0) * 1000
    except TimeoutError:
        sample.codes.append("timeout")
        await _cancel_quietly(c, utterance)
    except ClientError as exc:
        sample.codes.append(exc.code)
    sample.audio_s = received / width / c.sample_rate
    if sample.status not in ("completed", "error") and not sample.codes:
        sample.codes.append(sample.status)  # e.g. cancelled without an error message
    return sample


async def _cancel_quietly(c: Client, utterance: Utterance | None) -> None:
    if utterance is None or c.closed:
        return
    try:
        await c.cancel(utterance.id)
    except ClientError:
        pass


def summarize(samples: list[Sample], wall_s: float) -> dict[str, Any]:
    """The report of a run: counts, errors by code, latency percentiles, throughput.

    ``rtf`` is the aggregate real-time factor, wall time / seconds of audio received
    (``None`` without audio); ``audio_s_per_s`` is its inverse.
    """
    completed = [s for s in samples if s.status == "completed"]
    errors = collections.Counter(code for s in samples for code in s.codes)
    first = [s.first_audio_ms for s in completed if s.first_audio_ms is not None]
    total = [s.total_ms for s in completed if s.total_ms is not None]
    audio_s = sum(s.audio_s for s in samples)
    return {
        "utterances": len(samples),
        "completed": len(completed),
        "failed": len(samples) - len(completed),
        "errors": dict(sorted(errors.items())),
        "wall_s": _round(wall_s),
        "utterances_per_s": _round(len(completed) / wall_s if wall_s > 0 else 0.0),
        "first_audio_ms": {f"p{q}": _pct(first, q) for q in (50, 95, 99)},
        "total_ms": {f"p{q}": _pct(total, q) for q in (50, 95, 99)},
        "audio_s": _round(audio_s),
        "audio_s_per_s": _round(audio_s / wall_s if wall_s > 0 else 0.0),
        "rtf": _round(wall_s / audio_s) if audio_s > 0 else None,
    }


def _pct(values: list[float], q: int) -> float | None:
    return _round(float(np.percentile(np.asarray(values), q))) if values else None


def _round(value: float) -> float:
    return round(value, 3)


def format_report(report: dict[str, Any]) -> str:
    """A few human-readable lines of a ``run_load`` report."""
    loop = "closed loop" if report["mode"] == "closed" else f"open loop at {report['rate']:g}/s"
    fa, tot = report["first_audio_ms"], report["total_ms"]
    rtf = "n/a" if report["rtf"] is None else f"{report['rtf']:.3f}"
    lines = [
        f"{loop}: {report['sessions']} sessions × {report['utterances_per_session']} utterances, "
        f"{report['completed']}/{report['utterances']} completed in {report['wall_s']:.2f} s",
        f"  {report['utterances_per_s']:.2f} utterances/s, "
        f"{report['audio_s_per_s']:.2f} audio s/s, rtf {rtf}",
        f"  first audio ms: {_percentiles(fa)}",
        f"  total ms:       {_percentiles(tot)}",
    ]
    if report.get("server") is not None:
        lines.append("  server: " + format_server(report["server"]))
    if report.get("repeat_share") and report.get("cache") is not None:
        c = report["cache"]
        lines.append(
            f"  cache: {c['hits']} hits, {c['misses']} misses "
            f"(hit ratio {shown(c['hit_ratio'], '.0%')}; {report['repeat_share']:.0%} of "
            f"lines from {report['repeat_lines']} common ones)"
        )
    if report["errors"]:
        lines.append("  errors: " + ", ".join(f"{k} {v}" for k, v in report["errors"].items()))
    return "\n".join(lines)


def _percentiles(values: dict[str, float | None]) -> str:
    return ", ".join(f"{q} {shown(values[q])}" for q in ("p50", "p95", "p99"))
