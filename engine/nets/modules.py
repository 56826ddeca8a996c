"""VITS building blocks, inference direction only.

Parameter names mirror the original VITS modules so that the weights exported
into Piper's ONNX file load by name (see ``engine/loader.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .commons import absolute_to_relative, rational_quadratic_inverse, relative_to_absolute

__all__ = [
    "LayerNorm",
    "MultiHeadAttention",
    "FFN",
    "DDSConv",
    "ElementwiseAffine",
    "ConvFlow",
    "WN",
    "ResidualCouplingLayer",
    "ResBlock2",
    "zero_tails",
    "LRELU_SLOPE",
]

LRELU_SLOPE = 0.1


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of ``[b, c, t]``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, -1)  # [b, t, c]
        x = F.layer_norm(x, (x.shape[-1],), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)  # [b, c, t]


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position embeddings (keys and values)."""

    def __init__(self, channels: int, n_heads: int, window_size: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        n_rel = 2 * window_size + 1
        self.emb_rel_k = nn.Parameter(torch.zeros(1, n_rel, self.k_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, n_rel, self.k_channels))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Args: x ``[b, c, t]``; attn_mask ``[b, 1, t, t]`` (bool). Returns ``[b, c, t]``."""
        b, c, t = x.shape
        h, d = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, h, d, t).transpose(2, 3)  # [b, h, t, d]
        k = self.conv_k(x).view(b, h, d, t).transpose(2, 3)  # [b, h, t, d]
        v = self.conv_v(x).view(b, h, d, t).transpose(2, 3)  # [b, h, t, d]
        q = q / math.sqrt(d)
        scores = torch.matmul(q, k.transpose(-2, -1))  # [b, h, t, t]
        rel = torch.matmul(q, self.emb_rel_k[0].transpose(0, 1))  # [b, h, t, 2w+1]
        scores = scores + relative_to_absolute(rel, self.window_size)
        scores = scores.masked_fill(~attn_mask, -1e4)
        p = torch.softmax(scores, dim=-1)  # [b, h, t, t]
        out = torch.matmul(p, v)  # [b, h, t, d]
        band = absolute_to_relative(p, self.window_size)  # [b, h, t, 2w+1]
        out = out + torch.matmul(band, self.emb_rel_v[0])  # [b, h, t, d]
        out = out.transpose(2, 3).reshape(b, c, t)  # [b, c, t]
        y: torch.Tensor = self.conv_o(out)
        return y


class FFN(nn.Module):
    """Two 'same'-padded convolutions with a ReLU between, masked."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(x * mask))  # [b, f, t]
        y: torch.Tensor = self.conv_2(x * mask) * mask  # [b, c, t]
        return y


class DDSConv(nn.Module):
    """Dilated depth-separable convolutions (duration predictor)."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int) -> None:
        super().__init__()
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(n_layers):
            dilation = kernel_size**i
            padding = (kernel_size * dilation - dilation) // 2
            self.convs_sep.append(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    groups=channels,
                    dilation=dilation,
                    padding=padding,
                )
            )
            self.convs_1x1.append(nn.Conv1d(channels, channels, 1))
            self.norms_1.append(LayerNorm(channels))
            self.norms_2.append(LayerNorm(channels))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        if g is not None:
            x = x + g
        for sep, pw, n1, n2 in zip(self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2):
            y = F.gelu(n1(sep(x * mask)))
            y = F.gelu(n2(pw(y)))
            x = x + y
        return x * mask


class ElementwiseAffine(nn.Module):
    """Per-channel affine flow; the ONNX file stores ``exp(-logs)`` folded."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.inv_scale = nn.Parameter(torch.ones(channels, 1))

    def reverse(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x - self.m) * self.inv_scale * mask


class ConvFlow(nn.Module):
    """Rational-quadratic spline coupling flow conditioned on the text."""

    def __init__(
        self,
        in_channels: int,
        filter_channels: int,
        kernel_size: int,
        n_layers: int,
        num_bins: int = 10,
        tail_bound: float = 5.0,
    ) -> None:
        super().__init__()
        self.half_channels = in_channels // 2
        self.filter_channels = filter_channels
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.pre = nn.Conv1d(self.half_channels, filter_channels, 1)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers)
        self.proj = nn.Conv1d(filter_channels, self.half_channels * (num_bins * 3 - 1), 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], 1)  # [b, 1, t] each
        h = self.convs(self.pre(x0), mask, g=g)
        h = self.proj(h) * mask  # [b, half*(3K-1), t]
        b, c, t = x0.shape
        h = h.reshape(b, c, -1, t).permute(0, 1, 3, 2)  # [b, half, t, 3K-1]
        k, norm = self.num_bins, math.sqrt(self.filter_channels)
        widths, heights = h[..., :k] / norm, h[..., k : 2 * k] / norm
        x1 = rational_quadratic_inverse(x1, widths, heights, h[..., 2 * k :], self.tail_bound)
        return torch.cat([x0, x1], 1) * mask  # [b, 2*half, t]


class WN(nn.Module):
    """Non-causal WaveNet stack (gated tanh/sigmoid, residual + skip)."""

    def __init__(self, hidden: int, kernel_size: int, n_layers: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            self.in_layers.append(
                nn.Conv1d(hidden, 2 * hidden, kernel_size, padding=kernel_size // 2)
            )
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(nn.Conv1d(hidden, out, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        last = len(self.in_layers) - 1
        for i, (inp, rs) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = inp(x)  # [b, 2h, t]
            acts = torch.tanh(a[:, : self.hidden]) * torch.sigmoid(a[:, self.hidden :])
            res_skip = rs(acts)
            if i < last:
                x = (x + res_skip[:, : self.hidden]) * mask
                out = out + res_skip[:, self.hidden :]
            else:
                out = out + res_skip
        return out * mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling layer of the prior flow."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, n_layers: int) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden, 1)
        self.enc = WN(hidden, kernel_size, n_layers)
        self.post = nn.Conv1d(hidden, self.half_channels, 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], 1)  # [b, c/2, t] each
        h = self.enc(self.pre(x0) * mask, mask)
        m = self.post(h) * mask
        return torch.cat([x0, (x1 - m) * mask], 1)  # [b, c, t]


class ResBlock2(nn.Module):
    """HiFi-GAN residual block, variant 2 (one conv per dilation).

    Works on ``[b, c, 1, t]`` tensors: the decoder runs its 1-D convolutions as
    ``(1, k)`` 2-D convolutions in channels-last layout, which oneDNN runs without
    re-laying out every activation (faster on CPU: ``docs/performance.md``).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(
                channels,
                channels,
                (1, kernel_size),
                dilation=(1, d),
                padding=(0, (kernel_size * d - d) // 2),
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor, lengths: Sequence[int] | None) -> torch.Tensor:
        """Args: x ``[b, c, 1, t]``; lengths: valid samples per row (None: all valid)."""
        for conv in self.convs:
            xt = zero_tails(F.leaky_relu(x, LRELU_SLOPE), lengths)
            x = conv(xt).add_(x)
        return x


def zero_tails(x: torch.Tensor, lengths: Sequence[int] | None) -> torch.Tensor:
    """Zero each row of ``[b, c, 1, t]`` past its length, in place.

    Used on every convolution input of a batch with ragged rows, so that each
    row sees the zero padding it would see if it were alone. Only the padded
    tails are touched, so the cost is proportional to the padding.
    """
    if lengths is not None:
        width = x.shape[-1]
        for row, n in enumerate(lengths):
            if n < width:
                x[row, :, :, n:] = 0
    return x
