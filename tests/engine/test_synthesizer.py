"""The in-process ``Synthesizer`` API, with real reference clips."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile

from engine.synthesizer import Synthesizer
from engine.voice import SynthesisParams
from engine.world import VoiceTransform, analyze, apply, synthesize, yin_median

RATE = 22050
REFERENCE_TEXT = (
    "The old library at the end of the street opens early in the morning. "
    "Inside, the shelves reach all the way to the ceiling, and the air smells of paper."
)


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer()


@pytest.fixture(scope="module")
def reference_wav(synth) -> bytes:
    """A synthetic speaker: the bundled voice moved up 5 semitones, formants x1.12."""
    (audio,) = synth.voice.synthesize_texts([REFERENCE_TEXT], SynthesisParams(seed=8))
    moved = synthesize(
        apply(analyze(audio, RATE), VoiceTransform(f0_shift_st=5, formant_scale=1.12))
    )
    buf = io.BytesIO()
    soundfile.write(buf, moved, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_without_a_reference_the_bundled_voice_speaks_unchanged(synth) -> None:
    got = synth.tts("Hello there, friend.", seed=1)
    (want,) = synth.voice.synthesize_texts(["Hello there, friend."], SynthesisParams(seed=1))
    assert np.array_equal(got, want)


def test_a_reference_voice_is_fitted_and_sounds_closer(synth, reference_wav) -> None:
    fit = synth.register(reference_wav)
    assert fit.summary["similarity"] >= fit.summary["similarity_before"] + 0.10
    assert abs(fit.transform.formant_scale / 1.12 - 1) <= 0.10
    text = "Welcome back to the stream, everyone."
    plain = synth.tts(text, seed=2)
    cloned = synth.tts(text, reference_audio=reference_wav, seed=2)
    assert len(cloned) == len(plain)
    assert 12 * np.log2(yin_median(cloned, RATE) / yin_median(plain, RATE)) > 3.0


def test_registering_the_same_clip_again_is_a_cache_hit(synth, reference_wav) -> None:
    first = synth.register(reference_wav)
    t0 = time.perf_counter()
    again = synth.register(reference_wav)
    assert again is first
    assert time.perf_counter() - t0 < 0.005


def test_a_batch_mixes_plain_and_cloned_items(synth, reference_wav) -> None:
    texts = ["Good game.", "Good game."]
    plain, cloned = synth.tts_batch(texts, reference_audios=[None, reference_wav], seed=4)
    alone = synth.tts("Good game.", seed=4)
    assert plain.shape == alone.shape and np.abs(plain - alone).max() < 1e-4
    assert yin_median(cloned, RATE) > yin_median(plain, RATE) * 1.15


def test_pitch_scale_moves_the_pitch(synth) -> None:
    plain = synth.tts("This is a pitch test sentence.", seed=5)
    higher = synth.tts("This is a pitch test sentence.", seed=5, pitch_scale=1.26)
    assert abs(12 * np.log2(yin_median(higher, RATE) / yin_median(plain, RATE)) - 4.0) < 1.2


def test_emotions_are_refused_until_they_exist(synth) -> None:
    with pytest.raises(ValueError, match="emotion"):
        synth.tts("Hi.", emotion="happy")


def test_a_bad_reference_gets_its_error_code(synth) -> None:
    from engine.reference import ReferenceAudioError

    with pytest.raises(ReferenceAudioError) as caught:
        synth.tts("Hi.", reference_audio=b"not audio at all")
    assert caught.value.code in ("unsupported_format", "corrupt_audio")


def test_save_wav_writes_16_bit_pcm(synth, tmp_path) -> None:
    path = tmp_path / "o.wav"
    synth.save_wav(synth.tts("Saved.", seed=1), path)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.subtype) == (RATE, "PCM_16")


ESPEAK_VOICES = ["en-us", "en+f3", "en+m3", "en-gb+f2", "en-us+klatt"]


def test_espeak_speakers_get_measurably_closer(synth, tmp_path) -> None:
    """Real other speakers (espeak-ng's voices): similarity rises by >= 0.10 on average."""
    import shutil
    import subprocess

    exe = shutil.which("espeak-ng")
    assert exe is not None, "espeak-ng is not installed (.ci/run installs it)"
    text = (
        "The old library at the end of the street opens early in the morning. Inside, the "
        "shelves reach all the way to the ceiling, and the air smells of paper and dust."
    )
    rises = []
    for name in ESPEAK_VOICES:
        path = tmp_path / f"{name}.wav"
        subprocess.run([exe, "-v", name, "-s", "150", "-w", str(path), text], check=True)
        fit = synth.register(path)
        rises.append(fit.summary["similarity"] - fit.summary["similarity_before"])
    assert np.mean(rises) >= 0.10, rises
