"""GE2E speaker encoder: parity with resemblyzer itself, and how embeddings behave.

The reference (``resemblyzer``, librosa, webrtcvad) is imported here only; the
port in ``engine/speaker.py`` never imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from voxlive.engine.resample import resample
from voxlive.engine.speaker import SpeakerEncoder, cosine, normalize_volume, partial_starts
from voxlive.engine.voice import SynthesisParams

VOICE_RATE = 22050
RATE = 16000
SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
    "Please remember to bring your umbrella, because it will rain this afternoon.",
    "Seven silver spoons sat quietly on the kitchen table.",
    "Hello there.",  # under one partial (1.6 s): zero-padded to one
]


def import_reference():
    with warnings.catch_warnings():
        # resemblyzer/audio.py imports binary_dilation from a namespace scipy deprecated.
        warnings.filterwarnings(
            "ignore",
            message=r".*`scipy\.ndimage\.morphology` namespace is deprecated",
            category=DeprecationWarning,
        )
        return importlib.import_module("resemblyzer")


def shifted(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play the voice ``factor`` times faster and higher (a different-sounding speaker)."""
    return resample(wav, round(VOICE_RATE * factor), RATE)


def hum(seconds: float = 2.5, f0: float = 140.0) -> np.ndarray:
    """A harmonic tone with vibrato and three 'syllables' a second: voiced, not speech."""
    t = np.arange(int(RATE * seconds)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3 * t))
    return (0.1 * tone * envelope).astype(np.float32)


@pytest.fixture(scope="module")
def reference():
    return import_reference().VoiceEncoder("cpu", verbose=False)


@pytest.fixture(scope="module")
def encoder(speaker):
    return speaker


@pytest.fixture(scope="module")
def speech(voice):
    """The bundled voice at its own rate: SENTENCES, then the first one spoken slowly."""
    plain = SynthesisParams.deterministic()
    slow = SynthesisParams.deterministic(length_scale=1.3)
    return voice.synthesize_texts([*SENTENCES, SENTENCES[1]], [plain] * len(SENTENCES) + [slow])


@pytest.fixture(scope="module")
def clips(speech):
    """16 kHz parity material: several speakers' worth of timbre, lengths and levels."""
    own = [resample(w, VOICE_RATE, RATE) for w in speech]
    return {
        "voice": own[0],
        "voice_short": own[3],
        "voice_slow_quiet": 0.02 * own[4],  # under -30 dBFS: volume normalization acts
        "voice_higher": shifted(speech[1], 1.25),
        "voice_lower": shifted(speech[2], 0.8),
        "hum": hum(),
    }


@pytest.mark.slow
def test_embedding_matches_resemblyzer_on_its_preprocessed_audio(encoder, reference, clips):
    resemblyzer = import_reference()
    similarity = {}
    for name, wav in clips.items():
        pre = resemblyzer.preprocess_wav(wav)  # volume + webrtcvad silence trimming
        similarity[name] = cosine(encoder.embed(pre), reference.embed_utterance(pre))
    assert min(similarity.values()) >= 0.9999, similarity


@pytest.mark.slow
def test_whole_pipeline_from_22khz_stays_close_without_vad_trimming(encoder, reference, speech):
    # Differences: our resampler vs soxr, and no trimming (the voice has no long pauses).
    resemblyzer = import_reference()
    for wav in [*speech[:3], 0.02 * speech[0]]:  # the last one is raised to -30 dBFS
        ours = encoder.embed(wav, sample_rate=VOICE_RATE)
        theirs = reference.embed_utterance(resemblyzer.preprocess_wav(wav, source_sr=VOICE_RATE))
        assert cosine(ours, theirs) >= 0.98


@pytest.mark.slow
def test_mel_spectrogram_matches_librosa(encoder, clips):
    librosa = importlib.import_module("librosa")
    loud_edges = clips["hum"][RATE // 7 : RATE + 37]  # the zero padding of the edges shows
    for wav in [clips["voice"], loud_edges, 1e-3 * clips["voice_lower"]]:
        theirs = librosa.feature.melspectrogram(
            y=wav, sr=RATE, n_fft=400, hop_length=160, n_mels=40
        ).T  # [frames, mels]
        ours = encoder.mel(torch.from_numpy(wav)).numpy()
        assert ours.shape == theirs.shape
        assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-4


@pytest.mark.parametrize("rate", [1.3, 0.7, 2.0])
def test_partials_are_placed_as_resemblyzer_places_them(rate) -> None:
    slices = import_reference().VoiceEncoder.compute_partial_slices
    for n in [*range(0, 30_000, 13), *range(30_000, 200_000, 997)]:
        _, mel_slices = slices(n, rate, 0.75)
        assert partial_starts(n, rate) == [s.start for s in mel_slices], n


@pytest.mark.slow
@pytest.mark.parametrize("gain", [1e-3, 0.02, 0.5])
def test_volume_is_normalized_as_resemblyzer_does(clips, gain) -> None:
    wav = gain * clips["voice"]
    theirs = import_reference().normalize_volume(wav, -30, increase_only=True)
    ours = normalize_volume(torch.from_numpy(wav)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_same_clip_embeds_identically(encoder, clips) -> None:
    assert np.array_equal(encoder.embed(clips["voice"]), encoder.embed(clips["voice"]))


@pytest.mark.slow
def test_embedding_is_a_unit_float32_vector(encoder, clips) -> None:
    e = encoder.embed(clips["voice"])
    assert e.shape == (256,) and e.dtype == np.float32
    assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-5


@pytest.mark.slow
def test_sentences_of_one_voice_are_closer_than_other_voices(encoder, speech, clips) -> None:
    own = encoder.embed_batch(speech[:3], sample_rate=VOICE_RATE)  # sentences ≥ 3 s
    same = [cosine(own[i], own[j]) for i, j in [(0, 1), (0, 2), (1, 2)]]  # measured 0.91-0.93
    noise = 0.05 * np.random.default_rng(0).standard_normal(3 * RATE).astype(np.float32)
    others = encoder.embed_batch([clips["voice_higher"], clips["voice_lower"], noise])
    different = [cosine(o, e) for o in others for e in own]  # measured 0.42-0.67
    assert min(same) >= 0.85, same
    assert max(different) <= 0.75, different
    assert min(same) - max(different) >= 0.15


@pytest.mark.slow
def test_batch_equals_one_by_one(encoder, clips) -> None:
    wavs = list(clips.values())
    batch = encoder.embed_batch(wavs)
    assert batch.shape == (len(wavs), 256)
    for row, wav in zip(batch, wavs):
        assert cosine(row, encoder.embed(wav)) >= 0.9999


@pytest.mark.slow
def test_tensor_and_other_rates_are_accepted(encoder, speech) -> None:
    wav = speech[2]
    expected = encoder.embed(resample(wav, VOICE_RATE, RATE))
    assert np.array_equal(encoder.embed(torch.from_numpy(wav), sample_rate=VOICE_RATE), expected)
    assert encoder.embed_batch([]).shape == (0, 256)


@pytest.mark.parametrize(
    "wav",
    [
        np.zeros(0, np.float32),
        np.zeros(RATE, np.float32),  # digital silence: resemblyzer returns NaN
        np.full(RATE, np.nan, np.float32),
        np.r_[np.ones(100), np.inf].astype(np.float32),
        np.ones((2, RATE), np.float32),
    ],
    ids=["empty", "silent", "nan", "inf", "two_d"],
)
def test_unusable_audio_is_rejected(encoder, wav) -> None:
    with pytest.raises(ValueError):
        encoder.embed(wav)
    with pytest.raises(ValueError):
        encoder.embed_batch([hum(), wav])


def test_partials_must_be_shaped_as_mels(encoder) -> None:
    with pytest.raises(ValueError, match="mels"):
        encoder.embed_partials(torch.zeros(160, 40))


def test_missing_weights_are_reported(tmp_path, monkeypatch) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        SpeakerEncoder.load(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        SpeakerEncoder.load(junk)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install resemblyzer --no-deps"):
        SpeakerEncoder.load()


def test_loading_imports_neither_resemblyzer_nor_librosa() -> None:
    code = (
        "import sys; from voxlive.engine.speaker import SpeakerEncoder; SpeakerEncoder.load(); "
        "print(sorted({'resemblyzer', 'librosa', 'webrtcvad'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
