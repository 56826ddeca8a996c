"""The registration pipeline's cache key (``engine/registration.py``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from voxlive.engine import registration
from voxlive.engine.reference import ReferenceAudioError
from voxlive.engine.transform import VoiceTransform

RATE = 16000


def speechlike(seconds: float = 6.0, seed: int = 3) -> np.ndarray:
    """Voiced bursts with pauses: enough "speech" for the reference checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = np.sin(2 * np.pi * 120 * t) + 0.3 * np.sin(2 * np.pi * 240 * t)
    bursts = (np.sin(2 * np.pi * 1.5 * t) > -0.3).astype(np.float64)
    return (0.3 * tone * bursts + 1e-4 * rng.standard_normal(t.size)).astype(np.float32)


def encode(x: np.ndarray, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format=fmt, subtype=subtype)
    return buf.getvalue()


def test_a_re_encoded_copy_has_the_same_content_hash_but_another_upload_key() -> None:
    clip = speechlike()
    wav, wavex = encode(clip), encode(clip, "WAVEX")
    assert registration.upload_key(wav) != registration.upload_key(wavex)
    assert registration.decode(wav).content_hash == registration.decode(wavex).content_hash


def test_the_content_hash_is_of_the_decoded_samples_and_the_model_version() -> None:
    decoded = registration.decode(encode(speechlike()))
    assert decoded.content_hash == registration.content_hash(decoded.reference.audio)
    other = registration.decode(encode(speechlike(seed=4)))
    assert other.content_hash != decoded.content_hash


def test_voices_fitted_on_the_old_world_stage_are_not_reused() -> None:
    import hashlib

    audio = registration.decode(encode(speechlike())).reference.audio
    world_era = hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes())
    world_era.update(b"ge2e-1")  # the key of profiles fitted on the WORLD stage
    assert registration.content_hash(audio) != world_era.hexdigest()


def test_a_refused_clip_raises_the_reference_error() -> None:
    with pytest.raises(ReferenceAudioError) as caught:
        registration.decode(b"not audio at all")
    assert caught.value.code == "unsupported_format"


def test_the_stored_stats_give_back_the_fitted_transform() -> None:
    fitted = VoiceTransform(f0_shift_st=2.5, formant_scale=1.12, tilt_db_per_octave=1.5)
    stats = {"f0_median_hz": 180.0, "similarity": 0.8} | fitted.to_dict()
    assert registration.transform_from_stats(stats) == fitted
