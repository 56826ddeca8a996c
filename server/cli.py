"""The ``voxlive`` command line: ``say``, ``bench``.

This module is the only place that configures logging for command-line runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxlive", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="synthesize text to WAV files")
    src = say.add_mutually_exclusive_group(required=True)
    src.add_argument("text", nargs="?", help="text to speak")
    src.add_argument("-f", "--file", type=Path, help="one utterance per non-empty line")
    say.add_argument(
        "-o", "--output", type=Path, required=True, help="WAV file, or directory with -f"
    )
    _engine_options(say)
    say.add_argument(
        "--speed", type=float, default=1.0, help="speaking rate, 1.0 = normal (0.25–4)"
    )
    say.add_argument("--seed", type=int, help="noise seed, for reproducible output")
    say.add_argument(
        "--deterministic", action="store_true", help="no sampling noise (same text → same samples)"
    )
    say.add_argument("--batch", type=int, default=8, help="sentences per batch with -f")

    bench = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    eng = bench_sub.add_parser("engine", help="engine vs Piper's onnxruntime, side by side")
    eng.add_argument("--texts", type=Path, help="sentences, one per line (default: built in)")
    eng.add_argument("--json", action="store_true", help="JSON on stdout")
    eng.add_argument("--batches", default="1,4,8,16", help="batch sizes to measure")
    eng.add_argument("--repeats", type=int, default=10, help="first-chunk latency samples")
    eng.add_argument("--items", type=int, default=32, help="utterances per throughput figure")
    eng.add_argument("--no-piper", action="store_true", help="skip the Piper baseline")
    _engine_options(eng)
    return parser


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="decoder precision",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "say":
            from .say import run_say

            return run_say(args)
        if args.command == "bench" and args.target == "engine":
            from .bench import bench_engine, format_engine_report

            report = bench_engine(args)
            print(json.dumps(report, indent=2) if args.json else format_engine_report(report))
            return 0
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"voxlive: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
