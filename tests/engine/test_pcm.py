"""Float → 16-bit PCM (``engine/pcm.py``), the one conversion every s16le writer uses."""

from __future__ import annotations

import numpy as np
import soundfile

from voxlive.engine.pcm import pcm16, pcm16_bytes, write_wav


def test_full_scale_maps_to_32767_and_zero_stays_zero() -> None:
    got = pcm16(np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32))
    assert got.dtype == np.dtype("<i2")
    assert got.tolist() == [-32767, -16384, 0, 16384, 32767]


def test_out_of_range_samples_clip_instead_of_wrapping() -> None:
    assert pcm16(np.array([-3.0, 1.0001, 7.5])).tolist() == [-32768, 32767, 32767]


def test_bytes_are_little_endian_int16() -> None:
    assert pcm16_bytes(np.array([1.0, -1.0], np.float32)) == b"\xff\x7f\x01\x80"


def test_write_wav_writes_mono_16_bit_pcm_with_the_same_samples(tmp_path) -> None:
    samples = np.sin(np.linspace(0, 20, 800)).astype(np.float32) * 0.8
    path = tmp_path / "x.wav"
    write_wav(path, samples, 16000)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    written, _ = soundfile.read(str(path), dtype="int16")
    assert np.array_equal(written, pcm16(samples))
