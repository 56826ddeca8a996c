"""A tiny random-weight VITS voice in Piper's ONNX format, for fast tests.

The voice has the architecture of :mod:`voxlive.engine.nets.models` with narrow channels
and few layers, deterministic random weights, and the bundled voice's phoneme id map and
sample rate, so the real front end (espeak-ng) and the real loader read it. It speaks
noise, at about the bundled voice's pace: tests that need protocol, ordering, streaming
or batching behaviour use it; tests about what speech sounds like use the real voice.

The ``.onnx`` file names its initializers the way Piper's export does (see
:mod:`voxlive.engine.loader`): the phoneme embedding is ``sid``, the duration flow's
``exp(-logs)`` is the folded ``/dp/flows.0/Exp_output_0``, the prior flow's WaveNet
convolutions are anonymous ``onnx::Conv_N`` weights named by the ``Conv`` node that
consumes them, decoder kernels are 1-D, and folded graph constants sit beside them. The
graph holds only initializers and those nodes: the loader reads weights, it does not run
the graph.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from voxlive.engine.loader import VoiceFiles, default_voice_files
from voxlive.engine.nets.models import Vits, VitsConfig

__all__ = ["TINY_CONFIG", "TINY_FRAMES_PER_ID", "write_tiny_voice"]

TINY_CONFIG: Final = VitsConfig(
    n_vocab=256,
    inter_channels=16,
    hidden_channels=16,
    filter_channels=32,
    n_heads=2,
    n_layers=2,
    upsample_initial_channel=32,
)
"""Medium-voice layout (same decoder plan, flows and kernels), narrow and shallow."""

TINY_FRAMES_PER_ID: Final = 1.5
"""Frames each phoneme id lasts before rounding up (the duration flow's mean)."""

_SEED: Final = 20_240_901
_ANONYMOUS = re.compile(r"^flow\.flows\.\d+\.enc\.(in_layers|res_skip_layers)\.\d+\.weight$")
"""Weights Piper's export leaves unnamed (``onnx::Conv_N``)."""
_NOISE_GAIN: Final = 0.5
"""How much of the duration noise reaches the log durations: a trained predictor damps
it too, and undamped, noisy utterances run far longer than real ones."""
_QUIET: Final = 0.25
"""Scale of the decoder's last layer: noise peaks well below full scale, so resampling
it does not overshoot ±1 any more than speech does."""
_NEAR_IDENTITY = re.compile(r"^(dp\.flows\.\d+\.proj|flow\.flows\.\d+\.post)\.weight$")
"""Last layers of the flows; VITS starts them at zero, here they start small."""


def _weights(cfg: VitsConfig) -> dict[str, np.ndarray]:
    """Deterministic random weights for every parameter of ``Vits(cfg)``."""
    model = Vits(cfg)
    g = torch.Generator().manual_seed(_SEED)
    weights: dict[str, np.ndarray] = {}
    for name, param in model.state_dict().items():
        shape = tuple(param.shape)
        if name.endswith(".gamma"):
            value = torch.ones(shape)
        elif name.endswith((".beta", ".bias")):
            value = 0.01 * torch.randn(shape, generator=g)
        elif name == "dp.flows.0.m":
            value = torch.full(shape, -math.log(TINY_FRAMES_PER_ID) / _NOISE_GAIN)
        elif name == "dp.flows.0.inv_scale":
            value = torch.full(shape, _NOISE_GAIN)
        elif name == "enc_p.emb.weight":
            value = torch.randn(shape, generator=g) * cfg.hidden_channels**-0.5
        else:
            fan_in = max(1, math.prod(shape[1:]))
            std = 0.01 if _NEAR_IDENTITY.match(name) else fan_in**-0.5
            if name == "dec.conv_post.weight":
                std *= _QUIET
            value = torch.randn(shape, generator=g) * std
        weights[name] = value.numpy().astype(np.float32)
    return weights


def _graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """An ONNX model carrying ``weights`` under the names Piper's export gives them."""
    initializers: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    anonymous = 1000
    for name, value in weights.items():
        if name == "enc_p.emb.weight":
            stored = "sid"
        elif name == "dp.flows.0.inv_scale":
            stored = "/dp/flows.0/Exp_output_0"
        elif _ANONYMOUS.match(name):
            anonymous += 1
            stored = f"onnx::Conv_{anonymous}"
            module = "/" + name.removesuffix(".weight").replace(".", "/")
            # The loader names a module path by its dotted segments, "flows.6" included.
            module = re.sub(r"/(\d+)(?=/|$)", r".\1", module)
            node = helper.make_node("Conv", ["x", stored], [f"{module}/Conv_out"], f"{module}/Conv")
            nodes.append(node)
        else:
            stored = name
        if name.startswith("dec.") and value.ndim == 4:
            value = value[:, :, 0, :]  # the export's decoder kernels are 1-D
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), stored))
    # Folded graph constants the loader must skip: an index tensor and a float scalar.
    initializers.append(numpy_helper.from_array(np.array([0, 1], np.int64), "/Constant_output_0"))
    initializers.append(
        numpy_helper.from_array(np.array(0.5, np.float32), "/enc_p/Constant_output_0")
    )
    graph = helper.make_graph(nodes, "tiny_vits", [], [], initializer=initializers)
    return helper.make_model(graph, producer_name="voxlive-tests")


def write_tiny_voice(directory: Path) -> VoiceFiles:
    """Write ``tiny.onnx`` and ``tiny.onnx.json`` into ``directory``; same bytes every time."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "tiny.onnx"
    config_path = directory / "tiny.onnx.json"
    onnx.save(_graph(_weights(TINY_CONFIG)), str(model_path))
    real: dict[str, Any] = default_voice_files().read_config()
    config = {
        "audio": {"sample_rate": real["audio"]["sample_rate"], "quality": "tiny"},
        "espeak": dict(real["espeak"]),
        "inference": dict(real["inference"]),
        "phoneme_type": real.get("phoneme_type", "espeak"),
        "phoneme_map": {},
        "phoneme_id_map": real["phoneme_id_map"],
        "num_symbols": TINY_CONFIG.n_vocab,
        "num_speakers": 1,
        "speaker_id_map": {},
        "dataset": "tiny-random",
    }
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    return VoiceFiles(model_path, config_path)
