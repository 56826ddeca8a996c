"""The ``voxlive`` command line: ``serve``, ``say``, ``client``, ``bench``, ``emotions``.

Parsing and dispatch only; logging and the event loop are set up in ``__main__``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from voxlive.engine.emotion import DEFAULT_INTENSITY
from voxlive.protocol.controls import INTENSITY, PITCH, SEED, SPEED, VOLUME

__all__ = ["build_parser", "dispatch", "main"]

EXIT_USAGE = 2
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxlive", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the WebSocket server (flags override VOXLIVE_* env)")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default 8765)")
    serve.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    serve.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default=None)
    serve.add_argument("--token", default=None, help="require this hello.token")
    serve.add_argument("--max-active-items", type=int, default=None)
    serve.add_argument("--max-queued-items", type=int, default=None)
    serve.add_argument("--first-chunk-frames", type=int, default=None)
    serve.add_argument("--graceful-shutdown-s", type=float, default=None)
    serve.add_argument(
        "--redis", dest="redis_url", default=None, help="voice store URL (default: in process)"
    )

    say = sub.add_parser("say", help="synthesize text to WAV files")
    # TEXT, -f or --demo-grid (TEXT may go with --demo-grid); checked in server.say.
    src = say.add_mutually_exclusive_group()
    src.add_argument("text", nargs="?", help="text to speak (with --demo-grid: the sentence)")
    src.add_argument("-f", "--file", type=Path, help="one utterance per non-empty line")
    say.add_argument(
        "-o", "--output", type=Path, help="WAV file, or directory with -f (not with --demo-grid)"
    )
    say.add_argument(
        "--demo-grid",
        type=Path,
        metavar="OUTDIR",
        help="one sentence in every emotion at intensities 0.5 and 1: WAVs, grid.json and "
        "index.html (a page to play them side by side) in OUTDIR",
    )
    say.add_argument(
        "--emotion",
        metavar="NAME",
        help="emotion or synonym, e.g. happy, sad, 开心 (list: `voxlive emotions`)",
    )
    say.add_argument(
        "--intensity",
        type=float,
        metavar="X",
        help=INTENSITY.flag_help(f"{DEFAULT_INTENSITY:g}"),
    )
    say.add_argument(
        "--pitch", type=float, default=PITCH.default, metavar="ST", help=PITCH.flag_help()
    )
    say.add_argument(
        "--volume", type=float, default=VOLUME.default, metavar="DB", help=VOLUME.flag_help()
    )
    _engine_options(say)
    say.add_argument("--speed", type=float, default=SPEED.default, help=SPEED.flag_help())
    say.add_argument("--seed", type=int, help=SEED.help)
    say.add_argument(
        "--deterministic", action="store_true", help="no sampling noise (same text → same samples)"
    )
    say.add_argument("--batch", type=int, default=8, help="sentences per batch with -f")
    say.add_argument("--voice", type=Path, help="reference clip (3-30 s of speech) to speak like")

    emotions = sub.add_parser("emotions", help="the emotion vocabulary and prosody profiles")
    emotions.add_argument("--json", action="store_true", help="JSON on stdout")

    client = sub.add_parser("client", help="speak through a running server into WAV files")
    client_src = client.add_mutually_exclusive_group(required=True)
    client_src.add_argument("text", nargs="?", help="text to speak")
    client_src.add_argument("-f", "--file", type=Path, help="one utterance per non-empty line")
    client.add_argument(
        "-o", "--output", type=Path, required=True, help="WAV file, or directory with -f"
    )
    _client_options(client)
    client.add_argument("--speed", type=float, default=SPEED.default, help=SPEED.flag_help())
    client.add_argument(
        "--emotion", metavar="NAME", help="emotion name or synonym (happy, 开心, furious, …)"
    )
    client.add_argument(
        "--intensity", type=float, metavar="X", help=INTENSITY.flag_help("the server's")
    )
    client.add_argument(
        "--pitch", type=float, default=PITCH.default, metavar="ST", help=PITCH.flag_help()
    )
    client.add_argument(
        "--volume", type=float, default=VOLUME.default, metavar="DB", help=VOLUME.flag_help()
    )
    client.add_argument("--seed", type=int, help=SEED.help)
    client.add_argument("--timeout", type=float, default=120.0, help="seconds per utterance")
    client.add_argument(
        "--voice-file", type=Path, help="register this reference clip and speak in its voice"
    )

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
    emo = bench_sub.add_parser("emotions", help="each emotion's measured effect vs neutral")
    emo.add_argument("--sentences", type=int, default=10, help="how many built-in sentences")
    emo.add_argument("--texts", type=Path, help="sentences, one per line (default: built in)")
    emo.add_argument("--intensities", default="0.5,1", help="intensities to measure")
    emo.add_argument("--voice", type=Path, help="also measure this reference voice")
    emo.add_argument("--json", action="store_true", help="JSON on stdout")
    _engine_options(emo)
    idle = bench_sub.add_parser("idle", help="server memory per idle connection")
    idle.add_argument("--connections", type=int, default=500)
    idle.add_argument("--json", action="store_true", help="JSON on stdout")
    load = bench_sub.add_parser("server", help="load generator against a running server")
    _client_options(load)
    load.add_argument("--sessions", type=int, default=4, help="WebSocket connections")
    load.add_argument("--utterances", type=int, default=8, help="utterances per session")
    load.add_argument("--rate", type=float, help="open loop: Poisson arrivals, utterances/s")
    load.add_argument("--texts", type=Path, help="sentences, one per line (default: built in)")
    load.add_argument("--json", action="store_true", help="JSON on stdout")
    load.add_argument("--timeout", type=float, default=120.0, help="seconds per utterance")
    load.add_argument("--seed", type=int, help="seed of the open-loop arrival schedule")
    load.add_argument("--emotions", help="comma-separated emotions given to the utterances in turn")
    load.add_argument(
        "--intensity", type=float, help="their " + INTENSITY.flag_help("the server's")
    )
    return parser


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:8765", help="server address")
    p.add_argument("--sample-rate", type=int, help="output rate in Hz (default: the voice's)")
    p.add_argument("--token", help="hello.token, if the server requires one")


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="decoder precision",
    )


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit status."""
    try:
        status = _dispatch(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return status
    except BrokenPipeError:  # e.g. `voxlive emotions --json | head`: the reader had enough
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"voxlive: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from voxlive.server.config import Config

        from .serve import serve_until_signalled

        return serve_until_signalled(Config.from_args(args))
    if args.command == "say":
        from .say import run_say

        return run_say(args)
    if args.command == "emotions":
        from .emotions import run_emotions

        return run_emotions(args)
    if args.command == "client":
        from .client import run_client

        return run_client(args)
    if args.command == "bench" and args.target == "server":
        from voxlive.bench.server import run_bench_server

        return run_bench_server(args)
    if args.command == "bench" and args.target == "engine":
        from voxlive.bench.engine import bench_engine, format_engine_report

        report = bench_engine(args)
        print(json.dumps(report, indent=2) if args.json else format_engine_report(report))
        return 0
    if args.command == "bench" and args.target == "emotions":
        from voxlive.bench.emotions import bench_emotions, format_emotions_report

        report = bench_emotions(args)
        print(json.dumps(report, indent=2) if args.json else format_emotions_report(report))
        return 0
    if args.command == "bench" and args.target == "idle":
        from voxlive.bench.idle import bench_idle

        report = bench_idle(args.connections)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"{report['kib_per_idle_connection']:.1f} KiB per idle connection")
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run without touching logging or loop policy (for tests and embedding)."""
    return dispatch(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
