"""``voxlive bench emotions``: what each emotion does to the audio, measured.

For each emotion at each intensity, the same sentences are rendered (one batch,
one seed) and measured (``engine.measure``): mean pitch, pitch range, speech
rate, loudness and pause time; the table holds the change from neutral, averaged
over the sentences. Distill-MOS (``voxlive/bench/mos.py``, when installed) judges every
clip: the table gives neutral's mean and each emotion's change from it (``mos``). The
expressive stage's real-time factor is timed beside the
engine's, in the same run (``rtf.stage``; ``rtf.world_stage`` is the same figure under
its older name). With ``--voice ref.wav`` the table is repeated for
that registered voice (fitted once, then emotions applied in the same pass).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.expression import Expression, render
from voxlive.engine.frontend import FrontendResult
from voxlive.engine.measure import ProsodyMeasure, measure
from voxlive.engine.phonemes import PAUSE_PHONEMES
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams, Voice

from . import mos as mos_judge
from .texts import read_lines

__all__ = ["MEASURES", "SENTENCES", "EmotionRun", "bench_emotions", "run_emotions"]

SENTENCES = [
    "Hello world, this is a test of the parity between two engines.",
    "Could you please turn left at the next intersection?",
    "Thank you so much for the twenty gifted subscriptions.",
    "The weather today is cloudy with a chance of rain in the afternoon.",
    "Watch out behind you, there is a dragon in the cave.",
    "I can't believe we finally beat the final boss.",
    "Please remember to save your progress before you quit the game.",
    "Why does the music stop every time I open the map?",
    "The train to Boston leaves at seven thirty in the morning.",
    "Reading books is one of the best ways to learn new things.",
    "The server will restart in five minutes, so please log out now.",
    "My favorite colors are blue, green, and purple.",
]
"""Default sentences: varied lengths, questions, commas (pauses), numbers."""

MEASURES = ("f0_mean_st", "f0_range_st", "rate_phones_s", "rms_db", "pause_s", "octave_errors")


@dataclass(slots=True)
class EmotionRun:
    """Every rendering of one voice, with its measures (kept for further judging)."""

    texts: list[str]
    audio: dict[tuple[str, float], list[np.ndarray]] = field(default_factory=dict)
    measures: dict[tuple[str, float], list[ProsodyMeasure]] = field(default_factory=dict)
    mos: dict[tuple[str, float], list[float]] = field(default_factory=dict)
    """Distill-MOS of each clip (empty without the judge)."""
    engine_s: float = 0.0
    stage_s: float = 0.0
    stage_audio_s: float = 0.0
    engine_audio_s: float = 0.0

    def mean(self, emotion: str, intensity: float, key: str) -> float:
        return float(np.mean([getattr(m, key) for m in self.measures[(emotion, intensity)]]))

    def delta(self, emotion: str, intensity: float, key: str) -> float:
        """Mean change from neutral (per sentence, then averaged)."""
        pairs = zip(self.measures[(emotion, intensity)], self.measures[("neutral", 0.0)])
        return float(np.mean([getattr(m, key) - getattr(n, key) for m, n in pairs]))

    def table(self) -> dict[str, object]:
        """Neutral's absolute means and every emotion's change from it."""
        intensities = sorted({k for (e, k) in self.measures if e != "neutral"})
        return {
            "neutral": {key: round(self.mean("neutral", 0.0, key), 3) for key in MEASURES}
            | self._mos("neutral", 0.0),
            "change": {
                e: {
                    str(k): {key: round(self.delta(e, k, key), 3) for key in MEASURES}
                    | self._mos(e, k, relative=True)
                    for k in intensities
                }
                for e in EMOTIONS
                if e != "neutral"
            },
        }

    def _mos(self, emotion: str, intensity: float, relative: bool = False) -> dict[str, float]:
        """``{"mos": mean}`` (less neutral's mean when ``relative``); ``{}`` without a judge."""
        if (emotion, intensity) not in self.mos:
            return {}
        value = float(np.mean(self.mos[(emotion, intensity)]))
        if relative:
            value -= float(np.mean(self.mos[("neutral", 0.0)]))
        return {"mos": round(value, 3)}


def run_emotions(
    voice: Voice,
    texts: list[str],
    *,
    center_hz: float,
    transform: VoiceTransform | None = None,
    intensities: tuple[float, ...] = (0.5, 1.0),
    seed: int = 1,
    judge: Callable[[np.ndarray, int], float] | None = None,
) -> EmotionRun:
    """Render ``texts`` neutral and in every emotion at every intensity, and measure.

    ``transform`` is a registered voice's fitted transform (None: the bundled voice);
    ``judge`` scores each clip's quality (Distill-MOS), if given.
    Each rendering is one batch of all texts with the same seed, so only the
    emotion differs between them.
    """
    results: list[FrontendResult] = [voice.frontend.process(t) for t in texts]
    phones = [
        sum(1 for s in r.sentences for p in s.phonemes if p not in PAUSE_PHONEMES and p != " ")
        for r in results
    ]
    run = EmotionRun(list(texts))
    plan = [("neutral", 0.0)] + [(e, k) for e in EMOTIONS if e != "neutral" for k in intensities]
    params = [SynthesisParams(seed=seed)] * len(texts)
    for emotion, k in plan:
        expr = Expression.create(emotion=emotion, intensity=k, voice=transform, center_hz=center_hz)
        timings: dict[str, float] = {}
        audio = render(voice, results, [expr] * len(texts), params, timings=timings)
        seconds = sum(len(a) for a in audio) / voice.sample_rate
        run.engine_s += timings["engine_s"]
        run.engine_audio_s += seconds
        if expr.transform is not None:
            run.stage_s += timings["stage_s"]
            run.stage_audio_s += seconds
        run.audio[(emotion, k)] = audio
        run.measures[(emotion, k)] = [
            measure(a, voice.sample_rate, n) for a, n in zip(audio, phones)
        ]
        if judge is not None:
            run.mos[(emotion, k)] = [judge(a, voice.sample_rate) for a in audio]
    return run


def bench_emotions(args: argparse.Namespace) -> dict[str, object]:
    """The ``voxlive bench emotions`` report (JSON-ready)."""
    from voxlive.engine.synthesizer import Synthesizer

    texts = SENTENCES[: args.sentences]
    if args.texts is not None:
        texts = read_lines(args.texts)
    intensities = tuple(float(x) for x in args.intensities.split(","))
    for k in intensities:
        if not 0.0 < k <= 1.0:
            raise ValueError(f"--intensities must be in (0, 1], got {k}")
    started = time.perf_counter()
    synth = Synthesizer(device=args.device, precision=args.precision)
    center = synth.pitch_center_hz()
    voices: dict[str, VoiceTransform | None] = {"default": None}
    fits: dict[str, object] = {}
    if args.voice is not None:
        fit = synth.register(args.voice)
        voices["registered"] = fit.transform
        fits["registered"] = fit.summary
    judge = None
    if args.mos and mos_judge.available():
        judge = mos_judge.mos
    report: dict[str, object] = {
        "sentences": len(texts),
        "mos": "Distill-MOS" if judge is not None else f"not measured ({mos_judge.INSTALL_HINT})",
        "intensities": list(intensities),
        "center_hz": round(center, 2),
        "voices": {},
    }
    engine_s = stage_s = engine_audio = stage_audio = 0.0
    for name, transform in voices.items():
        run = run_emotions(
            synth.voice,
            texts,
            center_hz=center,
            transform=transform,
            intensities=intensities,
            judge=judge,
        )
        report["voices"][name] = run.table() | ({"fit": fits[name]} if name in fits else {})  # type: ignore[index]
        engine_s += run.engine_s
        stage_s += run.stage_s
        engine_audio += run.engine_audio_s
        stage_audio += run.stage_audio_s
    report["rtf"] = {
        "engine": round(engine_s / engine_audio, 4),
        "stage": round(stage_s / stage_audio, 4) if stage_audio else None,
        "world_stage": round(stage_s / stage_audio, 4) if stage_audio else None,
        "engine_audio_s": round(engine_audio, 1),
        "stage_audio_s": round(stage_audio, 1),
    }
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def format_emotions_report(report: dict[str, object]) -> str:
    """A plain-text table of the report."""
    lines = []
    for name, table in report["voices"].items():  # type: ignore[attr-defined]
        neutral = table["neutral"]
        lines.append(
            f"{name} voice, neutral: F0 {neutral['f0_mean_st']:+.2f} st re 100 Hz, "
            f"range {neutral['f0_range_st']:.2f} st, {neutral['rate_phones_s']:.2f} phones/s, "
            f"{neutral['rms_db']:.2f} dBFS"
        )
        if "mos" in neutral:
            lines[-1] += f", MOS {neutral['mos']:.2f}"
        lines.append(
            f"  {'emotion':<10} {'k':>4} {'ΔF0 st':>8} {'Δrange':>8} {'Δrate':>8} "
            f"{'ΔRMS dB':>8} {'Δpause s':>9} {'ΔMOS':>6}"
        )
        for emotion, by_k in table["change"].items():
            for k, d in by_k.items():
                mos = f"{d['mos']:>+6.2f}" if "mos" in d else f"{'—':>6}"
                lines.append(
                    f"  {emotion:<10} {k:>4} {d['f0_mean_st']:>+8.2f} {d['f0_range_st']:>+8.2f} "
                    f"{d['rate_phones_s']:>+8.2f} {d['rms_db']:>+8.2f} {d['pause_s']:>+9.3f} {mos}"
                )
    rtf = report["rtf"]
    lines.append(f"RTF: engine {rtf['engine']}, expressive stage {rtf['stage']}")  # type: ignore[index]
    return "\n".join(lines)
