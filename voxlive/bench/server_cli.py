"""``voxlive bench server``'s command: one load run (``server.py``) or a sweep (``sweep.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from voxlive.client import ClientError

from .server import EXIT_FAILED, EXIT_USAGE, format_report, run_load
from .sweep import engine_baseline, format_sweep, run_sweep
from .texts import load_texts

__all__ = ["run_bench_server"]


def run_bench_server(args: argparse.Namespace) -> int:
    """Run ``voxlive bench server``; returns the exit status.

    0 when every utterance completed, 1 when any did not, 2 when no session could be
    opened.

    Raises:
        ValueError: bad flag values or ``--texts`` file.
    """
    from ..loop import run_loop

    return run_loop(_bench(args, load_texts(args.texts)))


async def _bench(args: argparse.Namespace, texts: list[str]) -> int:
    if not args.sweep and args.engine_baseline:
        raise ValueError("--engine-baseline goes with --sweep")
    if args.sweep and args.rate is not None:
        raise ValueError("--sweep chooses its own rates: leave out --rate")
    options: dict[str, Any] = {
        "sample_rate": args.sample_rate,
        "token": args.token,
        "timeout_s": args.timeout,
        "emotions": [e for e in (args.emotions or "").split(",") if e],
        "intensity": args.intensity,
        "repeat_share": args.repeat_share,
        "repeat_lines": args.repeat_lines,
    }
    try:
        if args.sweep:
            loads = _loads(args.loads)
            baseline = engine_baseline(args.texts) if args.engine_baseline else None
            report = await run_sweep(
                args.url,
                args.sessions,
                args.utterances,
                texts,
                loads=loads,
                baseline=baseline,
                seed=args.seed,
                **options,
            )
        else:
            report = await run_load(
                args.url,
                args.sessions,
                args.utterances,
                args.rate,
                texts,
                seed=args.seed,
                **options,
            )
    except ClientError as exc:
        print(f"voxlive: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.sweep:
        print(json.dumps(report, indent=2) if args.json else format_sweep(report))
        phases = [report["capacity"], *report["curve"]]
        return EXIT_FAILED if any(p["failed"] for p in phases) else 0
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_FAILED if report["failed"] else 0


def _loads(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--loads must be comma-separated fractions, got {text!r}") from None
