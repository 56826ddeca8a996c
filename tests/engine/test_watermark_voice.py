"""The watermark on the real voices: found on everything they say, never on what they say
unmarked, and not heard (Distill-MOS). Slow: the bundled voices and the judge."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from tests.mos import load_mos, mos
from voxlive.bench.stages import HELD_OUT
from voxlive.cli.parser import main
from voxlive.engine.expression import Expression, render
from voxlive.engine.interface import Controls
from voxlive.engine.marked import MarkedEngine, Watermarker
from voxlive.engine.offline import speak_many
from voxlive.engine.pcm import write_wav
from voxlive.engine.vits import VitsEngine
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.watermark import detect, load_perthnet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net():
    return load_perthnet()


@pytest.fixture(scope="module")
def spoken(voice):
    """HELD_OUT spoken by the bundled voice: unmarked, marked whole, marked streamed."""
    results = [voice.frontend.process(t) for t in HELD_OUT]
    expressions = [Expression.create()] * len(results)
    params = [SynthesisParams(seed=i) for i in range(len(results))]
    marker = Watermarker()
    try:
        clean = render(voice, results, expressions, params)
        whole = render(voice, results, expressions, params, marker=marker)
        engine = MarkedEngine(VitsEngine(voice), marker)
        texts = [engine.prepare(t) for t in HELD_OUT]
        streamed = [s.audio for s in speak_many(engine, texts, [Controls(seed=1)] * len(texts))]
    finally:
        marker.close()
    return clean, whole, streamed


def test_everything_the_voice_says_is_marked_and_nothing_else(net, spoken, voice):
    clean, whole, streamed = spoken
    rate = voice.sample_rate
    # Marked at 0.5 and up; as made, the voice's clips score 0.85 or more (0.6 strength).
    assert all(detect(net, a, rate) < 0.1 for a in clean)
    assert all(detect(net, a, rate) > 0.7 for a in whole)
    assert all(detect(net, a, rate) > 0.7 for a in streamed)
    for c, w in zip(clean, whole):
        assert len(c) == len(w)


def test_the_mark_costs_at_most_0_05_of_distill_mos(spoken, voice):
    load_mos()
    clean, whole, streamed = spoken
    rate = voice.sample_rate
    before = statistics.mean(mos(a, rate) for a in clean)
    after = statistics.mean(mos(a, rate) for a in whole)
    assert before - after <= 0.05, (before, after)


def test_the_mandarin_voice_is_marked_too(net, mandarin):
    marker = Watermarker()
    try:
        engine = MarkedEngine(mandarin, marker)
        texts = [engine.prepare("谢谢大家的关注，欢迎来到直播间。今天我们一起把这一关打完。")]
        (marked,) = speak_many(engine, texts, [Controls(seed=2)])
    finally:
        marker.close()
    (clean,) = speak_many(mandarin, texts, [Controls(seed=2)])
    assert len(marked.audio) == len(clean.audio)
    assert detect(net, clean.audio, mandarin.sample_rate) < 0.1
    assert detect(net, marked.audio, mandarin.sample_rate) > 0.7


def test_say_marks_by_default_and_a_clone_even_with_no_watermark(tmp_path, net, shared_voice):
    import soundfile as sf

    (source,) = shared_voice.synthesize_texts(
        [
            "The old lighthouse keeper walked along the cliff every evening, counting the "
            "ships that passed, and writing their names in a small leather notebook."
        ],
        SynthesisParams(seed=8),
    )
    ref = tmp_path / "ref.wav"
    write_wav(ref, np.tile(source, 2), shared_voice.sample_rate)
    runs = {
        "default": [],
        "off": ["--no-watermark"],
        "clone_off": ["--no-watermark", "--voice", str(ref)],
    }
    scores = {}
    for name, flags in runs.items():
        out = tmp_path / f"{name}.wav"
        assert main(["say", "Thanks for the raid, everyone!", "-o", str(out), *flags]) == 0
        audio, rate = sf.read(out, dtype="float32")
        scores[name] = detect(net, audio, rate)
    assert scores["default"] > 0.7
    assert scores["off"] < 0.1
    assert scores["clone_off"] > 0.7
