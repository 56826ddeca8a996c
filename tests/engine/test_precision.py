"""Reduced precision and devices: each path's distance from the float32 CPU reference.

Intelligibility of bfloat16 is in ``test_intelligibility.py``; these tests pin the
waveform-level distance so that a broken cast (e.g. a layer left in the wrong dtype)
shows up as a collapse in SNR, not as a vague quality drop.
"""

from __future__ import annotations

import pytest
import torch

from voxlive.engine.voice import SynthesisParams, Voice

from .sentences import SENTENCES
from .test_vits_port import snr_db

DET = SynthesisParams.deterministic()


@pytest.fixture(scope="module")
def requests(voice):
    return [voice.requests(s, DET)[0][0] for s in SENTENCES[:8]]


@pytest.fixture(scope="module")
def reference(voice, requests):
    return voice.synthesize_requests(requests)


@pytest.mark.slow
def test_bfloat16_stays_within_18_db_of_float32(requests, reference) -> None:
    bf16 = Voice.load(precision="bfloat16")
    got = bf16.synthesize_requests(requests)
    # Durations are computed in float32 on both sides, so the lengths agree exactly.
    assert [len(a) for a in got] == [len(a) for a in reference]
    snrs = [snr_db(a, r) for a, r in zip(got, reference)]
    # The distance depends on the CPU's bfloat16 kernels: min 21.9 dB measured with
    # AVX-512, 19.9 dB on an AVX2-only CPU. A broken cast collapses it far below.
    assert min(snrs) >= 18.0, snrs


def test_float16_on_cpu_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="float16 is for CUDA"):
        Voice.load(precision="float16")


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        Voice.load(precision="int4")  # type: ignore[arg-type]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.slow
@pytest.mark.gpu
@cuda
def test_cuda_float32_matches_cpu(requests, reference) -> None:
    got = Voice.load(device="cuda").synthesize_requests(requests)
    assert min(snr_db(a, r) for a, r in zip(got, reference)) >= 40.0


@pytest.mark.slow
@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_cuda_half_precisions_stay_within_20_db(requests, reference, precision) -> None:
    got = Voice.load(device="cuda", precision=precision).synthesize_requests(requests)
    assert min(snr_db(a, r) for a, r in zip(got, reference)) >= 20.0
