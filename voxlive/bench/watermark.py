"""``voxlive bench watermark``: what the Perth watermark costs, what it survives, what it
never claims.

On the bench sentences spoken by the bundled voice, side by side in one run:

- **cost**: the engine's wall time for the batch, against marking the same audio as
  the server does (every utterance streamed in the server's chunk sizes, one encoder
  batch per round of chunks) and as ``voxlive say`` does (whole clips, one batch);
- **first audio**: the compute added before a stream's first chunk leaves (median of
  the sentences), and the audio a stream holds back while it runs;
- **robustness**: marked clips after 16 kHz resampling, MP3 at 64 kbps, ±6 dB and
  0.5 s cut off both ends, detected;
- **false positives**: the same set unmarked, and espeak-ng's English and Mandarin
  under the same treatments, never detected;
- **look-ahead**: for 0, 2, 4, 8 and 15 frames of the encoder's right context, the audio
  held back and how far the streamed mark is from the whole clip's (RMS of the
  difference over RMS of the mark);
- **quality** (``--mos``): Distill-MOS of marked against unmarked.
"""

from __future__ import annotations

import functools
import io
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .texts import BENCH_SENTENCES

__all__ = ["bench_watermark", "format_watermark", "mp3"]

CHUNKS = (4096, 8192, 16384, 32768)
"""The server's chunk sizes at 22.05 kHz (16 latent frames, doubling to 128)."""
ESPEAK = (
    ("en-us", "Thanks for the follow! Tonight we try the hardest level of the game."),
    ("en-us", "Could you tell me which way the old market is from here?"),
    ("en-gb", "Please keep the chat friendly and respectful to everyone."),
    ("en-gb", "The guards will close the city gates at sunset, so hurry."),
    ("cmn", "谢谢大家的关注，欢迎来到直播间。"),
    ("cmn", "今天我们一起把这一关打完，然后再看看弹幕里大家的问题。"),
    ("cmn", "外面下雨了，记得带伞，路上注意安全。"),
    ("cmn", "这个问题问得好，我们等一下慢慢聊。"),
)


def _chunks(n: int) -> list[int]:
    sizes: list[int] = []
    i = 0
    while sum(sizes) < n:
        sizes.append(CHUNKS[min(i, len(CHUNKS) - 1)])
        i += 1
    return sizes


def mp3(audio: np.ndarray, rate: int, kbps: int = 64) -> tuple[np.ndarray, int]:
    """``audio`` through an MP3 encoder at ``kbps`` and back (LAME, then libsndfile)."""
    import lameenc
    import soundfile as sf

    enc = lameenc.Encoder()
    enc.set_bit_rate(kbps)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(2)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    data, out_rate = sf.read(io.BytesIO(enc.encode(pcm) + enc.flush()), dtype="float32")
    return data, int(out_rate)


def _cut(x: np.ndarray, rate: int) -> tuple[np.ndarray, int] | None:
    """0.5 s off both ends, for clips that keep at least 0.5 s."""
    return (x[rate // 2 : -(rate // 2)], rate) if len(x) >= 3 * rate // 2 else None


def _attacks() -> dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, int] | None]]:
    from voxlive.engine.resample import resample

    return {
        "as_is": lambda x, r: (x, r),
        "resampled_16k": lambda x, r: (resample(x, r, 16000), 16000),
        "mp3_64k": mp3,
        "gain_plus_6db": lambda x, r: (np.clip(x * 2, -1, 1), r),
        "gain_minus_6db": lambda x, r: (x * 0.5, r),
        "cut_0_5s_both_ends": _cut,
    }


def _espeak() -> list[tuple[np.ndarray, int]]:
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        return []
    clips = []
    for voice, text in ESPEAK:
        wav = subprocess.run(
            ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
        ).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        clips.append((audio, int(rate)))
    return clips


def _streamed(marker: Any, audios: Sequence[np.ndarray], rate: int) -> list[np.ndarray]:
    """Every clip through its own stream, in the server's chunk sizes, one encoder batch a
    round (what the marking thread does when utterances run side by side)."""
    streams = [marker.stream(rate) for _ in audios]
    plans = [_chunks(len(a)) for a in audios]
    at = [0] * len(audios)
    outs: list[list[np.ndarray]] = [[] for _ in audios]
    for r in range(max(len(p) for p in plans)):
        live = [i for i, p in enumerate(plans) if r < len(p)]
        blocks = []
        for i in live:
            n = plans[i][r]
            chunk = audios[i][at[i] : at[i] + n]
            at[i] += n
            blocks.append(streams[i].feed(chunk, at[i] >= len(audios[i])))
        residuals = iter(marker.encode([b for b in blocks if b is not None]))
        for i, b in zip(live, blocks):
            outs[i].append(streams[i].take(next(residuals) if b is not None else None))
    return [np.concatenate(o) for o in outs]


def _on_marking_thread(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``, its wall time and its CPU time, on a thread set up as the server's
    marking thread."""
    import threading

    import torch

    from voxlive.engine.marked import MARKING_THREADS

    box: list[Any] = []

    def run() -> None:
        torch.set_num_threads(MARKING_THREADS)
        t0 = time.perf_counter()
        cpu0 = time.thread_time()
        box.append(work())
        box.append(time.perf_counter() - t0)
        box.append(time.thread_time() - cpu0)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return box[0], box[1], box[2]


def bench_watermark(
    texts: Sequence[str] = BENCH_SENTENCES,
    device: str = "cpu",
    with_mos: bool = False,
    strength: float | None = None,
) -> dict[str, Any]:
    """Measure (module docstring); returns the report."""
    import torch

    from voxlive.engine.expression import Expression, render
    from voxlive.engine.marked import Watermarker
    from voxlive.engine.voice import SynthesisParams, Voice
    from voxlive.engine.watermark import (
        FIRST_LOOKAHEAD,
        LOOKAHEAD,
        REACH,
        STRENGTH,
        detect,
        hold_back,
    )

    voice = Voice.load(device=device)
    rate = voice.sample_rate
    results = [voice.frontend.process(t) for t in texts]
    expressions = [Expression.create()] * len(texts)
    params = [SynthesisParams(seed=i) for i in range(len(texts))]
    render(voice, results[:2], expressions[:2], params[:2])  # kernels built
    marker = Watermarker(device, strength=STRENGTH if strength is None else strength)
    net = marker.net
    _streamed(marker, [np.zeros(rate, np.float32)], rate)  # warm
    timings: dict[str, float] = {}
    cpu0 = time.process_time()
    clean = render(voice, results, expressions, params, timings=timings)
    engine_cpu_s = time.process_time() - cpu0
    engine_s = timings["engine_s"]
    audio_s = sum(len(a) for a in clean) / rate
    streamed, stream_s, stream_cpu_s = _on_marking_thread(lambda: _streamed(marker, clean, rate))
    t0 = time.perf_counter()
    marker.mark(clean, rate)
    whole_s = time.perf_counter() - t0

    def first_chunk(a: np.ndarray) -> None:
        s = marker.stream(rate)
        block = s.feed(a[: CHUNKS[0]])
        s.take(marker.encode([block])[0] if block is not None else None)

    first_ms = []
    for a in clean:
        _, wall, _ = _on_marking_thread(functools.partial(first_chunk, a))
        first_ms.append(wall * 1000)
    sweep = {}
    whole = marker.mark(clean, rate)
    for frames in (0, 2, 4, 8, REACH):
        first = REACH if frames == REACH else FIRST_LOOKAHEAD  # 15: the exact stream
        alt = Watermarker(device, lookahead=frames, strength=marker.strength, first_lookahead=first)
        out = _streamed(alt, clean, rate)
        err = [
            float(np.sqrt(np.mean((o - w) ** 2)) / np.sqrt(np.mean((w - c) ** 2)))
            for o, w, c in zip(out, whole, clean)
        ]
        sweep[str(frames)] = {
            "held_back_ms": round(hold_back(frames) * 1000, 1),
            "mark_error_vs_whole_clip": round(statistics.mean(err), 4),
            "detected": sum(detect(net, o, rate) >= 0.5 for o in out),
        }
    attacks = _attacks()
    hits = {name: 0 for name in attacks}
    tried = {name: 0 for name in attacks}
    for a in streamed:
        for name, attack in attacks.items():
            clip = attack(a, rate)
            if clip is not None:
                tried[name] += 1
                hits[name] += detect(net, *clip) >= 0.5
    clean_clips = [(a, rate) for a in clean] + _espeak()
    false = 0
    scores: list[float] = []
    for a, r in clean_clips:
        for attack in attacks.values():
            clip = attack(a, r)
            if clip is not None:
                value = detect(net, *clip)
                scores.append(value)
                false += value >= 0.5
    n_marked = sum(tried.values())
    report: dict[str, Any] = {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "sentences": len(texts),
        "audio_s": round(audio_s, 2),
        "engine_s": round(engine_s, 3),
        "engine_rtf": round(engine_s / audio_s, 4),
        "stream_mark_s": round(stream_s, 3),
        "stream_mark_rtf": round(stream_s / audio_s, 4),
        "stream_cost_vs_engine": round(stream_s / engine_s, 3),
        "engine_cpu_s": round(engine_cpu_s, 3),
        "stream_mark_cpu_s": round(stream_cpu_s, 3),
        "stream_cpu_vs_engine_cpu": round(stream_cpu_s / engine_cpu_s, 3),
        "whole_mark_s": round(whole_s, 3),
        "whole_cost_vs_engine": round(whole_s / engine_s, 3),
        "first_chunk_mark_ms": {
            "median": round(statistics.median(first_ms), 1),
            "max": round(max(first_ms), 1),
        },
        "lookahead_frames": LOOKAHEAD,
        "strength": marker.strength,
        "held_back_ms": round(hold_back() * 1000, 1),
        "held_back_first_block_ms": round(hold_back(FIRST_LOOKAHEAD) * 1000, 1),
        "detected": {k: f"{v}/{tried[k]}" for k, v in hits.items()},
        "detection_accuracy": round(sum(hits.values()) / n_marked, 4),
        "clean_clips": len(scores),
        "false_positives": int(false),
        "clean_score_max": round(max(scores), 4),
        "lookahead_sweep": sweep,
    }
    if with_mos:
        from .mos import mos
        from .stages import HELD_OUT

        held = [voice.frontend.process(t) for t in HELD_OUT]
        held_clean = render(voice, held, [Expression.create()] * len(held), params[: len(held)])
        held_marked = _streamed(marker, held_clean, rate)
        pairs = {"bench": (clean, streamed), "held_out": (held_clean, held_marked)}
        for name, (unmarked, marked) in pairs.items():
            before = statistics.mean(mos(x, rate) for x in unmarked)
            after = statistics.mean(mos(x, rate) for x in marked)
            report[f"mos_{name}"] = {
                "unmarked": round(before, 3),
                "marked": round(after, 3),
                "drop": round(before - after, 3),
            }
    marker.close()
    return report


def format_watermark(report: dict[str, Any]) -> str:
    lines = [
        f"{report['sentences']} sentences, {report['audio_s']} s of audio on "
        f"{report['device']} ({report['torch_threads']} threads)",
        f"engine: {report['engine_s']} s (RTF {report['engine_rtf']})",
        f"marking as the server streams: {report['stream_mark_s']} s = "
        f"{report['stream_cost_vs_engine']}× the engine; CPU "
        f"{report['stream_cpu_vs_engine_cpu']}× the engine's",
        f"marking whole clips: {report['whole_mark_s']} s = "
        f"{report['whole_cost_vs_engine']}× the engine",
        f"first chunk: +{report['first_chunk_mark_ms']['median']} ms median "
        f"(max {report['first_chunk_mark_ms']['max']}); {report['held_back_ms']} ms held back",
        "detected: " + ", ".join(f"{k} {v}" for k, v in report["detected"].items()),
        f"false positives: {report['false_positives']} of {report['clean_clips']} clean clips "
        f"(highest score {report['clean_score_max']})",
    ]
    for name in ("bench", "held_out"):
        if f"mos_{name}" in report:
            m = report[f"mos_{name}"]
            lines.append(
                f"Distill-MOS ({name} sentences): {m['unmarked']} unmarked, {m['marked']} "
                f"marked (drop {m['drop']})"
            )
    return "\n".join(lines)
