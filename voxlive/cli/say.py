"""``voxlive say``: text (or a file of lines) to WAV, with the in-process engine.

Every utterance goes through :func:`engine.expression.render`: the emotion's
rate and pauses in the engine, its pitch, loudness and voice quality (plus
``--pitch``/``--volume`` and a ``--voice`` reference's adaptation) in one
expressive stage. Without any of those the samples are the engine's own, bit for bit.
``--demo-grid`` renders one sentence in every emotion (``voxlive/cli/demo_grid.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxlive.bench.texts import read_lines
from voxlive.engine.emotion import DEFAULT_INTENSITY, resolve
from voxlive.engine.expression import Expression, check_rate, render
from voxlive.engine.frontend import FrontendResult, TextError
from voxlive.engine.interface import Controls, ModelMissing, Text
from voxlive.engine.multivoice import AUTO, has_han
from voxlive.engine.offline import speak_many
from voxlive.engine.pcm import write_wav
from voxlive.engine.reference import ReferenceAudioError
from voxlive.engine.synthesizer import Synthesizer
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams
from voxlive.protocol.controls import INTENSITY, PITCH, SPEED, VOLUME

from .demo_grid import grid_clips, run_demo_grid

__all__ = ["check_say_args", "controls_from_args", "params_from_args", "run_say"]


def params_from_args(args: argparse.Namespace) -> SynthesisParams:
    """The synthesis controls the ``say`` flags ask for.

    Raises:
        ValueError: speed out of range, or other out-of-range controls.
    """
    length_scale = 1.0 / SPEED.check(args.speed, "--speed")
    if args.deterministic:
        return SynthesisParams.deterministic(length_scale)
    return SynthesisParams(length_scale=length_scale, seed=args.seed)


def check_say_args(args: argparse.Namespace) -> None:
    """Which of TEXT, ``-f`` and ``--demo-grid`` was given, and whether ``-o`` fits it.

    Raises:
        ValueError: a combination ``say`` cannot run (the message says what to give).
    """
    if args.demo_grid is not None:
        if args.file is not None:
            raise ValueError("--demo-grid and -f cannot be combined (the grid speaks one text)")
        if args.output is not None:
            raise ValueError("--demo-grid writes into its own directory; drop -o")
        if args.emotion is not None or args.intensity is not None:
            raise ValueError(
                "--demo-grid renders every emotion and intensity; drop --emotion/--intensity"
            )
        return
    if args.text is None and args.file is None:
        raise ValueError("say needs TEXT, -f FILE or --demo-grid OUTDIR")
    if args.output is None:
        where = "a directory for the WAVs of -f" if args.file is not None else "a WAV file"
        raise ValueError(f"-o/--output is required ({where})")


def controls_from_args(args: argparse.Namespace) -> tuple[str | None, float]:
    """The canonical ``--emotion`` (None when not given) and ``--intensity``.

    Also checks ``--pitch`` and ``--volume``; every message names its flag.

    Raises:
        ValueError: an unknown emotion (the message lists the supported ones), or a
            control out of range.
    """
    emotion = None
    if args.emotion is not None:
        try:
            emotion = resolve(args.emotion)
        except ValueError as exc:
            raise ValueError(f"--emotion: {exc}") from None
    intensity = DEFAULT_INTENSITY if args.intensity is None else args.intensity
    INTENSITY.check(intensity, "--intensity")
    PITCH.check(args.pitch, "--pitch")
    VOLUME.check(args.volume, "--volume")
    return emotion, intensity


def run_say(args: argparse.Namespace) -> int:
    """Run ``voxlive say``; every control is checked before the voice is loaded.

    Returns:
        0; 1 when some lines of ``-f`` could not be spoken; 2 for unspeakable text or
        an unusable reference clip.

    Raises:
        ValueError: a bad flag or combination (the CLI prints it and exits 2).
    """
    check_say_args(args)
    params = params_from_args(args)
    emotion, intensity = controls_from_args(args)
    if args.demo_grid is None:
        check_rate(Expression.create(emotion=emotion, intensity=intensity), params)
    else:
        for clip in grid_clips():
            check_rate(Expression.create(emotion=clip.emotion, intensity=clip.intensity), params)
    synth = Synthesizer(device=args.device, precision=args.precision, watermark=args.watermark)
    if not args.watermark:
        print(
            "voxlive: WATERMARK OFF: the output is not marked (a --voice clone still is)",
            file=sys.stderr,
        )
    voice = None
    if args.voice is not None:
        try:
            fit = synth.register(args.voice)
        except ReferenceAudioError as exc:
            print(f"voxlive: {args.voice}: {exc.code}: {exc}", file=sys.stderr)
            return 2
        print(f"voxlive: voice {args.voice}: {fit.summary}", file=sys.stderr)
        voice = fit.transform
    if args.demo_grid is not None:
        return run_demo_grid(synth, args, params, voice)
    lines = [args.text] if args.file is None else read_lines(args.file)
    if args.lang == "zh" or any(has_han(line) for line in lines):
        return _say_voices(synth, args, lines, emotion, intensity, voice)
    expression = synth.expression(
        emotion=emotion,
        intensity=intensity,
        pitch_st=args.pitch,
        volume_db=args.volume,
        voice=voice,
    )
    if args.file is None:
        return _say_one(synth, args.text, args.output, params, expression)
    return _say_lines(synth, lines, args.output, params, expression, args.batch)


def _say_one(
    synth: Synthesizer, text: str, output: Path, params: SynthesisParams, expression: Expression
) -> int:
    try:
        result = synth.voice.frontend.process(text)
    except TextError as exc:
        print(f"voxlive: {exc.code}: {exc}", file=sys.stderr)
        return 2
    _report_warnings(result.warnings)
    (audio,) = render(synth.voice, [result], [expression], [params], marker=synth.watermarker)
    write_wav(output, audio, synth.sample_rate)
    return 0


def _say_lines(
    synth: Synthesizer,
    lines: list[str],
    outdir: Path,
    params: SynthesisParams,
    expression: Expression,
    max_batch: int,
) -> int:
    """One WAV per line of ``-f`` (its non-empty lines), ``0001.wav`` … in line order;
    bad lines are reported.

    All good lines are rendered as one batch (``max_batch`` sentences per engine call).

    Returns:
        0, or 1 when any line could not be spoken (the others are still written).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    numbers: list[int] = []
    results: list[FrontendResult] = []
    for n, line in enumerate(lines, start=1):
        try:
            result = synth.voice.frontend.process(line)
        except TextError as exc:
            print(f"voxlive: line {n}: {exc.code}: {exc}", file=sys.stderr)
            continue
        _report_warnings(result.warnings, f"line {n}: ")
        numbers.append(n)
        results.append(result)
    audio = render(
        synth.voice,
        results,
        [expression] * len(results),
        [params.offset_seed(n) for n in numbers],
        max_batch=max_batch,
        marker=synth.watermarker,
    )
    for n, samples in zip(numbers, audio, strict=True):
        write_wav(outdir / f"{n:04d}.wav", samples, synth.sample_rate)
    return 0 if len(numbers) == len(lines) else 1


def _say_voices(
    synth: Synthesizer,
    args: argparse.Namespace,
    lines: list[str],
    emotion: str | None,
    intensity: float,
    voice: VoiceTransform | None,
) -> int:
    """Text with Chinese (or ``--lang zh``): every built-in voice, language run by run."""
    try:
        engine = synth.multivoice()
    except ModelMissing as exc:
        print(f"voxlive: {exc}", file=sys.stderr)
        return 2
    controls = Controls(
        emotion=emotion or "neutral",
        intensity=intensity,
        speed=args.speed,
        pitch_st=args.pitch,
        volume_db=args.volume,
        seed=0 if args.deterministic else args.seed,
        voice=voice,
    )
    numbers: list[int] = []
    texts: list[Text] = []
    for n, line in enumerate(lines, start=1):
        where = f"line {n}: " if args.file is not None else ""
        try:
            text = engine.prepare(line, args.lang or AUTO)
        except TextError as exc:
            print(f"voxlive: {where}{exc.code}: {exc}", file=sys.stderr)
            continue
        _report_warnings(text.warnings, where)
        numbers.append(n)
        texts.append(text)
    if not texts:
        return 2 if args.file is None else 1
    spoken = speak_many(engine, texts, [controls] * len(texts), max_batch=args.batch)
    if args.file is None:
        write_wav(args.output, spoken[0].audio, engine.sample_rate)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    for n, s in zip(numbers, spoken, strict=True):
        write_wav(args.output / f"{n:04d}.wav", s.audio, engine.sample_rate)
    return 0 if len(numbers) == len(lines) else 1


def _report_warnings(warnings: list[str], where: str = "") -> None:
    for warning in warnings:
        print(f"voxlive: warning: {where}{warning}", file=sys.stderr)
