"""The ``voxlive`` command line: the parser of every command, and dispatch.

Help text here is written for users. Logging is set up by ``main.py`` (the
``voxlive`` entry point); :func:`main` leaves it alone, for tests and embedding.
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

from .errors import EXIT_FAILED, EXIT_USAGE, check_inputs, run_reporting_errors
from .usage import Formatter, add_command

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "build_parser", "dispatch", "main"]

DESCRIPTION = """\
voxlive: real-time text-to-speech with emotions, for live interaction.

Run the streaming WebSocket server that bots, browser pages and game characters
talk to, speak text into WAV files on this machine, or measure the engine and a
running server."""

EXAMPLES = """\
examples:
  voxlive serve --port 8765                      start the server (Ctrl-C stops it)
  voxlive say "Welcome back!" -o hi.wav --emotion happy
  voxlive client "Thanks for the raid!" -o reply.wav
  voxlive emotions                               the emotions and their synonyms

Run `voxlive COMMAND --help` for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxlive", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=Formatter
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = add_command(
        sub,
        "serve",
        "run the streaming WebSocket server",
        "Run the WebSocket server (protocol/SPEC.md) with the bundled voice. Every setting\n"
        "below can also come from the environment variable named after it; a flag wins\n"
        "over the variable. SIGTERM or Ctrl-C lets in-flight utterances finish, then stops.",
        "  voxlive serve                                    127.0.0.1:8765, CPU, voices in memory\n"
        "  voxlive serve --host 0.0.0.0 --port 9000 --token s3cret\n"
        "  VOXLIVE_REDIS_URL=redis://localhost:6379/0 voxlive serve --device cuda",
    )
    from .settings import add_settings

    add_settings(serve)

    say = add_command(
        sub,
        "say",
        "speak text into WAV files, in this process (no server)",
        "Synthesize TEXT (or every line of a file) into 16-bit WAV files with the bundled\n"
        "voice, in this process. Exit status: 0; 1 when some lines of -f could not be\n"
        "spoken (the others are written); 2 for text that cannot be spoken or a bad flag.",
        '  voxlive say "Welcome back to the stream!" -o hi.wav\n'
        '  voxlive say "We won!" -o won.wav --emotion excited --intensity 0.9\n'
        '  voxlive say "欢迎来到直播间！" -o zh.wav --emotion 开心             the Mandarin voice\n'
        '  voxlive say "Thank you 谢谢 for the gift!" -o mixed.wav       each language its voice\n'
        "  voxlive say -f lines.txt -o outdir/ --voice ref.wav      0001.wav, 0002.wav, ...\n"
        "  voxlive say --demo-grid grid/                            every emotion, side by side",
    )
    # TEXT, -f or --demo-grid (TEXT may go with --demo-grid); checked in cli.say.
    src = say.add_mutually_exclusive_group()
    src.add_argument("text", nargs="?", help="text to speak (with --demo-grid: the sentence)")
    src.add_argument(
        "-f", "--file", type=Path, metavar="FILE", help="one utterance per non-empty line"
    )
    say.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="WAV file; with -f, the directory for the WAVs (not with --demo-grid)",
    )
    say.add_argument(
        "--demo-grid",
        type=Path,
        metavar="OUTDIR",
        help="one sentence in every emotion at intensities 0.5 and 1: WAVs, grid.json and "
        "index.html (a page to play them side by side) in OUTDIR",
    )
    _controls(say, intensity_default=f"{DEFAULT_INTENSITY:g}")
    _engine_options(say)
    say.add_argument(
        "--deterministic", action="store_true", help="no sampling noise (same text → same samples)"
    )
    say.add_argument(
        "--batch", type=int, default=8, metavar="N", help="sentences synthesized together with -f"
    )
    say.add_argument(
        "--voice",
        type=Path,
        metavar="FILE",
        help="reference clip (3–30 s of speech; WAV, FLAC, OGG or MP3) to speak like",
    )
    say.add_argument(
        "--no-watermark",
        dest="watermark",
        action="store_false",
        help="leave the output unmarked (a --voice clone is marked all the same; see "
        "`voxlive detect`)",
    )

    detect = add_command(
        sub,
        "detect",
        "tell whether audio files carry voxlive's watermark",
        "Read each FILE (any format the sound library reads: WAV, FLAC, OGG, MP3, ...) and\n"
        "look for the Perth watermark voxlive puts on everything it speaks. Prints one line\n"
        "a file (with --json, one JSON array). Exit status: 0 when every file is marked; 1\n"
        "when a file is not marked; 2 when a file cannot be read (2 wins over 1).",
        "  voxlive detect clip.wav\n"
        "  voxlive detect --json downloads/*.mp3 | jq '.[] | select(.marked)'",
    )
    detect.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    detect.add_argument("--json", action="store_true", help="JSON on stdout")
    detect.add_argument(
        "--device", default="cpu", help="where the detector runs: cpu, cuda or cuda:N"
    )

    emotions = add_command(
        sub,
        "emotions",
        "list the emotions, their synonyms and what each does to the voice",
        "Print the emotion vocabulary: each emotion's prosody at intensity 1 (rate,\n"
        "pauses, pitch level and range, loudness, spectral tilt, breathiness, phrase end)\n"
        "and the synonyms accepted for it. Loads no model.",
        "  voxlive emotions\n  voxlive emotions --json | jq '.[].name'",
    )
    emotions.add_argument("--json", action="store_true", help="JSON on stdout")

    client = add_command(
        sub,
        "client",
        "speak text through a running server into WAV files",
        "Connect to a running `voxlive serve`, speak TEXT (or every line of a file, all\n"
        "sent at once over one connection) and write the audio as WAV files. Exit status:\n"
        "0; 1 when some lines of -f could not be spoken (the others are written); 2 when\n"
        "the connection failed, the clip was refused or a single text could not be spoken.",
        '  voxlive client "Thanks for the raid!" -o reply.wav\n'
        '  voxlive client --url ws://10.0.0.5:8765 --token s3cret "Hi!" -o hi.wav\n'
        "  voxlive client -f lines.txt -o outdir/ --voice ref.wav --emotion calm",
    )
    client_src = client.add_mutually_exclusive_group(required=True)
    client_src.add_argument("text", nargs="?", help="text to speak")
    client_src.add_argument(
        "-f", "--file", type=Path, metavar="FILE", help="one utterance per non-empty line"
    )
    client.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="PATH",
        help="WAV file; with -f, the directory for the WAVs",
    )
    _client_options(client)
    _controls(client, intensity_default="the server's")
    client.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS", help="seconds per utterance"
    )
    client.add_argument(
        "--voice",
        dest="voice_file",
        type=Path,
        metavar="FILE",
        help="reference clip (3–30 s of speech) to register first and speak like",
    )
    # The flag's earlier name, kept working for scripts that use it.
    client.add_argument("--voice-file", dest="voice_file", type=Path, help=argparse.SUPPRESS)
    _consent_options(client)

    bench = add_command(
        sub,
        "bench",
        "measure the engine, the emotions or a running server",
        "Benchmarks; each prints a report (JSON with --json). What the figures mean and\n"
        "the latest ones: docs/performance.md.",
        "  voxlive bench engine --precision bfloat16\n"
        "  voxlive bench emotions --sentences 5\n"
        "  voxlive bench server --url ws://127.0.0.1:8765 --sessions 16 --utterances 6\n"
        "  voxlive bench idle --connections 500",
    )
    bench_sub = bench.add_subparsers(dest="target", required=True, metavar="TARGET")
    eng = add_command(
        bench_sub,
        "engine",
        "engine vs Piper's onnxruntime, side by side",
        "Run our engine and Piper's own onnxruntime voice on the same sentences in one\n"
        "process: throughput (audio seconds per second) by batch size, real-time factor,\n"
        "first-chunk latency, peak memory, and the ratios.",
        "  voxlive bench engine\n  voxlive bench engine --batches 1,8 --precision bfloat16 --json\n"
        "  voxlive bench engine --voice zh --batches 1,8,16",
    )
    eng.add_argument(
        "--texts", type=Path, metavar="FILE", help="sentences, one per line (default: built in)"
    )
    eng.add_argument("--json", action="store_true", help="JSON on stdout")
    eng.add_argument("--batches", default="1,4,8,16", help="batch sizes to measure")
    eng.add_argument(
        "--repeats", type=int, default=10, metavar="N", help="first-chunk latency samples"
    )
    eng.add_argument(
        "--items", type=int, default=32, metavar="N", help="utterances per throughput figure"
    )
    eng.add_argument("--no-piper", action="store_true", help="skip the Piper baseline")
    eng.add_argument(
        "--voice",
        choices=["en", "zh"],
        default="en",
        help="which voice: en (the bundled English voice, beside Piper) or zh (Mandarin; "
        "no baseline, default texts in Chinese)",
    )
    _engine_options(eng)
    emo = add_command(
        bench_sub,
        "emotions",
        "what each emotion changes in the audio, against neutral",
        "Render the same sentences neutral and in every emotion, and measure on the audio\n"
        "mean pitch, pitch range, articulation rate and loudness; also the real-time\n"
        "factor of the engine and of the expressive stage.",
        "  voxlive bench emotions\n  voxlive bench emotions --sentences 3 --voice ref.wav --json",
    )
    emo.add_argument(
        "--sentences", type=int, default=10, metavar="N", help="how many built-in sentences"
    )
    emo.add_argument(
        "--texts", type=Path, metavar="FILE", help="sentences, one per line (default: built in)"
    )
    emo.add_argument("--intensities", default="0.5,1", help="intensities to measure")
    emo.add_argument(
        "--voice", type=Path, metavar="FILE", help="also measure with this reference clip"
    )
    emo.add_argument("--json", action="store_true", help="JSON on stdout")
    emo.add_argument(
        "--no-mos",
        dest="mos",
        action="store_false",
        help="skip the Distill-MOS quality judge (it runs when installed)",
    )
    _engine_options(emo)
    idle = add_command(
        bench_sub,
        "idle",
        "server memory per idle connection",
        "Start a server, open idle connections to it and report the memory each costs.",
        "  voxlive bench idle --connections 500",
    )
    idle.add_argument(
        "--connections", type=int, default=500, metavar="N", help="idle connections to open"
    )
    idle.add_argument("--json", action="store_true", help="JSON on stdout")
    page = add_command(
        bench_sub,
        "page",
        "the browser page in Chromium against a running server",
        "Open the demo page of a running server in Chromium (Playwright, no download) and\n"
        "measure what a listener gets: first sound after Speak (click to the AudioWorklet's\n"
        "first non-silent sample), underruns over a danmaku run, the page's weight. Exit\n"
        "status 2 when the server, Playwright or Chromium is missing.",
        "  voxlive bench page --url http://127.0.0.1:8765\n"
        "  voxlive bench page --repeats 20 --comments 60 --interval 1 --json",
    )
    page.add_argument(
        "--url", default="http://127.0.0.1:8765", help="the server (http:// or ws://host:port)"
    )
    page.add_argument("--chromium", metavar="PATH", help="the browser (default: chromium on PATH)")
    page.add_argument(
        "--repeats", type=int, default=10, metavar="N", help="Speak clicks of the short sentence"
    )
    page.add_argument(
        "--comments", type=int, default=60, metavar="N", help="danmaku comments (0: none)"
    )
    page.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between danmaku comments",
    )
    page.add_argument("--json", action="store_true", help="JSON on stdout")
    http = add_command(
        bench_sub,
        "http",
        "the HTTP speech API's first byte beside the WebSocket's first audio",
        "Against a running server, alternate one WebSocket utterance and one POST\n"
        "/v1/audio/speech (pcm at the voice's rate) of the same short sentence, and report\n"
        "the WebSocket's first audio and the HTTP body's first byte.",
        "  voxlive bench http --url ws://127.0.0.1:8765 --rounds 20 --json",
    )
    http.add_argument("--url", default="ws://127.0.0.1:8765", help="the server")
    http.add_argument("--rounds", type=int, default=20, metavar="N", help="measured rounds")
    http.add_argument("--json", action="store_true", help="JSON on stdout")
    wm = add_command(
        bench_sub,
        "watermark",
        "the watermark's cost, robustness and false positives",
        "Speak the bench sentences with the bundled voice, then mark them as the server\n"
        "does (streamed, batched) and as `say` does (whole clips): cost against the engine,\n"
        "first-chunk delay, detection after 16 kHz, MP3 64 kbps, ±6 dB and cut ends, and\n"
        "false positives on the same clips unmarked and on espeak-ng's speech.",
        "  voxlive bench watermark --json\n  voxlive bench watermark --mos",
    )
    wm.add_argument("--mos", action="store_true", help="also Distill-MOS, marked and not")
    wm.add_argument(
        "--strength", type=float, metavar="S", help="the mark's strength (default: the product's)"
    )
    wm.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    wm.add_argument("--json", action="store_true", help="JSON on stdout")
    hostile = add_command(
        bench_sub,
        "hostile",
        "good clients' first audio beside hostile clients",
        "Against a running server, measure good clients' first audio (open loop) alone and\n"
        "beside hostile clients, alternating: one that never reads, slow senders (a byte\n"
        "every 200 ms), idle connections, a speak flood, upload bombs. The hostile clients\n"
        "connect from 127.0.0.2 and up (listen on 127.0.0.1 or 0.0.0.0).",
        "  voxlive bench hostile --url ws://127.0.0.1:8765\n"
        "  voxlive bench hostile --idle 500 --rounds 3 --json",
    )
    soak = add_command(
        bench_sub,
        "soak",
        "minutes of good and hostile clients; memory, connections and tasks",
        "Against a running server, run rounds of good load beside hostile clients for\n"
        "--minutes, and report the server's resident memory, connections and event-loop\n"
        "tasks (from /metrics) after the first round and at the end.",
        "  voxlive bench soak --url ws://127.0.0.1:8765 --minutes 3",
    )
    for p in (hostile, soak):
        p.add_argument("--url", default="ws://127.0.0.1:8765", help="the server")
        p.add_argument("--sessions", type=int, default=4, metavar="N", help="good sessions")
        p.add_argument("--rate", type=float, default=2.0, metavar="PER_S", help="good utterances/s")
        p.add_argument("--idle", type=int, metavar="N", help="idle hostile connections")
        p.add_argument("--json", action="store_true", help="JSON on stdout")
    hostile.add_argument(
        "--utterances", type=int, default=24, metavar="N", help="good utterances per run"
    )
    hostile.add_argument(
        "--rounds", type=int, default=2, metavar="N", help="alone/beside alternations"
    )
    soak.add_argument("--minutes", type=float, default=3.0, help="how long")
    scale = add_command(
        bench_sub,
        "scaleout",
        "the Redis path's added latency and what a second worker buys",
        "Start a redis-server (or use --redis), a --role all server, a gateway and workers\n"
        "on the bundled voice; report first audio at one session through the gateway beside\n"
        "--role all, and closed-loop throughput with one worker, two workers (--workers 2)\n"
        "and --role all. Run it on an otherwise idle machine.",
        "  voxlive bench scaleout --json",
    )
    scale.add_argument("--redis", metavar="URL", help="a Redis to use (default: start one)")
    scale.add_argument("--rounds", type=int, default=20, metavar="N", help="latency rounds")
    scale.add_argument("--sessions", type=int, default=8, metavar="N", help="load sessions")
    scale.add_argument(
        "--utterances", type=int, default=4, metavar="N", help="utterances per load session"
    )
    scale.add_argument(
        "--repeats", type=int, default=2, metavar="N", help="throughput runs of each setup"
    )
    scale.add_argument("--json", action="store_true", help="JSON on stdout")
    load = add_command(
        bench_sub,
        "server",
        "load generator against a running server",
        "Open sessions to a running server and speak utterances through them, closed loop\n"
        "(each session waits for its last utterance) or open loop (--rate); report first-\n"
        "audio latency, real-time factor, throughput, the server's own CPU use (read from\n"
        "its /metrics) and errors. --sweep measures capacity, then the latency curve at\n"
        "fractions of it. Exit status 1 when any utterance failed, 2 when the server\n"
        "cannot be reached.",
        "  voxlive bench server --sessions 16 --utterances 6\n"
        "  voxlive bench server --rate 8 --emotions happy,sad --json\n"
        "  voxlive bench server --sweep --sessions 16 --utterances 3 --engine-baseline",
    )
    _client_options(load)
    load.add_argument("--sessions", type=int, default=4, metavar="N", help="WebSocket connections")
    load.add_argument(
        "--utterances", type=int, default=8, metavar="N", help="utterances per session"
    )
    load.add_argument(
        "--rate", type=float, metavar="PER_S", help="open loop: Poisson arrivals, utterances/s"
    )
    load.add_argument(
        "--texts", type=Path, metavar="FILE", help="sentences, one per line (default: built in)"
    )
    load.add_argument(
        "--repeat-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="danmaku-like load: this share of utterances (0-1) repeats common lines, "
        "the rest never repeat (the report adds the server's cache hits and misses)",
    )
    load.add_argument(
        "--repeat-lines",
        type=int,
        default=20,
        metavar="N",
        help="how many common lines (the first N texts) --repeat-share draws from",
    )
    load.add_argument("--json", action="store_true", help="JSON on stdout")
    load.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS", help="seconds per utterance"
    )
    load.add_argument("--seed", type=int, help="seed of the open-loop arrival schedule")
    load.add_argument("--emotions", help="comma-separated emotions given to the utterances in turn")
    load.add_argument(
        "--intensity",
        type=float,
        help="intensity of those emotions: " + INTENSITY.flag_help("the server's"),
    )
    load.add_argument(
        "--sweep",
        action="store_true",
        help="one session's first audio, capacity (closed loop), then open loop at --loads",
    )
    load.add_argument(
        "--loads",
        default="0.2,0.5,0.7,0.9",
        metavar="FRACTIONS",
        help="with --sweep: open-loop rates as fractions of the measured capacity",
    )
    load.add_argument(
        "--engine-baseline",
        action="store_true",
        help="with --sweep: run `voxlive bench engine` first (same sentences) and report "
        "the server/engine ratios",
    )
    return parser


def _controls(p: argparse.ArgumentParser, *, intensity_default: str) -> None:
    """How an utterance is spoken: the same flags for ``say`` and ``client``."""
    p.add_argument(
        "--emotion",
        metavar="NAME",
        help="emotion or synonym, e.g. happy, sad, 开心, furious (list: `voxlive emotions`)",
    )
    p.add_argument(
        "--intensity", type=float, metavar="X", help=INTENSITY.flag_help(intensity_default)
    )
    p.add_argument("--speed", type=float, default=SPEED.default, help=SPEED.flag_help())
    p.add_argument(
        "--pitch", type=float, default=PITCH.default, metavar="ST", help=PITCH.flag_help()
    )
    p.add_argument(
        "--volume", type=float, default=VOLUME.default, metavar="DB", help=VOLUME.flag_help()
    )
    p.add_argument("--seed", type=int, help=SEED.help)
    p.add_argument(
        "--lang",
        choices=("auto", "en", "zh"),
        help="the built-in voice for text in no particular script, like 666 (Chinese is "
        "always spoken by the Mandarin voice, English by the English one; default: by the "
        "text's main script)",
    )


def _consent_options(p: argparse.ArgumentParser) -> None:
    """The speaker's consent sent with ``--voice`` (SPEC.md §4.6, v1.7)."""
    p.add_argument(
        "--consent-by",
        metavar="NAME",
        help="with --voice: the speaker, who consents to the voice being cloned (their "
        "name or id); sends consent with granted true (servers with API keys require it)",
    )
    p.add_argument(
        "--consent-method",
        metavar="HOW",
        help="how the speaker consented, e.g. 'signed form', 'recorded verbal statement', "
        "'self (own voice)' (default: 'stated to the voxlive client user')",
    )
    p.add_argument(
        "--consent-at",
        metavar="WHEN",
        help="when, as an ISO 8601 date or date-time, e.g. 2024-05-01 (default: now)",
    )
    p.add_argument(
        "--consent-statement", metavar="TEXT", help="the consent's wording or a note (optional)"
    )


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:8765", help="server address")
    p.add_argument(
        "--sample-rate", type=int, metavar="HZ", help="output rate (default: the voice's)"
    )
    p.add_argument("--token", help="hello.token, if the server requires one")


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="number format of the decoder",
    )


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit status (errors are reported, not raised)."""
    return run_reporting_errors(lambda: _run(args), verbose=getattr(args, "verbose", False))


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "say":  # a wrong combination of sources is named before a file
            from .say import check_say_args

            check_say_args(args)
        check_inputs(args)
        status = _dispatch(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return status
    except BrokenPipeError:  # e.g. `voxlive emotions --json | head`: the reader had enough
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


_ENGINE_COMMANDS = {"serve", "say"}
"""Commands that run an engine in this process (so do ``bench`` targets but two)."""


def _dispatch(args: argparse.Namespace) -> int:
    target = getattr(args, "target", None)
    if args.command in _ENGINE_COMMANDS or (
        args.command == "bench"
        and target not in ("server", "idle", "page", "hostile", "soak", "http", "scaleout")
    ):
        from voxlive.engine.runtime import keep_freed_memory

        keep_freed_memory()
    if args.command == "serve":
        from voxlive.server.config import Config

        config = Config.from_args(args)  # a bad setting fails before torch is imported
        if config.workers > 1:
            from .workers import run_workers

            return run_workers(config, getattr(args, "argv", sys.argv[1:]))
        from .serve import serve_until_signalled

        return serve_until_signalled(config)
    if args.command == "say":
        from .say import run_say

        return run_say(args)
    if args.command == "detect":
        from .detect import run_detect

        return run_detect(args)
    if args.command == "emotions":
        from .emotions import run_emotions

        return run_emotions(args)
    if args.command == "client":
        from .client import run_client

        return run_client(args)
    if args.command == "bench" and args.target == "server":
        from voxlive.bench.server_cli import run_bench_server

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
    if args.command == "bench" and args.target == "page":
        from voxlive.bench.page import PageBenchError, bench_page, format_page_report

        try:
            report = bench_page(
                args.url,
                chromium=args.chromium,
                repeats=args.repeats,
                comments=args.comments,
                interval_s=args.interval,
            )
        except PageBenchError as exc:
            print(f"voxlive bench page: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(report, indent=2) if args.json else format_page_report(report))
        return 0
    if args.command == "bench" and args.target == "scaleout":
        from voxlive.bench.scaleout import bench_scaleout, format_scaleout

        report = bench_scaleout(
            redis_url=args.redis,
            rounds=args.rounds,
            sessions=args.sessions,
            utterances=args.utterances,
            repeats=args.repeats,
        )
        print(json.dumps(report, indent=2) if args.json else format_scaleout(report))
        return 0
    if args.command == "bench" and args.target == "http":
        from voxlive.bench.http import bench_http, format_http

        from ..loop import run_loop

        report = run_loop(bench_http(args.url, args.rounds))
        print(json.dumps(report, indent=2) if args.json else format_http(report))
        return 0
    if args.command == "bench" and args.target == "watermark":
        from voxlive.bench.watermark import bench_watermark, format_watermark

        report = bench_watermark(device=args.device, with_mos=args.mos, strength=args.strength)
        print(json.dumps(report, indent=2) if args.json else format_watermark(report))
        return 0
    if args.command == "bench" and args.target in ("hostile", "soak"):
        from voxlive.bench.hostile import (
            Hostiles,
            format_hostile,
            format_soak,
            run_hostile,
            run_soak,
        )

        from ..loop import run_loop

        hostiles = Hostiles() if args.target == "hostile" else Hostiles(idle=100, slow_senders=5)
        if args.idle is not None:
            hostiles.idle = args.idle
        if args.target == "hostile":
            report = run_loop(
                run_hostile(
                    args.url,
                    sessions=args.sessions,
                    rate=args.rate,
                    utterances=args.utterances,
                    rounds=args.rounds,
                    hostiles=hostiles,
                )
            )
            text = format_hostile(report)
        else:
            report = run_loop(
                run_soak(
                    args.url,
                    minutes=args.minutes,
                    sessions=args.sessions,
                    rate=args.rate,
                    hostiles=hostiles,
                )
            )
            text = format_soak(report)
        print(json.dumps(report, indent=2) if args.json else text)
        return 0 if report["good_failed"] == 0 else EXIT_FAILED
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
