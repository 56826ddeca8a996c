"""What the server says it spent during a load run: two readings of its ``/metrics``.

The load generator runs in another process (often on the same machine), so the
server's CPU comes from the server itself: ``process_cpu_seconds_total`` (every
thread of its process) against ``audio_seconds_total`` (audio it sent), and the
engine thread's busy time from the batcher's counters.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "format_server",
    "metrics_url",
    "parse_metrics",
    "read_metrics",
    "server_figures",
    "shown",
]


def metrics_url(ws_url: str) -> str:
    """``ws://host:port/...`` → ``http://host:port/metrics`` (``wss`` → ``https``)."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/metrics", "", ""))


def parse_metrics(text: str) -> dict[str, float]:
    """``name value`` lines of the Prometheus text format (labels kept in the name).

    Comments and bad lines are skipped, and so are the ``*_created`` samples that
    prometheus-client adds to counters and histograms: they are the time a series
    began (Unix seconds), not a figure to take differences of.
    """
    values: dict[str, float] = {}
    created: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = (line.split() + [""])[:4]
            if kind in ("counter", "histogram", "summary"):
                created.add(family.removesuffix("_total") + "_created")
            continue
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.partition("{")[0] in created:
            continue
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


async def read_metrics(ws_url: str, timeout_s: float = 5.0) -> dict[str, float] | None:
    """The server's counters now, or ``None`` when it does not serve ``/metrics``."""

    def get() -> str:
        with urllib.request.urlopen(metrics_url(ws_url), timeout=timeout_s) as response:
            body: bytes = response.read()
            return body.decode()

    try:
        return parse_metrics(await asyncio.to_thread(get))
    except (OSError, urllib.error.URLError, UnicodeDecodeError):
        return None


def server_figures(
    before: dict[str, float] | None, after: dict[str, float] | None, wall_s: float
) -> dict[str, Any] | None:
    """The server's side of a run, from readings taken before and after it.

    Returns ``None`` when either reading is missing or lacks the counters. Keys:
    ``cpu_s`` (all its threads), ``cores_busy`` (``cpu_s`` per wall second),
    ``audio_s`` (what it sent), ``cpu_s_per_audio_s``, ``engine_busy`` (fraction of
    the wall time the engine thread spent beginning or stepping sentences),
    ``streams_per_step`` and ``sentences_per_begin`` (the batches it reached).
    """
    if before is None or after is None:
        return None
    keys = (
        "process_cpu_seconds_total",
        "audio_seconds_total",
        "engine_begin_seconds_total",
        "engine_step_seconds_total",
        "engine_steps_total",
        "engine_streams_stepped_total",
        "engine_begin_calls_total",
        "engine_sentences_begun_total",
    )
    if any(k not in before or k not in after for k in keys):
        return None
    d = {k: after[k] - before[k] for k in keys}
    cpu_s, audio_s = d["process_cpu_seconds_total"], d["audio_seconds_total"]
    busy_s = d["engine_begin_seconds_total"] + d["engine_step_seconds_total"]
    return {
        "cpu_s": round(cpu_s, 3),
        "cores_busy": round(cpu_s / wall_s, 3) if wall_s > 0 else None,
        "audio_s": round(audio_s, 3),
        "cpu_s_per_audio_s": round(cpu_s / audio_s, 4) if audio_s > 0 else None,
        "engine_busy": round(busy_s / wall_s, 3) if wall_s > 0 else None,
        "streams_per_step": _ratio(d["engine_streams_stepped_total"], d["engine_steps_total"]),
        "sentences_per_begin": _ratio(
            d["engine_sentences_begun_total"], d["engine_begin_calls_total"]
        ),
    }


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 2) if den > 0 else None


def format_server(server: dict[str, Any]) -> str:
    """One line of :func:`server_figures`' figures."""
    return (
        f"{server['cpu_s']:.2f} CPU s ({shown(server['cores_busy'], '.2f')} cores), "
        f"{shown(server['cpu_s_per_audio_s'], '.4f')} CPU s per audio s, "
        f"engine busy {shown(server['engine_busy'], '.0%')}, "
        f"{shown(server['streams_per_step'], '.1f')} streams/step, "
        f"{shown(server['sentences_per_begin'], '.1f')} sentences/begin"
    )


def shown(value: float | None, spec: str = ".1f") -> str:
    """A report's figure as text: ``n/a`` for one not measured."""
    return "n/a" if value is None else format(value, spec)
