"""``voxlive bench engine``: our batched torch engine and Piper's onnxruntime voice, side by side.

With ``--voice zh``, the Mandarin voice instead, without a baseline (``engine_zh.py``).

Both run in one process on the same sentences, one after the other, so the
ratios compare like with like on a shared, noisy machine. Times include the
text front end on both sides.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np

from voxlive.engine.voice import SynthesisParams, Voice

from .texts import FIRST_AUDIO_SENTENCE, load_texts

__all__ = ["bench_engine", "format_engine_report"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _engine_figures(
    voice: Voice, texts: list[str], batches: list[int], repeats: int, items: int
) -> dict[str, Any]:
    params = SynthesisParams(seed=1)
    groups = [voice.requests(t, params)[0] for t in texts]
    work = (groups * (items // len(groups) + 1))[:items]
    voice.synthesize_groups(work[: max(batches)], max_batch=max(batches))  # warm up kernels
    throughput: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for n in batches:
        t0, c0 = time.perf_counter(), time.process_time()
        audio = voice.synthesize_groups(work, max_batch=n)
        wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        audio_s = sum(len(a) for a in audio) / voice.sample_rate
        throughput[str(n)] = audio_s / wall
        cpu[str(n)] = cpu_s / audio_s
    t0 = time.perf_counter()
    audio = [voice.synthesize_groups([g])[0] for g in groups]
    rtf = (time.perf_counter() - t0) / (sum(len(a) for a in audio) / voice.sample_rate)
    first: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        next(iter(voice.synthesize(FIRST_AUDIO_SENTENCE, params)))
        first.append((time.perf_counter() - t0) * 1e3)
    return {
        "audio_s_per_s": throughput,
        "cpu_s_per_audio_s": cpu,
        "rtf_batch1": rtf,
        "first_chunk_ms": {"p50": _pct(first, 50), "p95": _pct(first, 95)},
    }


def _piper_figures(texts: list[str], repeats: int, items: int) -> dict[str, Any]:
    from piper import PiperVoice

    from voxlive.engine.loader import default_voice_files

    files = default_voice_files()
    t0 = time.perf_counter()
    piper = PiperVoice.load(files.model, files.config)
    load_s = time.perf_counter() - t0

    def speak(text: str) -> np.ndarray:
        return np.concatenate([c.audio_float_array for c in piper.synthesize(text)])

    speak(texts[0])
    work = (texts * (items // len(texts) + 1))[:items]
    t0 = time.perf_counter()
    samples = sum(len(speak(t)) for t in work)
    wall = time.perf_counter() - t0
    whole = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        speak(FIRST_AUDIO_SENTENCE)
        whole.append((time.perf_counter() - t0) * 1e3)
    return {
        "audio_s_per_s": samples / piper.config.sample_rate / wall,
        "sentence_ms": {"p50": _pct(whole, 50), "p95": _pct(whole, 95)},
        "load_s": load_s,
    }


def bench_engine(args: argparse.Namespace) -> dict[str, Any]:
    """Run the engine benchmark; returns the JSON-ready report.

    Raises:
        ValueError: bad ``--texts`` file or ``--batches`` list.
    """
    voice = getattr(args, "voice", "en")
    texts = load_texts(args.texts) if voice == "en" or args.texts else []
    try:
        batches = sorted({int(b) for b in str(args.batches).split(",")})
    except ValueError as exc:
        raise ValueError(f"--batches must be comma-separated integers: {args.batches!r}") from exc
    if not batches or batches[0] < 1:
        raise ValueError("--batches must be positive integers")
    if args.items < 1 or args.repeats < 1:
        raise ValueError("--items and --repeats must be ≥ 1")
    if voice == "zh":
        return _bench_zh(args, texts, batches)
    t0 = time.perf_counter()
    model = Voice.load(device=args.device, precision=args.precision)
    load_s = time.perf_counter() - t0
    engine = _engine_figures(model, texts, batches, args.repeats, args.items)
    engine.update(
        load_s=load_s,
        peak_rss_mb=_peak_rss_mb(),
        device=str(model.device),
        precision=model.precision,
        threads=_threads(),
    )
    report: dict[str, Any] = {"engine": engine, "texts": len(texts), "voice": "en"}
    if not args.no_piper:
        piper = _piper_figures(texts, args.repeats, args.items)
        report["piper"] = piper
        best = max(engine["audio_s_per_s"].values())
        report["ratios"] = {
            "throughput": best / piper["audio_s_per_s"],
            "throughput_batch1": engine["audio_s_per_s"]["1"] / piper["audio_s_per_s"]
            if "1" in engine["audio_s_per_s"]
            else None,
            "first_audio": engine["first_chunk_ms"]["p50"] / piper["sentence_ms"]["p50"],
        }
    return report


def _bench_zh(args: argparse.Namespace, texts: list[str], batches: list[int]) -> dict[str, Any]:
    """The Mandarin voice's report: no Piper baseline (Piper has no such voice)."""
    from .engine_zh import ZH_BENCH_SENTENCES, reference_note, zh_engine_figures

    if args.precision != "float32":
        raise ValueError("--voice zh runs in float32 only")
    texts = texts or list(ZH_BENCH_SENTENCES)
    engine = zh_engine_figures(texts, batches, args.repeats, args.items, args.device)
    engine.update(peak_rss_mb=_peak_rss_mb(), threads=_threads())
    return {"engine": engine, "texts": len(texts), "voice": "zh", "reference": reference_note()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def format_engine_report(report: dict[str, Any]) -> str:
    """A few human-readable lines of the report."""
    e = report["engine"]
    voice = report.get("voice", "en")
    lines = [
        f"{voice} engine ({e['device']}, {e['precision']}, {e['threads']} threads): "
        f"load {e['load_s']:.2f} s, rtf@1 {e['rtf_batch1']:.3f}, "
        f"peak RSS {e['peak_rss_mb']:.0f} MB",
        "  audio s/s by batch: "
        + ", ".join(f"{b}: {v:.1f}" for b, v in e["audio_s_per_s"].items()),
        f"  first chunk p50 {e['first_chunk_ms']['p50']:.1f} ms, "
        f"p95 {e['first_chunk_ms']['p95']:.1f} ms",
    ]
    if "reference" in report and not report["reference"]["measured"]:
        lines.append(f"TFLite reference: not measured ({report['reference']['why']})")
    if "piper" in report:
        p, r = report["piper"], report["ratios"]
        lines += [
            f"piper (onnxruntime): {p['audio_s_per_s']:.1f} audio s/s, "
            f"sentence p50 {p['sentence_ms']['p50']:.1f} ms",
            f"ratios: throughput {r['throughput']:.2f}x, first audio {r['first_audio']:.3f}",
        ]
    return "\n".join(lines)
