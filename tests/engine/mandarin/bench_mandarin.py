"""Speed of the Mandarin port on this CPU (not a test): real-time factor and first chunk.

    python tests/engine/mandarin/bench_mandarin.py [--threads 1 2] [--repeats 5]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
