"""The tiny test voice: the real loader reads it, and it streams like the real voice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.loader import (
    VoiceFiles,
    architecture,
    default_voice_files,
    read_onnx_weights,
)
from voxlive.engine.nets.models import VitsConfig
from voxlive.engine.voice import SynthesisParams, Voice

from .tiny_voice import TINY_CONFIG, TINY_FRAMES_PER_ID, write_tiny_voice

DET = SynthesisParams.deterministic()
TEXT = "Thanks for the raid, everyone! See you tomorrow."


def test_the_loader_reads_the_architecture_and_every_weight(tiny_voice_files: VoiceFiles) -> None:
    weights = read_onnx_weights(tiny_voice_files.model)
    assert architecture(weights, TINY_CONFIG.n_vocab) == TINY_CONFIG
    # Renamed and anonymous initializers land on their torch names.
    assert weights["enc_p.emb.weight"].shape == (256, TINY_CONFIG.hidden_channels)
    assert "dp.flows.0.inv_scale" in weights
    assert "flow.flows.6.enc.in_layers.0.weight" in weights
    assert not any(k.startswith(("/", "onnx::", "sid")) for k in weights)


def test_the_voice_files_are_the_same_bytes_every_time(
    tiny_voice_files: VoiceFiles, tmp_path: Path
) -> None:
    again = write_tiny_voice(tmp_path)
    assert again.model.read_bytes() == tiny_voice_files.model.read_bytes()
    assert again.config.read_bytes() == tiny_voice_files.config.read_bytes()


def test_it_speaks_at_the_real_voices_rate_for_the_expected_length(tiny_voice: Voice) -> None:
    real = default_voice_files().read_config()
    assert tiny_voice.sample_rate == real["audio"]["sample_rate"] == 22050
    assert tiny_voice.hop_length == VitsConfig().hop_length  # the medium voices' plan
    reqs, _ = tiny_voice.requests(TEXT, DET)
    audio = tiny_voice.synthesize_requests(reqs)
    frames = math.ceil(TINY_FRAMES_PER_ID)  # noise-free, every id lasts the flow's mean
    for req, wav in zip(reqs, audio):
        assert wav.dtype == np.float32
        assert len(wav) == frames * len(req.ids) * tiny_voice.hop_length
        assert 0.01 < float(np.abs(wav).max()) <= 1.0


def test_streamed_chunks_join_into_the_whole_decode(tiny_voice: Voice) -> None:
    reqs, _ = tiny_voice.requests(TEXT, DET)
    schedule = ChunkSchedule(first_frames=8, growth=2.0, max_frames=32)
    chunks = list(tiny_voice.stream(reqs[:1], schedule))
    assert len(chunks) >= 4
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    joined = np.concatenate([c.samples for c in chunks])
    batch = tiny_voice.prepare(reqs[:1])
    n = batch.frames[0]
    with torch.inference_mode():
        z = tiny_voice.model.flow.reverse(batch.z_p[:, :, :n], torch.ones(1, 1, n))
        whole = tiny_voice.model.decode(z)[0].numpy()
    assert joined.shape == whole.shape
    np.testing.assert_allclose(joined, whole, rtol=0, atol=1e-5)


def test_an_architecture_the_port_cannot_hold_is_refused(
    tiny_voice_files: VoiceFiles, tmp_path: Path
) -> None:
    import onnx

    model = onnx.load(str(tiny_voice_files.model))
    kept = [i for i in model.graph.initializer if i.name != "dp.proj.bias"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ValueError, match="dp.proj.bias"):
        Voice.load(VoiceFiles(broken, tiny_voice_files.config))
