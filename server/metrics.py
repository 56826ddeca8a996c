"""The server's counters and their ``/metrics`` text (Prometheus text exposition format).

Totals only (``*_total``, since the process started) and gauges: a scraper or
``voxlive bench server`` takes two readings and divides the differences, e.g.
CPU seconds per second of audio = Δ``process_cpu_seconds_total`` /
Δ``audio_seconds_total``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Totals", "render"]


@dataclass(slots=True)
class Totals:
    """What the server's utterances delivered (updated on the event loop thread)."""

    audio_seconds: float = 0.0
    """Audio sent to clients, in seconds at the session's rate."""
    utterances: Counter[str] = field(default_factory=Counter)
    """Finished utterances by ``done.status``."""

    def finished(self, status: str, audio_s: float) -> None:
        self.audio_seconds += audio_s
        self.utterances[status] += 1


def render(values: dict[str, float | int], totals: Totals) -> str:
    """One ``name value`` line per value; utterances labelled by status; process CPU last."""
    lines = [f"{name} {_number(value)}" for name, value in values.items()]
    lines.append(f"audio_seconds_total {_number(totals.audio_seconds)}")
    for status, count in sorted(totals.utterances.items()):
        lines.append(f'utterances_total{{status="{status}"}} {count}')
    # Every thread of the process: event loop, engine, front end, torch's own workers.
    lines.append(f"process_cpu_seconds_total {_number(time.process_time())}")
    return "".join(line + "\n" for line in lines)


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"
