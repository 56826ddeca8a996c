"""What the Chinese voice sounds like, measured (not a test): intelligibility and prosody.

    python -m tests.engine.mandarin.measure_zh cer [EMOTION ...]
    python -m tests.engine.mandarin.measure_zh prosody

``cer``: Whisper base's character error rate (``tests/judge_zh.py``) on the 22 sentences
of ``sentences_zh.py``, neutral and in each EMOTION at intensity 1, and the sentences it
got wrong. ``prosody``: each emotion's (and ±2 st pitch's) change from neutral in mean
pitch, pitch range, articulation rate and loudness (``engine/measure.py``), on the
first 8 sentences. Figures go to docs/performance.md.
"""

from __future__ import annotations

import sys

import numpy as np

from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.interface import Controls
from voxlive.engine.mandarin.engine import MandarinEngine
from voxlive.engine.measure import measure
from voxlive.engine.offline import speak_many

from ...judge_zh import cer, load_whisper_zh, transcribe_zh
from .sentences_zh import SENTENCES_ZH

RATE = 24000
KEYS = ("f0_mean_st", "f0_range_st", "rate_phones_s", "rms_db", "pause_s")


def error_rates(engine: MandarinEngine, emotions: list[str]) -> None:
    whisper = load_whisper_zh()
    texts = [engine.prepare(t) for t in SENTENCES_ZH]
    for emotion in emotions:
        controls = [Controls(emotion=emotion, intensity=1.0)] * len(texts)
        heard = [transcribe_zh(whisper, s.audio, RATE) for s in speak_many(engine, texts, controls)]
        print(f"{emotion}: CER {cer(SENTENCES_ZH, heard):.3f}")
        for ref, hyp in zip(SENTENCES_ZH, heard):
            if cer([ref], [hyp]) > 0:
                print(f"  {ref} | {hyp}")


def prosody(engine: MandarinEngine) -> None:
    texts = [engine.prepare(t) for t in SENTENCES_ZH[:8]]
    tones = [sum(p[-1:] in "12345" for s in t.sentences for p in s.phonemes) for t in texts]

    def run(c: Controls) -> list[object]:
        spoken = speak_many(engine, texts, [c] * len(texts))
        return [measure(s.audio, RATE, n) for s, n in zip(spoken, tones)]

    base = run(Controls())
    cases = [("pitch +2", Controls(pitch_st=2)), ("pitch -2", Controls(pitch_st=-2))]
    cases += [(e, Controls(emotion=e, intensity=1.0)) for e in EMOTIONS if e != "neutral"]
    print(f"{'':<10}" + "".join(f"{k:>15}" for k in KEYS))
    for label, c in cases:
        moved = run(c)
        deltas = [
            np.mean([getattr(m, k) - getattr(b, k) for m, b in zip(moved, base)]) for k in KEYS
        ]
        print(f"{label:<10}" + "".join(f"{d:>+15.2f}" for d in deltas))


if __name__ == "__main__":
    what, *rest = sys.argv[1:] or ["cer"]
    zh = MandarinEngine.load()
    if what == "prosody":
        prosody(zh)
    else:
        error_rates(zh, rest or ["neutral"])
