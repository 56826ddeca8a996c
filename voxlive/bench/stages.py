"""Expressive stages side by side: WORLD (``engine.world``) against PSOLA (``engine.psola``).

The engine renders each emotion once (its rate and pauses are the engine's job);
both stages then process the very same samples, fed whole as ``render`` feeds
them, with the same phrase-end contours. For each emotion and stage the report
gives the change from neutral in pitch (octave-robust tracker), pitch range and
loudness (``engine.measure``), the stage's CPU seconds per audio second beside
the engine's own, and, when judges are passed in, mean Distill-MOS and Whisper's
word error rate. The judges live with the tests (``tests/mos.py``,
``tests/judge.py``) and are handed in, so this module needs neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.expression import PAUSE_PHONEMES, Expression, phrase_span
from voxlive.engine.measure import ProsodyMeasure, measure
from voxlive.engine.psola import PsolaAdapter
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams, Voice
from voxlive.engine.world import StreamAdapter

__all__ = ["HELD_OUT", "STAGES", "compare_stages"]

HELD_OUT = [
    "The quick brown fox jumps over the lazy dog.",
    "Welcome back to the stream, everyone!",
    "She sells sea shells by the sea shore.",
    "Our next guest is a famous scientist from the university.",
    "Good night, and see you all tomorrow.",
    "A journey of a thousand miles begins with a single step.",
    "Wow, that was an incredible play by the whole team!",
    "Do not feed the animals after midnight.",
]
"""Sentences the stage was not tuned on (none is in ``voxlive bench emotions``' list)."""

Stage = Callable[[VoiceTransform, int, float], StreamAdapter | PsolaAdapter]
STAGES: dict[str, Stage] = {"world": StreamAdapter, "psola": PsolaAdapter}

MosJudge = Callable[[np.ndarray, int], float]
Hear = Callable[[np.ndarray, int], str]
WordErrorRate = Callable[[Sequence[str], Sequence[str]], float]


def _engine(
    voice: Voice, texts: Sequence[str], expr: Expression, seed: int
) -> tuple[list[np.ndarray], list[list[tuple[int, int]]], float]:
    """The engine's audio of each text (no stage), its phrase spans and CPU seconds."""
    results = [voice.frontend.process(t) for t in texts]
    params = expr.params(SynthesisParams(seed=seed))
    groups = [
        [expr.request(s.ids, s.phonemes, params.offset_seed(i)) for i, s in enumerate(r.sentences)]
        for r in results
    ]
    durations: list[list[list[int]]] = []
    t0 = time.process_time()
    audio = voice.synthesize_groups(groups, durations=durations)
    cpu = time.process_time() - t0
    spans = []
    for result, timing in zip(results, durations):
        at, phrases = 0, []
        for sentence, d in zip(result.sentences, timing):
            start, end = phrase_span(sentence.phonemes, d)
            phrases.append((at + start, at + end))
            at += sum(d)
        spans.append(phrases)
    return audio, spans, cpu


def _apply(
    make: Stage,
    transform: VoiceTransform,
    audio: np.ndarray,
    phrases: list[tuple[int, int]],
    sample_rate: int,
    center_hz: float,
) -> np.ndarray:
    stage = make(transform, sample_rate, center_hz)
    for start, end in phrases:
        stage.phrase(start, end)
    return np.concatenate([stage.process(audio), stage.flush()])


def compare_stages(
    voice: Voice,
    *,
    center_hz: float,
    texts: Sequence[str] = HELD_OUT,
    intensity: float = 1.0,
    seed: int = 1,
    mos: MosJudge | None = None,
    hear: Hear | None = None,
    word_error_rate: WordErrorRate | None = None,
) -> dict[str, Any]:
    """Every emotion at ``intensity`` through each stage, measured (JSON-ready).

    ``mos`` scores one clip; ``hear`` transcribes one clip and ``word_error_rate``
    scores transcripts against ``texts`` (both or neither).

    Raises:
        ValueError: a rendering has no voiced speech to measure.
    """
    rate = voice.sample_rate
    phones = [
        sum(1 for s in r.sentences for p in s.phonemes if p not in PAUSE_PHONEMES and p != " ")
        for r in (voice.frontend.process(t) for t in texts)
    ]
    judge_words = hear is not None and word_error_rate is not None

    def judged(audio: list[np.ndarray]) -> dict[str, float]:
        out: dict[str, float] = {}
        if mos is not None:
            out["mos"] = round(float(np.mean([mos(a, rate) for a in audio])), 3)
        if judge_words:
            assert hear is not None and word_error_rate is not None
            out["wer"] = round(word_error_rate(list(texts), [hear(a, rate) for a in audio]), 4)
        return out

    neutral, _, engine_cpu = _engine(voice, texts, Expression.create(center_hz=center_hz), seed)
    engine_audio_s = sum(len(a) for a in neutral) / rate
    base = [measure(a, rate, n) for a, n in zip(neutral, phones)]
    report: dict[str, Any] = {
        "sentences": len(texts),
        "intensity": intensity,
        "center_hz": round(center_hz, 2),
        "neutral": {
            key: round(float(np.mean([getattr(m, key) for m in base])), 3)
            for key in ("f0_mean_st", "f0_range_st", "rms_db")
        }
        | judged(neutral),
        "emotions": {},
    }
    stage_cpu = dict.fromkeys(STAGES, 0.0)
    stage_audio_s = 0.0
    for emotion in EMOTIONS:
        if emotion == "neutral":
            continue
        expr = Expression.create(emotion=emotion, intensity=intensity, center_hz=center_hz)
        assert expr.transform is not None
        audio, spans, cpu = _engine(voice, texts, expr, seed)
        engine_cpu += cpu
        engine_audio_s += sum(len(a) for a in audio) / rate
        stage_audio_s += sum(len(a) for a in audio) / rate
        row: dict[str, Any] = {}
        for name, make in STAGES.items():
            t0 = time.process_time()
            tr = expr.transform
            out = [_apply(make, tr, a, p, rate, center_hz) for a, p in zip(audio, spans)]
            stage_cpu[name] += time.process_time() - t0
            got = [measure(a, rate, n) for a, n in zip(out, phones)]

            def change(key: str, got: list[ProsodyMeasure] = got) -> float:
                pairs = zip(got, base)
                return round(
                    float(np.mean([getattr(g, key) - getattr(b, key) for g, b in pairs])), 3
                )

            row[name] = {
                "f0_shift_st": change("f0_mean_st"),
                "range_change_st": change("f0_range_st"),
                "rms_change_db": change("rms_db"),
            } | judged(out)
        report["emotions"][emotion] = row
    engine_rate = engine_cpu / engine_audio_s
    report["cpu_s_per_audio_s"] = {"engine": round(engine_rate, 4)} | {
        name: round(cpu / stage_audio_s, 4) for name, cpu in stage_cpu.items()
    }
    return report
