"""Multi-band MelGAN (TensorFlowTTS's Baker vocoder) in torch, from ``mb_melgan.tflite``.

mel [B, F, 80] → reflect-padded conv k7 (80 → 384) → 3 × (LeakyReLU, transposed conv
×3 / ×5 / ×5, residual stack with dilations 1, 3, 9, 27) → LeakyReLU → conv k7 (48 → 4)
→ tanh → 4 band signals at 6 kHz, rounded to the int8 grid (the graph quantizes them,
scale 1/128) → PQMF synthesis (×4 upsampling, 63-tap filter) → 24 kHz, 300 samples per
frame. Every padding is a reflection of the signal itself, so a window of mel frames with
``context_frames`` on each side decodes its centre exactly as the whole mel does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tflite_weights import Op, TfliteError, TfliteGraph

__all__ = ["HOP", "MIN_FRAMES", "MultiBandMelGAN"]

HOP = 300
N_MELS = 80
BANDS = 4
DILATIONS = (1, 3, 9, 27)
UPSAMPLES = ((384, 192, 3), (192, 96, 5), (96, 48, 5))  # (in, out, stride); kernel 2 × stride
SLOPE = 0.2
MIN_FRAMES = 10
"""Shortest mel the graph accepts: the dilation-27 reflection needs > 27 samples at ×3."""


class _ResidualBlock(nn.Module):
    """x + conv1x1(LeakyReLU(conv_k3,d(reflect(LeakyReLU(x))))), with a 1×1 shortcut."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.project = nn.Conv1d(channels, channels, 1)
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.pad(F.leaky_relu(x, SLOPE), (self.dilation, self.dilation), mode="reflect")
        y = self.project(F.leaky_relu(self.conv(y), SLOPE))
        out: Tensor = self.shortcut(x) + y
        return out


class _Upsample(nn.Module):
    """Transposed conv with TensorFlow's 'same' alignment, then a residual stack."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride)
        self.blocks = nn.ModuleList(_ResidualBlock(c_out, d) for d in DILATIONS)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[-1] * self.stride
        # TF 'same': of the (k - s) extra samples, the smaller half is cut at the start.
        start = (self.conv.kernel_size[0] - self.stride) // 2
        x = self.conv(x)[..., start : start + n]  # [b, c, t*s]
        for block in self.blocks:
            x = block(x)
        return x


def _round_half_away(x: Tensor) -> Tensor:
    """TFLite's QUANTIZE rounding (std::round): halves go away from zero."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


class MultiBandMelGAN(nn.Module):
    """The vocoder: 80-bin mel at 80 frames/s → 24 kHz audio."""

    pqmf_up: Tensor
    pqmf_filter: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.conv_pre = nn.Conv1d(N_MELS, 384, 7)
        self.ups = nn.ModuleList(_Upsample(i, o, s) for i, o, s in UPSAMPLES)
        self.conv_post = nn.Conv1d(48, BANDS, 7)
        self.band_scale = 1.0 / 128  # the int8 grid of the band signals
        taps = 63
        self.register_buffer("pqmf_up", torch.zeros(BANDS, BANDS, BANDS))  # [in, out, k]
        self.register_buffer("pqmf_filter", torch.zeros(1, BANDS, taps))  # [out, in, k]

    @property
    def context_frames(self) -> int:
        """Mel frames on each side that can change a frame's audio (receptive field)."""
        reach = 3.0  # conv_pre k7, at 1 sample per frame
        rate = 1
        for up in self.ups:
            assert isinstance(up, _Upsample)
            reach += math.ceil(up.conv.kernel_size[0] / up.stride) / rate  # inputs per output
            rate *= up.stride
            reach += sum(DILATIONS) / rate  # k3 convs with these dilations
        reach += (self.conv_post.kernel_size[0] // 2) / rate
        reach += 1 / rate + (self.pqmf_filter.shape[-1] // 2) / (rate * BANDS)
        return math.ceil(reach)

    def bands(self, mel: Tensor) -> Tensor:
        """The 4 band signals, on the int8 grid. mel: [B, F, 80] → [B, 4, F*75]."""
        x = mel.transpose(1, 2)  # [b, 80, f]
        x = F.leaky_relu(self.conv_pre(F.pad(x, (3, 3), mode="reflect")), SLOPE)  # [b, 384, f]
        for up in self.ups:
            x = F.leaky_relu(up(x), SLOPE)
        x = torch.tanh(self.conv_post(F.pad(x, (3, 3), mode="reflect")))  # [b, 4, f*75]
        q = _round_half_away(x / self.band_scale).clamp(-128, 127)
        return q * self.band_scale

    def synthesize(self, bands: Tensor) -> Tensor:
        """PQMF synthesis: [B, 4, L] → [B, 4L]."""
        x = F.conv_transpose1d(bands, self.pqmf_up, stride=BANDS)  # [b, 4, 4l]
        pad = self.pqmf_filter.shape[-1] // 2
        return F.conv1d(F.pad(x, (pad, pad)), self.pqmf_filter).squeeze(1)  # [b, 4l]

    @torch.no_grad()
    def forward(self, mel: Tensor) -> Tensor:
        """Decodes a batch of mels that share one length.

        Each item is decoded as if it were F frames long: pad items of different lengths
        and keep each one's own frames, or decode them apart (the reflection padding at
        a padded item's end differs from its own end).

        Args:
            mel: [B, F, 80] log-mel, F >= ``MIN_FRAMES``.

        Returns:
            [B, F * 300] float32 audio in [-1, 1].

        Raises:
            ValueError: a bad shape or fewer than ``MIN_FRAMES`` frames.
        """
        if mel.dim() != 3 or mel.shape[-1] != N_MELS:
            raise ValueError(f"mel must be [B, F, {N_MELS}], got {list(mel.shape)}")
        if mel.shape[1] < MIN_FRAMES:
            raise ValueError(f"the vocoder needs at least {MIN_FRAMES} frames, got {mel.shape[1]}")
        mel = mel.to(self.pqmf_filter.device, torch.float32)
        return self.synthesize(self.bands(mel))

    def decode_window(self, mel: Tensor, start: int, end: int) -> Tensor:
        """Audio of frames [start, end) from only the frames around them.

        Decodes ``mel[:, start - ctx : end + ctx]`` (clamped to the mel) and keeps the
        centre, which equals the same samples of ``forward(mel)``.

        Args:
            mel: [B, F, 80] the whole utterance's mel.
            start: first frame, 0 <= start < end <= F.
            end: one past the last frame.

        Returns:
            [B, (end - start) * 300] audio.

        Raises:
            ValueError: a bad range, or a mel shorter than ``MIN_FRAMES``.
        """
        total = mel.shape[1]
        if not 0 <= start < end <= total:
            raise ValueError(f"bad frame range [{start}, {end}) of {total}")
        ctx = self.context_frames
        lo, hi = max(0, start - ctx), min(total, end + ctx)
        if hi - lo < MIN_FRAMES:  # widen a tiny window; the extra frames are context too
            lo, hi = max(0, min(lo, hi - MIN_FRAMES)), min(total, max(hi, lo + MIN_FRAMES))
        audio = self.forward(mel[:, lo:hi])
        return audio[:, (start - lo) * HOP : (end - lo) * HOP]

    @classmethod
    def from_tflite(cls, graph: TfliteGraph) -> MultiBandMelGAN:
        """Builds the vocoder from ``mb_melgan.tflite``.

        Raises:
            TfliteError: the graph's layers are not the expected ones.
        """
        convs = graph.of_kind("CONV_2D")
        tconvs = graph.of_kind("TRANSPOSE_CONV")
        n_blocks = len(UPSAMPLES) * len(DILATIONS)
        if len(convs) != 3 + 3 * n_blocks or len(tconvs) != len(UPSAMPLES) + 1:
            raise TfliteError(f"{graph.path}: not the Multi-band MelGAN layout")
        model = cls()
        with torch.no_grad():
            _load_conv(graph, convs[0], model.conv_pre)
            at = 1
            for up, tconv in zip(model.ups, tconvs, strict=False):
                assert isinstance(up, _Upsample)
                weight, bias = graph.layer(tconv)
                _copy(
                    up.conv.weight, weight[:, :, 0].transpose(2, 0, 1)
                )  # [o, k, 1, i] → [i, o, k]
                assert up.conv.bias is not None
                _copy(up.conv.bias, bias)
                for block in up.blocks:
                    assert isinstance(block, _ResidualBlock)
                    # Graph order per block: shortcut, dilated conv, 1×1 conv.
                    for conv in (block.shortcut, block.conv, block.project):
                        _load_conv(graph, convs[at], conv)
                        at += 1
            _load_conv(graph, convs[at], model.conv_post)
            up_weight, _ = graph.layer(tconvs[-1])  # [out, 1, k, in]
            _copy(model.pqmf_up, up_weight[:, 0].transpose(2, 0, 1))  # → [in, out, k]
            synth, synth_bias = graph.layer(convs[at + 1])  # [1, 1, 63, 4]
            if float(abs(synth_bias).max()) != 0.0:
                raise TfliteError(f"{graph.path}: the PQMF filter has a bias")
            _copy(model.pqmf_filter, synth[:, 0].transpose(0, 2, 1))  # → [1, 4, 63]
            quant = graph.quantization(graph.of_kind("QUANTIZE")[0].outputs[0])
            if quant is None or quant[1] != 0:
                raise TfliteError(f"{graph.path}: band signals are not symmetric int8")
            model.band_scale = quant[0]
        return model.eval()


def _copy(target: Tensor, value: object) -> None:
    source = torch.as_tensor(value, dtype=torch.float32)
    if tuple(source.shape) != tuple(target.shape):
        raise TfliteError(f"weight shape {list(source.shape)} != expected {list(target.shape)}")
    target.copy_(source)


def _load_conv(graph: TfliteGraph, op: Op, conv: nn.Conv1d) -> None:
    weight, bias = graph.layer(op)
    assert conv.bias is not None
    _copy(conv.weight, weight[:, 0].transpose(0, 2, 1))  # [out, 1, k, in] → [out, in, k]
    _copy(conv.bias, bias)
