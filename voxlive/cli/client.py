"""``voxlive client``: speak text through a running server and write WAV files.

``voxlive client --url ws://HOST:PORT "TEXT" -o out.wav`` writes one file; with
``-f lines.txt -o OUTDIR/`` every non-empty line becomes ``0001.wav``, ``0002.wav`` …
(in line order), all sent at once over one connection. ``--voice ref.wav``
registers that reference clip first (session scope) and speaks in its voice
(``--voice-file``, its earlier name, still works); ``--consent-by NAME`` sends the
speaker's consent with it (``--consent-method``, ``--consent-at``, ``--consent-statement``).
``--emotion NAME [--intensity X]``, ``--pitch ST`` and ``--volume DB`` shape the
delivery (SPEC.md §4.4.1). Exit status: 0 when all went well; 2 when the connection
failed, the clip was refused or a single text could not be spoken; 1 when some lines
of ``-f`` could not be spoken (the others are still written).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Final

from voxlive.bench.texts import read_lines
from voxlive.client import Client, ClientError, Consent, Result, SpeakKwargs
from voxlive.protocol.client_requests import check_consent
from voxlive.protocol.controls import INTENSITY, PITCH, SPEED, VOLUME

__all__ = ["consent_from_args", "options_from_args", "run_client"]

EXIT_OK: Final = 0
EXIT_SOME_FAILED: Final = 1
EXIT_FAILED: Final = 2
CONSENT_METHOD: Final = "stated to the voxlive client user"
"""``consent.method`` when ``--consent-by`` comes without ``--consent-method``."""
_CONSENT_DETAILS: Final = ("consent_method", "consent_at", "consent_statement")


def run_client(args: argparse.Namespace) -> int:
    """Run ``voxlive client``; returns the exit status.

    Raises:
        ValueError: bad flag values (``--speed``, ``--intensity``, ``--pitch`` or
            ``--volume`` out of range, unreadable ``-f``).
    """
    from ..loop import run_loop

    options_from_args(args, 0)  # usage errors before connecting
    consent_from_args(args)
    lines = None if args.file is None else read_lines(args.file)
    try:
        if lines is None:
            return run_loop(_speak_one(args))
        return run_loop(_speak_lines(args, lines))
    except ClientError as exc:
        _say(f"error: {exc.message}")
        return EXIT_FAILED


async def _use_voice_file(c: Client, args: argparse.Namespace) -> str | None:
    """Register the ``--voice`` clip; return its voice id, or ``None`` after reporting why not."""
    try:
        consent = consent_from_args(args)
        ready = await asyncio.wait_for(
            c.register_voice(args.voice_file, consent=consent), args.timeout
        )
    except (OSError, ValueError) as exc:
        _say(f"cannot register {args.voice_file}: {exc}")
        return None
    except TimeoutError:
        _say(f"voice registration: no answer within {args.timeout:g} s")
        return None
    except ClientError as exc:
        if c.closed:
            raise
        _say(f"voice registration refused: {exc.message}")
        return None
    usable = ready.summary.get("usable_s")
    _say(f"registered voice {ready.voice} ({usable} s usable{', cached' if ready.cached else ''})")
    return ready.voice


def consent_from_args(args: argparse.Namespace) -> Consent | None:
    """The consent ``--consent-by`` and its companions describe; ``None`` without it.

    ``--consent-at`` defaults to now (UTC, to the second).

    Raises:
        ValueError: ``--consent-by`` without ``--voice``, a companion flag without
            ``--consent-by``, or a value the server would refuse (a blank name or
            method, a time that is not ISO 8601, …); the message names the flag.
    """
    by = getattr(args, "consent_by", None)
    if by is None:
        given = [d for d in _CONSENT_DETAILS if getattr(args, d, None) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{flag} needs --consent-by (who consents)")
        return None
    if getattr(args, "voice_file", None) is None:
        raise ValueError("--consent-by needs --voice (the clip whose speaker consents)")
    at = args.consent_at or datetime.now(UTC).isoformat(timespec="seconds")
    method = args.consent_method or CONSENT_METHOD
    consent = Consent(True, by, method, at, args.consent_statement)
    try:
        check_consent(consent)
    except ValueError as exc:  # "consent.at must be …" → "--consent-at must be …"
        raise ValueError(str(exc).replace("consent.", "--consent-", 1)) from None
    return consent


def options_from_args(args: argparse.Namespace, line: int) -> SpeakKwargs:
    """The ``speak`` options the flags ask for (``line`` numbers ``-f`` lines from 1).

    Lines of ``-f`` get ``seed + line``, as ``voxlive say`` does, so that each line
    has its own reproducible noise.

    ``--emotion`` goes to the server as typed (a name or a synonym, any case): the
    server resolves it and refuses an unknown one with ``unsupported``. The other
    controls are checked here so that a typo fails before connecting.

    Raises:
        ValueError: ``--speed`` outside 0.25–4, ``--intensity`` outside 0–1,
            ``--pitch`` outside −12–12, ``--volume`` outside −30–12, or a blank
            ``--emotion``.
    """
    intensity = getattr(args, "intensity", INTENSITY.default)
    pitch = getattr(args, "pitch", PITCH.default_value)
    volume = getattr(args, "volume", VOLUME.default_value)
    emotion = getattr(args, "emotion", None)
    SPEED.check(args.speed, "--speed")  # NaN fails too (``--pitch nan`` parses)
    PITCH.check(pitch, "--pitch")
    VOLUME.check(volume, "--volume")
    if emotion is not None and not emotion.strip():
        raise ValueError("--emotion must name an emotion, got an empty string")
    seed = None if args.seed is None else args.seed + line
    options = SpeakKwargs(speed=args.speed, pitch=pitch, volume=volume, seed=seed)
    if intensity is not None:  # unset: the server's default (echoed in ``started``)
        options["intensity"] = INTENSITY.check(intensity, "--intensity")
    if emotion is not None:
        options["emotion"] = emotion
    if getattr(args, "voice", None) is not None:
        options["voice"] = args.voice
    if getattr(args, "lang", None) is not None:
        options["lang"] = args.lang
    return options


async def _speak_one(args: argparse.Namespace) -> int:
    async with Client.connect(args.url, sample_rate=args.sample_rate, token=args.token) as c:
        options = options_from_args(args, 0)
        if getattr(args, "voice_file", None) is not None:
            if (voice := await _use_voice_file(c, args)) is None:
                return EXIT_FAILED
            options["voice"] = voice
        try:
            result = await asyncio.wait_for(c.synthesize(args.text, **options), args.timeout)
        except ValueError as exc:
            _say(str(exc))
            return EXIT_FAILED
        except TimeoutError:
            _say(f"no answer within {args.timeout:g} s")
            return EXIT_FAILED
    _warn(result, "")
    if not result.ok:
        _report(result, "")
        return EXIT_FAILED
    result.save_wav(args.output)
    return EXIT_OK


async def _speak_lines(args: argparse.Namespace, lines: list[str]) -> int:
    args.output.mkdir(parents=True, exist_ok=True)
    async with Client.connect(args.url, sample_rate=args.sample_rate, token=args.token) as c:
        if getattr(args, "voice_file", None) is not None:
            if (voice := await _use_voice_file(c, args)) is None:
                return EXIT_FAILED
            args.voice = voice
        # Never more in flight than the server allows (SPEC.md §5.1 limits.max_inflight).
        slots = asyncio.Semaphore(c.welcome.limits.max_inflight)
        jobs = [_speak_line(c, slots, args, n, line) for n, line in enumerate(lines, start=1)]
        written = await asyncio.gather(*jobs)
    if c.closed and c.close_code not in (None, 1000):
        return EXIT_FAILED
    return EXIT_OK if all(written) else EXIT_SOME_FAILED


async def _speak_line(
    c: Client, slots: asyncio.Semaphore, args: argparse.Namespace, n: int, line: str
) -> bool:
    where = f"line {n}: "
    async with slots:
        try:
            result = await asyncio.wait_for(_patiently(c, line, args, n), args.timeout)
        except ValueError as exc:
            _say(f"{where}{exc}")
            return False
        except TimeoutError:
            _say(f"{where}no answer within {args.timeout:g} s")
            return False
        except ClientError as exc:
            _say(f"{where}{exc.message}")
            return False
    _warn(result, where)
    if not result.ok:
        _report(result, where)
        return False
    result.save_wav(args.output / f"{n:04d}.wav")
    return True


RETRIED = frozenset({"rate_limited", "too_many_inflight", "overloaded"})
"""Refusals a file of lines meets by its own pace: each line waits as the server says."""


async def _patiently(c: Client, line: str, args: argparse.Namespace, n: int) -> Result:
    """Speak one line; a refusal that says when to retry is retried then (SPEC.md §5.5)."""
    while True:
        result = await c.synthesize(line, **options_from_args(args, n))
        wait = next(
            (e.retry_after_ms for e in result.errors if e.retryable and e.code in RETRIED),
            None,
        )
        if result.ok or wait is None or result.num_samples:
            return result
        await asyncio.sleep(wait / 1000)


def _warn(result: Result, where: str) -> None:
    for warning in result.warnings:
        _say(f"{where}warning: {warning}")


def _report(result: Result, where: str) -> None:
    for error in result.errors:
        _say(f"{where}{error.code}: {error.message}")
    if not result.errors:
        _say(f"{where}the utterance ended with status {result.done.status}")


def _say(message: str) -> None:
    print(f"voxlive: {message}", file=sys.stderr)
