"""Read the constant tensors and the operator list of a ``.tflite`` file (no TensorFlow).

The flatbuffer is parsed with the ``tflite`` package. Constants come back as float32
numpy arrays, int8 ones dequantized with their per-tensor or per-channel scales. The
converter deduplicates identical constants and renames tensors, so a layer's weights are
found through the operator that uses them (by its output's name), not by tensor name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
import torch
from tflite.BuiltinOperator import BuiltinOperator
from torch import nn

__all__ = ["Op", "TfliteError", "TfliteGraph", "copy_weight", "load_conv1d"]

# tflite TensorType codes we read; anything else is not a weight.
_DTYPES: dict[int, type[np.generic]] = {
    0: np.float32,
    2: np.int32,
    4: np.int64,
    9: np.int8,
}
_OP_NAMES: dict[int, str] = {
    value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")
}


class TfliteError(ValueError):
    """The file is not a TFLite model, or lacks a tensor or operator the port expects."""


@dataclass(frozen=True, slots=True)
class Op:
    """One operator of the graph, in execution order."""

    index: int
    kind: str
    """Builtin operator name (``CONV_2D``) or ``CUSTOM:<code>``."""
    inputs: tuple[int, ...]
    """Tensor indices; -1 for an absent optional input."""
    outputs: tuple[int, ...]


class TfliteGraph:
    """The first subgraph of a ``.tflite`` file: its tensors, constants and operators."""

    def __init__(self, path: str | Path) -> None:
        """Parses ``path``.

        Raises:
            FileNotFoundError: the file does not exist.
            TfliteError: the file is not a TFLite flatbuffer.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {self.path}")
        self._buf = self.path.read_bytes()
        # A flatbuffer carries its file identifier at bytes 4..8.
        if len(self._buf) < 8 or self._buf[4:8] != b"TFL3":
            raise TfliteError(f"{self.path} is not a TFLite model (no TFL3 identifier)")
        try:
            self._model = tflite.Model.GetRootAsModel(self._buf, 0)
            self._graph = self._model.Subgraphs(0)
            self.ops = [self._read_op(i) for i in range(self._graph.OperatorsLength())]
            self.names = [
                self._graph.Tensors(i).Name().decode() for i in range(self._graph.TensorsLength())
            ]
        except Exception as exc:  # flatbuffers raises several unrelated types on bad data
            raise TfliteError(f"{self.path} is a corrupt TFLite model") from exc
        self._consumers: dict[int, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                self._consumers.setdefault(t, []).append(op)

    def _read_op(self, index: int) -> Op:
        op = self._graph.Operators(index)
        code = self._model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = _OP_NAMES.get(builtin, str(builtin))
        if kind == "CUSTOM":
            kind = "CUSTOM:" + (code.CustomCode() or b"").decode()
        inputs = tuple(int(i) for i in op.InputsAsNumpy())
        outputs = tuple(int(i) for i in op.OutputsAsNumpy())
        return Op(index, kind, inputs, outputs)

    def is_constant(self, tensor: int) -> bool:
        """Whether tensor ``tensor`` has data stored in the file."""
        if tensor < 0:
            return False
        t = self._graph.Tensors(tensor)
        return bool(self._model.Buffers(t.Buffer()).DataLength() > 0)

    def constant(self, tensor: int) -> np.ndarray:
        """The stored value of tensor ``tensor`` as float32, int8 dequantized.

        Raises:
            TfliteError: the tensor has no stored data or an unsupported type.
        """
        t = self._graph.Tensors(tensor)
        data = self._model.Buffers(t.Buffer()).DataAsNumpy()
        dtype = _DTYPES.get(t.Type())
        if isinstance(data, int) or dtype is None:
            raise TfliteError(f"{self.path}: tensor {self.names[tensor]!r} is not a constant")
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        raw: np.ndarray = np.frombuffer(data.tobytes(), dtype=dtype).reshape(shape)
        q = t.Quantization()
        if dtype is not np.int8:
            return raw.astype(np.float32)
        if q is None or q.ScaleLength() == 0:
            raise TfliteError(f"{self.path}: int8 tensor {self.names[tensor]!r} has no scale")
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero = q.ZeroPointAsNumpy().astype(np.float32)
        if scale.size > 1:  # per-channel along the quantized dimension
            axis = q.QuantizedDimension()
            view = [1] * raw.ndim
            view[axis] = scale.size
            scale, zero = scale.reshape(view), zero.reshape(view)
        value: np.ndarray = ((raw.astype(np.float32) - zero) * scale).astype(np.float32)
        return value

    def quantization(self, tensor: int) -> tuple[float, int] | None:
        """Per-tensor ``(scale, zero_point)`` of a quantized tensor, else None."""
        q = self._graph.Tensors(tensor).Quantization()
        if q is None or q.ScaleLength() != 1:
            return None
        return float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])

    def named(self, name: str) -> np.ndarray:
        """The constant tensor called exactly ``name``.

        Raises:
            TfliteError: no single constant has that name.
        """
        found = [i for i, n in enumerate(self.names) if n == name and self.is_constant(i)]
        if len(found) != 1:
            raise TfliteError(f"{self.path}: expected one constant named {name!r}")
        return self.constant(found[0])

    def find(self, kind: str, output: str, *, prefix: bool = False) -> Op:
        """The one operator of ``kind`` whose output name is ``output``.

        TFLite joins fused names with ``;``; any part may match. With ``prefix``, a part
        starting with ``output`` matches.

        Raises:
            TfliteError: no operator or several match.
        """

        def matches(op: Op) -> bool:
            parts = self.names[op.outputs[0]].split(";")
            return any(p.startswith(output) if prefix else p == output for p in parts)

        found = [op for op in self.ops if op.kind == kind and matches(op)]
        if len(found) != 1:
            raise TfliteError(
                f"{self.path}: expected one {kind} writing {output!r}, found {len(found)}"
            )
        return found[0]

    def of_kind(self, kind: str) -> list[Op]:
        """All operators of ``kind``, in execution order."""
        return [op for op in self.ops if op.kind == kind]

    def const_input(self, op: Op) -> np.ndarray:
        """The single constant input of ``op`` (a bias, a scale, a gamma).

        Raises:
            TfliteError: ``op`` has no or several constant inputs.
        """
        consts = [t for t in op.inputs if self.is_constant(t)]
        if len(consts) != 1:
            raise TfliteError(f"{self.path}: op {op.index} ({op.kind}) has {len(consts)} constants")
        return self.constant(consts[0])

    def layer(self, op: Op) -> tuple[np.ndarray, np.ndarray]:
        """Weight and bias of a CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED operator.

        The weight is the operator's own constant; the bias is its bias input (if any)
        plus the constant of the ADD it feeds, following the reshapes in between.

        Raises:
            TfliteError: the operator is not laid out that way.
        """
        # Inputs: CONV_2D / FULLY_CONNECTED (data, weight, bias?);
        # TRANSPOSE_CONV (output shape, weight, data, bias?).
        bias_at = 3 if op.kind == "TRANSPOSE_CONV" else 2
        bias = None
        if len(op.inputs) > bias_at and self.is_constant(op.inputs[bias_at]):
            bias = self.constant(op.inputs[bias_at])
        weight = self.constant(op.inputs[1])
        tensor = op.outputs[0]
        for _ in range(4):
            consumers = self._consumers.get(tensor, [])
            if len(consumers) != 1:
                break
            nxt = consumers[0]
            if nxt.kind == "ADD" and any(self.is_constant(t) for t in nxt.inputs):
                added = self.const_input(nxt)
                bias = added if bias is None else bias + added
                break
            if nxt.kind not in ("RESHAPE", "SQUEEZE", "BATCH_TO_SPACE_ND"):
                break
            tensor = nxt.outputs[0]
        if bias is None:
            bias = np.zeros(weight.shape[0], dtype=np.float32)
        return weight, bias.astype(np.float32)


def copy_weight(target: torch.Tensor, value: object) -> None:
    """Copy a weight read from the graph into ``target`` (in place, as float32).

    Raises:
        TfliteError: the shapes differ.
    """
    source = torch.as_tensor(value, dtype=torch.float32)
    if tuple(source.shape) != tuple(target.shape):
        raise TfliteError(f"weight shape {list(source.shape)} != expected {list(target.shape)}")
    target.copy_(source)


def load_conv1d(graph: TfliteGraph, op: Op, conv: nn.Conv1d) -> None:
    """A 1-D convolution's weights from the ``CONV_2D`` op TFLite made of it.

    Raises:
        TfliteError: the shapes differ.
    """
    weight, bias = graph.layer(op)
    assert conv.bias is not None
    copy_weight(conv.weight, weight[:, 0].transpose(0, 2, 1))  # [out, 1, k, in] → [out, in, k]
    copy_weight(conv.bias, bias)
