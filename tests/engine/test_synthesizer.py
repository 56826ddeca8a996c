"""The in-process ``Synthesizer`` API, with real reference clips."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile

from voxlive.engine.pitch import yin_median
from voxlive.engine.synthesizer import Synthesizer
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams
from voxlive.engine.world import analyze, apply, synthesize

pytestmark = pytest.mark.slow  # the real voice end to end

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
    """A synthetic speaker: the bundled voice moved by WORLD up 5 semitones, formants x1.12."""
    (audio,) = synth.voice.synthesize_texts([REFERENCE_TEXT], SynthesisParams(seed=8))
    moved = synthesize(
        apply(analyze(audio, RATE), VoiceTransform(f0_shift_st=5, formant_scale=1.12))
    )
    buf = io.BytesIO()
    soundfile.write(buf, moved, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_without_a_reference_the_bundled_voice_speaks_unchanged_but_for_the_mark(synth) -> None:
    got = synth.tts("Hello there, friend.", seed=1)
    (want,) = synth.voice.synthesize_texts(["Hello there, friend."], SynthesisParams(seed=1))
    assert np.array_equal(got, synth.watermarker.mark([want], RATE)[0])
    assert not np.array_equal(got, want)


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


def test_neutral_with_no_pitch_or_volume_is_the_plain_engine_output(synth) -> None:
    text = "Neutral, at full intensity."
    (plain,) = synth.voice.synthesize_texts([text], SynthesisParams(seed=6))
    want = synth.watermarker.mark([plain], RATE)[0]  # and the watermark
    for emotion in (None, "neutral", "中性"):
        got = synth.tts(text, emotion=emotion, intensity=1.0, seed=6)
        assert np.array_equal(got, want), emotion


def test_emotions_are_spoken_and_synonyms_in_english_and_chinese_are_the_same(synth) -> None:
    text = "Good game."
    plain = synth.tts(text, seed=7)
    for tag, emotion in [("furious", "angry"), ("开心", "happy"), ("伤心", "sad")]:
        moved = synth.tts(text, emotion=emotion, seed=7)
        assert moved.dtype == np.float32 and np.abs(moved).max() > 0.05
        assert len(moved) != len(plain) or not np.allclose(moved, plain, atol=1e-3)
        assert np.array_equal(synth.tts(text, emotion=tag, seed=7), moved), tag


def test_only_a_pitch_moving_stage_pays_for_the_pitch_centre(synth, monkeypatch) -> None:
    """Neutral speech (even louder or softer) never synthesizes the probe sentence;
    emotions do, once."""
    from voxlive.engine.synthesizer import PROBE_SENTENCE
    from voxlive.engine.voice import Voice

    monkeypatch.setattr(Voice, "load", classmethod(lambda cls, *a, **k: synth.voice))
    fresh = Synthesizer()
    spoken: list[str] = []
    real = fresh.voice.synthesize_texts

    def spy(texts, *args, **kwargs):
        spoken.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(fresh.voice, "synthesize_texts", spy)
    fresh.tts("Plain words.", seed=1)
    fresh.tts("Plain words.", seed=1, emotion="neutral", intensity=1.0, volume=-3.0)
    assert spoken == []
    fresh.tts("Happy words.", seed=1, emotion="happy")
    fresh.tts("Sad words.", seed=1, emotion="sad")
    assert spoken == [PROBE_SENTENCE]
    assert fresh.pitch_center_hz() == pytest.approx(88.0, abs=8.0)


def test_an_unknown_emotion_is_refused_with_the_supported_list(synth) -> None:
    from voxlive.engine.emotion import EMOTIONS

    with pytest.raises(ValueError, match="unknown emotion 'bored'") as caught:
        synth.tts("Hi.", emotion="bored")
    assert all(name in str(caught.value) for name in EMOTIONS)


@pytest.mark.parametrize(
    "kwargs",
    [{"intensity": 1.5}, {"pitch": 13.0}, {"volume": -31.0}, {"emotion": "excited", "speed": 4}],
)
def test_out_of_range_controls_are_refused(synth, kwargs) -> None:
    with pytest.raises(ValueError, match="must be in|too far"):
        synth.tts("Hi.", **kwargs)


def test_sad_speech_is_slower_than_happy_speech(synth) -> None:
    text = "Well, I suppose we should head home now, it is getting late."
    happy = synth.tts(text, emotion="happy", seed=3)
    sad = synth.tts(text, emotion="sad", seed=3)
    assert len(sad) > 1.1 * len(happy)
    # Sad also sits lower in pitch than happy (+2 vs −2 st at full intensity).
    assert yin_median(sad, RATE) < yin_median(happy, RATE)


def test_pitch_and_volume_controls_move_the_voice(synth) -> None:
    text = "This is a pitch test sentence."
    plain = synth.tts(text, seed=5)
    moved = synth.tts(text, seed=5, pitch=-3.0, volume=-6.0)
    assert len(moved) == len(plain)
    assert abs(12 * np.log2(yin_median(moved, RATE) / yin_median(plain, RATE)) + 3.0) < 1.2
    rms = 20 * np.log10(np.sqrt(np.mean(moved**2)) / np.sqrt(np.mean(plain**2)))
    assert -8.0 < rms < -4.0


def test_a_batch_of_two_emotions_equals_each_rendered_alone(synth) -> None:
    texts = ["We won the match!", "It is over now, I am sorry."]
    mixed = synth.tts_batch(texts, ["excited", "sad"], seed=4, intensity=[1.0, 0.8])
    alone = [
        synth.tts(texts[0], "excited", seed=4, intensity=1.0),
        synth.tts(texts[1], "sad", seed=4, intensity=0.8),
    ]
    for m, a in zip(mixed, alone, strict=True):
        assert m.shape == a.shape
        snr = 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / max(np.sum((m - a) ** 2), 1e-30))
        assert snr > 40.0


def test_an_emotion_and_a_reference_voice_apply_together(synth, reference_wav) -> None:
    text = "Welcome back to the stream, everyone."
    cloned = synth.tts(text, reference_audio=reference_wav, seed=2)
    sad = synth.tts(text, emotion="sad", intensity=1.0, reference_audio=reference_wav, seed=2)
    plain = synth.tts(text, seed=2)
    # Still the reference's voice (well above the bundled one), but lower and slower.
    assert yin_median(sad, RATE) > yin_median(plain, RATE)
    assert yin_median(sad, RATE) < yin_median(cloned, RATE)
    assert len(sad) > len(cloned)


def test_a_bad_reference_gets_its_error_code(synth) -> None:
    from voxlive.engine.reference import ReferenceAudioError

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
