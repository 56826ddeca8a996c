"""``voxlive say``: text (or a file of lines) to WAV, with the in-process engine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from engine.frontend import TextError
from engine.reference import ReferenceAudioError
from engine.synthesizer import Synthesizer
from engine.voice import SynthesisParams, Voice

from .audio import write_wav

__all__ = ["params_from_args", "run_say"]


def params_from_args(args: argparse.Namespace) -> SynthesisParams:
    """The synthesis controls the ``say`` flags ask for.

    Raises:
        ValueError: speed out of range, or other out-of-range controls.
    """
    if not 0.25 <= args.speed <= 4.0:
        raise ValueError(f"--speed must be in [0.25, 4], got {args.speed}")
    length_scale = 1.0 / args.speed
    if args.deterministic:
        return SynthesisParams.deterministic(length_scale)
    return SynthesisParams(length_scale=length_scale, seed=args.seed)


Adapt = Callable[[np.ndarray], np.ndarray]


def run_say(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    if getattr(args, "voice", None) is None:
        voice = Voice.load(device=args.device, precision=args.precision)
        adapt: Adapt = _unchanged
    else:
        synth = Synthesizer(device=args.device, precision=args.precision)
        try:
            fit = synth.register(args.voice)
        except ReferenceAudioError as exc:
            print(f"voxlive: {args.voice}: {exc.code}: {exc}", file=sys.stderr)
            return 2
        print(f"voxlive: voice {args.voice}: {fit.summary}", file=sys.stderr)
        voice = synth.voice

        def adapt(audio: np.ndarray) -> np.ndarray:
            return synth.adapt(audio, fit.transform)

    if args.file is None:
        return _say_one(voice, args.text, args.output, params, adapt)
    return _say_lines(voice, args, params, adapt)


def _unchanged(audio: np.ndarray) -> np.ndarray:
    return audio


def _say_one(voice: Voice, text: str, output, params: SynthesisParams, adapt: Adapt) -> int:
    try:
        requests, result = voice.requests(text, params)
    except TextError as exc:
        print(f"voxlive: {exc.code}: {exc}", file=sys.stderr)
        return 2
    _report_warnings(result.warnings)
    (audio,) = voice.synthesize_groups([requests])
    write_wav(output, adapt(audio), voice.sample_rate)
    return 0


def _say_lines(
    voice: Voice, args: argparse.Namespace, params: SynthesisParams, adapt: Adapt
) -> int:
    """One WAV per non-empty line, ``0001.wav`` … in line order; bad lines are reported.

    Returns:
        0, or 1 when any line could not be spoken (the others are still written).
    """
    lines = [line.strip() for line in args.file.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    args.output.mkdir(parents=True, exist_ok=True)
    numbers: list[int] = []
    groups = []
    for n, line in enumerate(lines, start=1):
        try:
            requests, result = voice.requests(line, params.offset_seed(n))
        except TextError as exc:
            print(f"voxlive: line {n}: {exc.code}: {exc}", file=sys.stderr)
            continue
        _report_warnings(result.warnings, f"line {n}: ")
        numbers.append(n)
        groups.append(requests)
    for n, audio in zip(numbers, voice.synthesize_groups(groups, max_batch=args.batch)):
        write_wav(args.output / f"{n:04d}.wav", adapt(audio), voice.sample_rate)
    return 0 if len(numbers) == len(lines) else 1


def _report_warnings(warnings: list[str], where: str = "") -> None:
    for warning in warnings:
        print(f"voxlive: warning: {where}{warning}", file=sys.stderr)
