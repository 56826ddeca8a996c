"""The emotion table, measured: every emotion moves the audio the way its profile says.

Ten sentences, each rendered neutral and in every emotion at intensities 0.5 and 1
(one batch per rendering, one seed, so only the emotion differs), on the bundled
voice and on a registered voice; the same code as ``voxlive bench emotions``.
Whisper tiny.en must still understand every emotion at full intensity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from voxlive.bench.emotions import SENTENCES, EmotionRun, run_emotions
from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.world import analyze, apply, synthesize

from ..judge import load_whisper, transcribe, wer

pytestmark = pytest.mark.slow  # the real voice end to end

TEXTS = SENTENCES[:10]
MAX_WER = 0.12
RATE = 22050

# Smallest change at intensity 1 that counts as "moved", and how much a measure at
# intensity 1 may fall short of the one at 0.5 before it no longer "grows" (the
# pitch tracker's noise on ten sentences; see engine/measure.py).
MIN_MOVE = {"f0_mean_st": 0.4, "f0_range_st": 0.2, "rate_phones_s": 0.2, "rms_db": 0.4,
            "pause_s": 0.01}  # fmt: skip
GROWTH_SLACK = {"f0_mean_st": 0.2, "f0_range_st": 0.5, "rate_phones_s": 0.2, "rms_db": 0.2,
                "pause_s": 0.02}  # fmt: skip


def expected_directions(name: str) -> dict[str, int]:
    """The sign of each measure's change the profile states (0: the profile says none)."""
    p = EMOTIONS[name]
    sign = lambda x: (x > 0) - (x < 0)  # noqa: E731
    return {
        "f0_mean_st": sign(p.f0_shift_st),
        "f0_range_st": sign(math.log(p.f0_range)),
        "rate_phones_s": sign(math.log(p.rate)),
        "rms_db": sign(p.gain_db),
        "pause_s": sign(math.log(p.pause)),
    }


@pytest.fixture(scope="module")
def center_hz(voice) -> float:
    from voxlive.engine.adapt import Probe
    from voxlive.engine.synthesizer import PROBE_SENTENCE

    (probe,) = voice.synthesize_texts([PROBE_SENTENCE], SynthesisParams.deterministic())
    return Probe.from_audio(probe, voice.sample_rate).stats["f0_median_hz"]


@pytest.fixture(scope="module")
def default_run(voice, center_hz) -> EmotionRun:
    return run_emotions(voice, TEXTS, center_hz=center_hz)


@pytest.fixture(scope="module")
def registered_run(voice, center_hz) -> EmotionRun:
    """A registered voice: a synthetic speaker 3 st higher with a shorter vocal tract, fitted."""
    from voxlive.engine.synthesizer import Synthesizer

    speech = voice.synthesize_texts(SENTENCES[10:12] + TEXTS[:2], SynthesisParams(seed=9))
    pause = np.zeros(RATE // 2, np.float32)
    clip = np.concatenate([x for s in speech for x in (s, pause)])
    other = synthesize(apply(analyze(clip, RATE), VoiceTransform(f0_shift_st=3, formant_scale=1.1)))
    fit = Synthesizer().register((other, RATE))
    assert not fit.transform.is_identity()
    return run_emotions(voice, TEXTS, center_hz=center_hz, transform=fit.transform)


def check_table(run: EmotionRun) -> list[str]:
    problems = []
    for name in EMOTIONS:
        if name == "neutral":
            continue
        for key, direction in expected_directions(name).items():
            if direction == 0:
                continue
            half, full = run.delta(name, 0.5, key), run.delta(name, 1.0, key)
            if direction * full < MIN_MOVE[key]:
                problems.append(
                    f"{name} {key}: {full:+.2f} at intensity 1, expected sign {direction:+d}"
                )
            if direction * full < direction * half - GROWTH_SLACK[key]:
                problems.append(f"{name} {key}: {half:+.2f} at 0.5 but {full:+.2f} at 1")
    return problems


def report(run: EmotionRun) -> str:
    rows = [
        f"{'emotion':<10} {'k':>4} {'dF0':>7} {'drange':>7} {'drate':>7} {'dRMS':>7} {'dpause':>7}"
    ]
    for name in EMOTIONS:
        for k in (0.5, 1.0):
            if name == "neutral":
                continue
            d = [run.delta(name, k, key) for key in expected_directions(name)]
            rows.append(f"{name:<10} {k:>4} " + " ".join(f"{x:>+7.2f}" for x in d))
    return "\n".join(rows)


def test_every_emotion_moves_the_default_voice_as_its_profile_says(default_run):
    problems = check_table(default_run)
    assert not problems, "\n".join(problems) + "\n" + report(default_run)


def test_every_emotion_moves_a_registered_voice_as_its_profile_says(registered_run):
    problems = check_table(registered_run)
    assert not problems, "\n".join(problems) + "\n" + report(registered_run)


def test_whisper_understands_every_emotion_at_full_intensity(default_run):
    whisper = load_whisper()
    failures = []
    for name in EMOTIONS:
        key = (name, 0.0) if name == "neutral" else (name, 1.0)
        heard = [transcribe(whisper, a, RATE) for a in default_run.audio[key]]
        score = wer(TEXTS, heard)
        if score > MAX_WER:
            failures.append(f"{name}: WER {score:.3f} > {MAX_WER}: {heard}")
    assert not failures, "\n".join(failures)
