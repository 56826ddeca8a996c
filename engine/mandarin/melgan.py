"""Multi-band MelGAN (TensorFlowTTS's Baker vocoder) in torch, from ``mb_melgan.tflite``.

mel [B, F, 80] → reflect-padded conv k7 (80 → 384) → 3 × (LeakyReLU, transposed conv
×3 / ×5 / ×5, residual stack with dilations 1, 3, 9, 27) → LeakyReLU → conv k7 (48 → 4)
→ tanh → 4 band signals at 6 kHz, rounded to the int8 grid (the graph quantizes them,
scale 1/128) → PQMF synthesis (×4 upsampling, 63-tap filter) → 24 kHz, 300 samples per
frame. Every padding is a reflection of the signal itself, so a window of mel frames with
``context_frames`` on each side decodes its centre exactly as the whole mel does; a
windowed decode carries each layer's output only as far as the later layers need
(``_Span``), and :meth:`MultiBandMelGAN.decode_features` continues from the first stage
computed once over the whole mel, which holds most of the receptive field.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tflite_weights import TfliteError, TfliteGraph, copy_weight, load_conv1d

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
        """x: [b, c, 1, t] channels-last (see :func:`_conv`)."""
        d = self.dilation
        y = F.pad(F.leaky_relu(x, SLOPE), (d, d, 0, 0), mode="reflect")
        y = _conv(F.leaky_relu(_conv(y, self.conv, d), SLOPE), self.project)
        return _conv(x, self.shortcut) + y


def _conv(x: Tensor, conv: nn.Conv1d, dilation: int = 1) -> Tensor:
    """``conv`` over x [b, c, 1, t] as a (1, k) 2-D convolution.

    Activations are channels-last 2-D tensors of height 1 throughout the vocoder: oneDNN
    runs these convolutions faster than the same 1-D ones, with no reordering between
    layers. The weights stay the 1-D layers' own; the 2-D view is free.
    """
    out: Tensor = F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, dilation=(1, dilation))
    return out


class _Upsample(nn.Module):
    """Transposed conv with TensorFlow's 'same' alignment, then a residual stack."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride)
        self.blocks = nn.ModuleList(_ResidualBlock(c_out, d) for d in DILATIONS)

    def upsample(self, x: Tensor) -> Tensor:
        """The transposed conv alone: [b, c_in, 1, t] → [b, c_out, 1, t*s] (see :func:`_conv`)."""
        n = x.shape[-1] * self.stride
        # TF 'same': of the (k - s) extra samples, the smaller half is cut at the start.
        start = (self.conv.kernel_size[0] - self.stride) // 2
        weight = self.conv.weight.unsqueeze(2)  # [in, out, 1, k]
        y = F.conv_transpose2d(x, weight, self.conv.bias, stride=(1, self.stride))
        out: Tensor = y[..., start : start + n]
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.upsample(x)
        for block in self.blocks:
            x = block(x)
        return x


class _Span:
    """Which frames a windowed decode keeps, and where its tensors lie.

    ``start`` and ``end`` are the kept frames, counted from the frame where the decoded
    input begins. After each layer, only the samples that the rest of the network needs for
    the kept frames are carried on (the kept span widened by the later layers' reach);
    the reach of a cut edge's padding then stays inside that widening and is trimmed
    with it, so the kept samples equal the whole decode's. Most of the receptive field
    lies in the first, low-rate stage, so the costly high-rate stages run over little
    more than the kept frames.
    """

    def __init__(self, start: int, end: int, layers: list[tuple[int, int]]) -> None:
        self.start, self.end = start, end
        self.at = 0
        """Sample of the current tensor's first column, at the current layer's rate."""
        self.rate = 1
        """Samples per frame at the current layer's output."""
        self.ups = [up for up, _ in layers]
        self.margins = [0] * len(layers)
        """Samples needed beyond the kept span after each layer, at its rate."""
        need = 0
        for i in range(len(layers) - 1, -1, -1):
            self.margins[i] = need
            up, reach = layers[i]
            need = -(-need // up) + reach

    def cut(self, x: Tensor, layer: int) -> Tensor:
        """x [b, c, 1, t], the output of ``layer``, cut to what the later layers need."""
        up = self.ups[layer]
        self.rate *= up
        self.at *= up
        margin = self.margins[layer]
        lo = max(self.at, self.start * self.rate - margin)
        hi = min(self.at + x.shape[-1], self.end * self.rate + margin)
        x = x[..., lo - self.at : hi - self.at]
        self.at = lo
        return x


def _cut(x: Tensor, span: _Span | None, layer: int) -> Tensor:
    return x if span is None else span.cut(x, layer)


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
        return self._tail(self._head(mel, None), None)

    def features(self, mel: Tensor) -> Tensor:
        """The first stage's output, which :meth:`decode_features` continues from.

        mel: [B, F, 80] → [B, 192, F*3]. Most of the receptive field lies in this
        low-rate stage: computed once over a whole mel, it spares every window the
        stage's wide context (see :meth:`decode_features`).

        Raises:
            ValueError: a bad shape or fewer than ``MIN_FRAMES`` frames.
        """
        return self._head(self._check(mel), None).squeeze(2)

    def _head(self, mel: Tensor, span: _Span | None) -> Tensor:
        x = mel.transpose(1, 2).unsqueeze(2)  # [b, 80, 1, f], channels-last
        x = F.pad(x, (3, 3, 0, 0), mode="reflect")
        x = F.leaky_relu(_conv(x, self.conv_pre), SLOPE)  # [b, 384, 1, f]
        x = _cut(x, span, 0)
        return self._stage(0, x, span)

    def _stage(self, i: int, x: Tensor, span: _Span | None) -> Tensor:
        """Upsampling stage ``i``; with ``span``, each layer's output is cut down to what
        the layers after it need for ``span``'s kept frames (see :class:`_Span`)."""
        up = self.ups[i]
        assert isinstance(up, _Upsample)
        layer = 1 + i * (1 + len(DILATIONS))  # conv_pre, then (upsample, blocks) per stage
        x = _cut(up.upsample(x), span, layer)
        for block in up.blocks:
            layer += 1
            x = _cut(block(x), span, layer)
        return F.leaky_relu(x, SLOPE)

    def _tail(self, x: Tensor, span: _Span | None) -> Tensor:
        """The later stages and the band output, from :meth:`features`."""
        for i in range(1, len(self.ups)):
            x = self._stage(i, x, span)
        x = F.pad(x, (3, 3, 0, 0), mode="reflect")
        x = torch.tanh(_conv(x, self.conv_post)).squeeze(2)  # [b, 4, f*75]
        q = _round_half_away(x / self.band_scale).clamp(-128, 127)
        return q * self.band_scale

    def _layer_reach(self) -> list[tuple[int, int]]:
        """(upsampling factor, one-sided reach in input samples) of each layer that
        a windowed decode may cut after, then of the layers after the last cut."""
        out = [(1, 3)]  # conv_pre
        for up in self.ups:
            assert isinstance(up, _Upsample)
            # A 'same' transposed conv's output sample sees inputs up to ceil(k / s) away.
            out.append((up.stride, math.ceil(up.conv.kernel_size[0] / up.stride)))
            out += [(1, d) for d in DILATIONS]
        # conv_post (k7), PQMF upsampling (each output sees one input), PQMF filter.
        out += [(1, self.conv_post.kernel_size[0] // 2), (BANDS, 1)]
        out.append((1, self.pqmf_filter.shape[-1] // 2))
        return out

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
        return self.synthesize(self.bands(self._check(mel)))

    def _check(self, mel: Tensor) -> Tensor:
        if mel.dim() != 3 or mel.shape[-1] != N_MELS:
            raise ValueError(f"mel must be [B, F, {N_MELS}], got {list(mel.shape)}")
        if mel.shape[1] < MIN_FRAMES:
            raise ValueError(f"the vocoder needs at least {MIN_FRAMES} frames, got {mel.shape[1]}")
        return mel.to(self.pqmf_filter.device, torch.float32)

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
        span = _Span(start - lo, end - lo, self._layer_reach())
        x = self._head(self._check(mel[:, lo:hi]), span)
        return self._finish(self._tail(x, span), span)

    def decode_features(self, features: Tensor, start: int, end: int) -> Tensor:
        """Audio of frames [start, end) from :meth:`features` of the whole mel.

        Equals the same samples of ``forward(mel)``, at the cost of the later stages
        over the frames and a few frames of their context.

        Args:
            features: [B, 192, F*3] ``features(mel)``.
            start: first frame, 0 <= start < end <= F.
            end: one past the last frame.

        Returns:
            [B, (end - start) * 300] audio.

        Raises:
            ValueError: a bad range or shape.
        """
        first = self.ups[0]
        assert isinstance(first, _Upsample)
        rate = first.stride
        total, rest = divmod(features.shape[-1], rate)
        if features.dim() != 3 or features.shape[1] != first.conv.out_channels or rest:
            raise ValueError(f"not the first stage's features: {list(features.shape)}")
        if not 0 <= start < end <= total:
            raise ValueError(f"bad frame range [{start}, {end}) of {total}")
        span = _Span(start, end, self._layer_reach())
        span.rate = rate
        margin = span.margins[len(DILATIONS) + 1]  # after the first stage's last block
        lo = max(0, start * rate - margin)
        span.at = lo
        x = features[..., lo : min(total * rate, end * rate + margin)].unsqueeze(2)
        return self._finish(self._tail(x, span), span)

    def _finish(self, bands: Tensor, span: _Span) -> Tensor:
        """PQMF synthesis of cut band signals, trimmed to ``span``'s kept frames."""
        audio = self.synthesize(bands)
        first = span.start * HOP - span.at * BANDS  # the cut tensors' own offset
        return audio[:, first : first + (span.end - span.start) * HOP]

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
            load_conv1d(graph, convs[0], model.conv_pre)
            at = 1
            for up, tconv in zip(model.ups, tconvs, strict=False):
                assert isinstance(up, _Upsample)
                weight, bias = graph.layer(tconv)
                copy_weight(
                    up.conv.weight, weight[:, :, 0].transpose(2, 0, 1)
                )  # [o, k, 1, i] → [i, o, k]
                assert up.conv.bias is not None
                copy_weight(up.conv.bias, bias)
                for block in up.blocks:
                    assert isinstance(block, _ResidualBlock)
                    # Graph order per block: shortcut, dilated conv, 1×1 conv.
                    for conv in (block.shortcut, block.conv, block.project):
                        load_conv1d(graph, convs[at], conv)
                        at += 1
            load_conv1d(graph, convs[at], model.conv_post)
            up_weight, _ = graph.layer(tconvs[-1])  # [out, 1, k, in]
            copy_weight(model.pqmf_up, up_weight[:, 0].transpose(2, 0, 1))  # → [in, out, k]
            synth, synth_bias = graph.layer(convs[at + 1])  # [1, 1, 63, 4]
            if float(abs(synth_bias).max()) != 0.0:
                raise TfliteError(f"{graph.path}: the PQMF filter has a bias")
            copy_weight(model.pqmf_filter, synth[:, 0].transpose(0, 2, 1))  # → [1, 4, 63]
            quant = graph.quantization(graph.of_kind("QUANTIZE")[0].outputs[0])
            if quant is None or quant[1] != 0:
                raise TfliteError(f"{graph.path}: band signals are not symmetric int8")
            model.band_scale = quant[0]
        return model.eval()
