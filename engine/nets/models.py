"""The VITS synthesizer (Kim et al. 2021) as Piper exports it, inference only.

Serving splits inference into stages so the caller can batch and stream:

``encode`` (text encoder) → ``durations`` (stochastic duration predictor) →
``latent`` (expand + prior flow, once per utterance) → ``decode`` (HiFi-GAN,
run on windows of the latent for streaming).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .commons import expand_by_durations, sequence_mask
from .modules import (
    FFN,
    LRELU_SLOPE,
    ConvFlow,
    DDSConv,
    ElementwiseAffine,
    LayerNorm,
    MultiHeadAttention,
    ResBlock2,
    ResidualCouplingLayer,
    zero_tails,
)

__all__ = ["VitsConfig", "Vits", "TextEncoder", "DurationPredictor", "PriorFlow", "Generator"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VitsConfig:
    """Hyper-parameters of Piper's 'medium' VITS voices."""

    n_vocab: int = 256
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    window_size: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 5, 7)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 2), (2, 6), (3, 12))
    upsample_rates: tuple[int, ...] = (8, 8, 4)
    upsample_initial_channel: int = 256
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8)

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        return math.prod(self.upsample_rates)


class TextEncoder(nn.Module):
    """Phoneme ids → hidden states and the prior's mean / log-std per phoneme."""

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        hidden = cfg.hidden_channels
        self.hidden = hidden
        self.out_channels = cfg.inter_channels
        self.emb = nn.Embedding(cfg.n_vocab, hidden)
        self.encoder = _AttentionStack(cfg)
        self.proj = nn.Conv1d(hidden, 2 * cfg.inter_channels, 1)

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args: ids ``[b, t]``, lengths ``[b]``.

        Returns:
            hidden x, prior mean m and log-std logs ``[b, c, t]``; mask ``[b, 1, t]``.
        """
        x = self.emb(ids) * math.sqrt(self.hidden)  # [b, t, h]
        x = x.transpose(1, 2)  # [b, h, t]
        mask = sequence_mask(lengths, ids.shape[1]).unsqueeze(1).to(x.dtype)  # [b, 1, t]
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask  # [b, 2c, t]
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return x, m, logs, mask


class _AttentionStack(nn.Module):
    """Transformer encoder with post-norm residuals (VITS ``attentions.Encoder``)."""

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        h = cfg.hidden_channels
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(h, cfg.n_heads, cfg.window_size) for _ in range(cfg.n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(h) for _ in range(cfg.n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(h, cfg.filter_channels, cfg.kernel_size) for _ in range(cfg.n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(h) for _ in range(cfg.n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = (mask.unsqueeze(2) * mask.unsqueeze(-1)).bool()  # [b, 1, t, t]
        layers = zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2)
        for attn, norm1, ffn, norm2 in layers:
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, mask))
        return x * mask


class DurationPredictor(nn.Module):
    """Stochastic duration predictor, reverse (sampling) direction only.

    Only the flows that inference uses exist (VITS drops the first spline flow
    when sampling), keyed by their original indices so the weights load by name.
    """

    FLOW_ORDER = ("7", "5", "3")

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        fc = cfg.hidden_channels
        self.pre = nn.Conv1d(cfg.hidden_channels, fc, 1)
        self.convs = DDSConv(fc, 3, n_layers=3)
        self.proj = nn.Conv1d(fc, fc, 1)
        flows: dict[str, nn.Module] = {"0": ElementwiseAffine(2)}
        for key in self.FLOW_ORDER:
            flows[key] = ConvFlow(2, fc, 3, n_layers=3)
        self.flows = nn.ModuleDict(flows)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Args: x ``[b, h, t]`` encoder states; noise ``[b, 2, t]`` (already scaled).

        Returns:
            log durations ``[b, 1, t]`` in latent frames.
        """
        x = self.proj(self.convs(self.pre(x.detach()), mask)) * mask  # [b, h, t]
        z = noise
        for key in self.FLOW_ORDER:
            z = torch.flip(z, [1])
            flow = self.flows[key]
            assert isinstance(flow, ConvFlow)
            z = flow.reverse(z, mask, g=x)
        z = torch.flip(z, [1])
        affine = self.flows["0"]
        assert isinstance(affine, ElementwiseAffine)
        z = affine.reverse(z, mask)
        return z[:, :1]  # [b, 1, t]


class PriorFlow(nn.Module):
    """Residual coupling flow that maps prior samples to the decoder's latent."""

    KEYS = ("6", "4", "2", "0")

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        c = cfg.inter_channels
        self.flows = nn.ModuleDict(
            {k: ResidualCouplingLayer(c, cfg.hidden_channels, 5, 4) for k in self.KEYS}
        )

    def reverse(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for key in self.KEYS:
            z = torch.flip(z, [1])
            layer = self.flows[key]
            assert isinstance(layer, ResidualCouplingLayer)
            z = layer.reverse(z, mask)
        return z


LATE_WIDTH_BUCKET = 4
"""The later decoder stages run on a multiple of this many frames (chunks are multiples
of 16 frames, plus 2 × 2 of context: no padding for them, ≤ 3 frames for a last chunk)."""


class Generator(nn.Module):
    """HiFi-GAN generator (latent frames → waveform), padding-aware for batches.

    Convolutions are ``(1, k)`` 2-D convolutions over channels-last
    ``[b, c, 1, t]`` activations (see :class:`ResBlock2`); the loader reshapes the
    1-D weights.
    """

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        ch = cfg.upsample_initial_channel
        self.rates = cfg.upsample_rates
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = nn.Conv2d(cfg.inter_channels, ch, (1, 7), padding=(0, 3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(
                nn.ConvTranspose2d(c_in, c_out, (1, k), (1, u), padding=(0, (k - u) // 2))
            )
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(ResBlock2(c_out, rk, rd))
        self.conv_post = nn.Conv2d(c_out, 1, (1, 7), padding=(0, 3), bias=False)

    def forward(
        self,
        z: torch.Tensor,
        lengths: Sequence[int] | None = None,
        keep: Sequence[tuple[int, int]] | None = None,
        late_context: int = 2,
    ) -> torch.Tensor:
        """Decode latent frames to audio.

        Args:
            z: ``[b, c, t]`` latent frames, rows left-aligned.
            lengths: valid frames per row (None: all ``t``). Past its length a
                row sees zeros at every convolution, exactly as if decoded alone.
            keep: per row, the ``(start, end)`` frames whose audio is wanted
                (None: all valid frames). Only the first upsampling stage runs
                over the whole row; the later stages, where ~75 % of the FLOPs
                and nearly all activation memory are, run only on the kept
                frames plus ``late_context`` frames each side (their receptive
                field, see ``engine/chunking.py``).
            late_context: frames of context the stages after the first need.

        Returns:
            ``[b, max(end - start) * hop]`` float32 audio in [-1, 1]; row ``i``
            holds ``(end_i - start_i) * hop`` samples, then zeros.
        """
        b, _, t = z.shape
        rows = list(lengths) if lengths is not None else [t] * b
        spans = list(keep) if keep is not None else [(0, n) for n in rows]
        ragged = None if all(n == t for n in rows) else rows
        dtype = self.conv_pre.weight.dtype
        x = z.to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # [b, c, 1, t]
        x = self.conv_pre(zero_tails(x, ragged))  # [b, 256, 1, t]
        x = self._stage(0, x, ragged)  # [b, 128, 1, t * u0]
        x, rows, offsets = self._crop(x, rows, spans, late_context)
        rows = [n * self.rates[0] for n in rows]  # now in samples of the first stage's rate
        ragged = None if all(n == x.shape[-1] for n in rows) else rows
        for i in range(1, len(self.ups)):
            x = self._stage(i, x, ragged)
            rate = self.rates[i]
            ragged = None if ragged is None else [n * rate for n in ragged]
        x = zero_tails(F.leaky_relu(x), ragged)  # default slope 0.01, as in HiFi-GAN
        audio = torch.tanh(self.conv_post(x))[:, 0, 0].float()  # [b, T]
        hop = math.prod(self.rates)
        width = max(e - s for s, e in spans) * hop
        out = audio.new_zeros(b, width)
        for row, ((s, e), off) in enumerate(zip(spans, offsets)):
            out[row, : (e - s) * hop] = audio[row, off : off + (e - s) * hop]
        return out

    def _stage(self, i: int, x: torch.Tensor, lengths: list[int] | None) -> torch.Tensor:
        """Upsampling stage ``i``: leaky ReLU, transposed conv, mean of resblocks."""
        x = self.ups[i](zero_tails(F.leaky_relu(x, LRELU_SLOPE), lengths))  # [b, c/2, 1, t * u]
        if lengths is not None:
            lengths = [n * self.rates[i] for n in lengths]
        blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
        xs = blocks[0](x, lengths)
        for block in blocks[1:]:
            xs = xs.add_(block(x, lengths))
        out: torch.Tensor = xs.div_(self.num_kernels)
        return out

    def _crop(
        self,
        x: torch.Tensor,
        lengths: list[int],
        spans: list[tuple[int, int]],
        context: int,
    ) -> tuple[torch.Tensor, list[int], list[int]]:
        """Cut each row of the first stage's output to its kept span ± context.

        Returns:
            the cropped rows (left-aligned), their lengths in frames, and the
            sample offset of each row's first kept sample in the final audio.
        """
        u = self.rates[0]
        cuts = [(max(0, s - context), min(n, e + context)) for (s, e), n in zip(spans, lengths)]
        if all(c == (0, n) for c, n in zip(cuts, lengths)) and len(set(lengths)) == 1:
            return x, lengths, [s * math.prod(self.rates) for s, _ in spans]
        # Widths in steps of LATE_WIDTH_BUCKET frames: every new width is a new oneDNN
        # kernel for each later convolution, and building one costs more than running it.
        width = -(-max(hi - lo for lo, hi in cuts) // LATE_WIDTH_BUCKET) * LATE_WIDTH_BUCKET * u
        y = x.new_zeros(x.shape[0], x.shape[1], 1, width).contiguous(
            memory_format=torch.channels_last
        )
        for row, (lo, hi) in enumerate(cuts):
            y[row, :, :, : (hi - lo) * u] = x[row, :, :, lo * u : hi * u]
        hop = math.prod(self.rates)
        offsets = [(s - lo) * hop for (s, _), (lo, _) in zip(spans, cuts)]
        return y, [hi - lo for lo, hi in cuts], offsets


class Vits(nn.Module):
    """Piper's VITS voice with staged, batched, per-item-controlled inference."""

    def __init__(self, cfg: VitsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_p = TextEncoder(cfg)
        self.dp = DurationPredictor(cfg)
        self.flow = PriorFlow(cfg)
        self.dec = Generator(cfg)

    def prepare_for_inference(self, dtype: torch.dtype = torch.float32) -> Vits:
        """Eval mode, no gradients; prior flow and decoder in ``dtype``.

        Weight norm is already folded into the exported weights. The flow and
        the decoder (≈85 % of the FLOPs) take ``dtype``; the text encoder and
        duration predictor stay float32, because durations are rounded up to
        whole frames and must not move with the precision.
        """
        self.eval()
        self.requires_grad_(False)
        self.flow.to(dtype=dtype)
        self.dec.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch accepts it; its stubs do not
        return self

    def durations(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        dp_noise: torch.Tensor,
        length_scale: torch.Tensor,
        phoneme_scale: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode text and predict integer frame counts per phoneme.

        Args:
            ids: ``[b, t_x]`` phoneme ids (padding anything).
            lengths: ``[b]`` valid ids per item.
            dp_noise: ``[b, 2, t_x]`` duration noise, already times ``noise_w``.
            length_scale: ``[b]`` per-item speaking-time multiplier (>1 is slower).
            phoneme_scale: optional ``[b, t_x]`` extra per-phoneme multiplier.

        Returns:
            m_p, logs_p ``[b, c, t_x]`` and durations ``[b, t_x]`` (int64, 0 on padding).
        """
        x, m_p, logs_p, mask = self.enc_p(ids, lengths)
        logw = self.dp(x, mask, dp_noise)  # [b, 1, t_x]
        base = torch.ceil(torch.exp(logw) * mask)[:, 0]  # [b, t_x] Piper's frames at scale 1
        scale = length_scale.view(-1, 1).to(base.dtype).expand_as(base)
        if phoneme_scale is not None:
            scale = scale * phoneme_scale
        if bool((scale == 1).all()):
            return m_p, logs_p, base.long()
        return m_p, logs_p, scale_durations(base, scale)

    def prior(
        self,
        m_p: torch.Tensor,
        logs_p: torch.Tensor,
        durations: torch.Tensor,
        prior_noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Expand the prior to frames and sample it (the flow runs separately).

        Args:
            m_p, logs_p: ``[b, c, t_x]`` from :meth:`durations`.
            durations: ``[b, t_x]`` frames per phoneme.
            prior_noise: ``[b, c, t_y]`` standard normal noise times ``noise_scale``,
                with ``t_y ≥`` every item's total frames.

        Returns:
            z_p ``[b, c, t_y]`` (zero past each end) and frame counts ``[b]``.
        """
        y_lengths = durations.sum(1).clamp_min(1)  # [b]
        t_y = prior_noise.shape[2]
        mask = sequence_mask(y_lengths, t_y).unsqueeze(1).to(m_p.dtype)  # [b, 1, t_y]
        m = expand_by_durations(m_p, durations, t_y)  # [b, c, t_y]
        logs = expand_by_durations(logs_p, durations, t_y)
        return (m + prior_noise * torch.exp(logs)) * mask, y_lengths

    def decode(
        self,
        z: torch.Tensor,
        lengths: Sequence[int] | None = None,
        keep: Sequence[tuple[int, int]] | None = None,
    ) -> torch.Tensor:
        """Latent frames ``[b, c, t]`` → audio (see :meth:`Generator.forward`)."""
        audio: torch.Tensor = self.dec(z, lengths, keep)
        return audio


def scale_durations(base: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Whole-frame durations ``base`` (``[b, t_x]``) times ``scale``, rounded without drift.

    Rounding each phoneme on its own (Piper's ``ceil(w * length_scale)``) swallows
    small changes: most phonemes last 1-3 frames, so ×0.9 rarely moves one
    (``docs/performance.md``). Here every utterance gets the scaled total
    (rounded), a phoneme that had frames keeps at least one, and the frames beyond
    those minimums are spread over the phonemes by rounding their running total.
    """
    target = base * scale
    floor = (base > 0).to(base.dtype)  # the one frame a spoken id keeps
    total = torch.round(target.sum(1, keepdim=True))  # [b, 1]
    extra = (target - floor).clamp_min(0)
    room = (total - floor.sum(1, keepdim=True)).clamp_min(0)
    weight = extra * (room / extra.sum(1, keepdim=True).clamp_min(1e-9))
    edges = torch.round(torch.cumsum(weight, dim=1))
    spread = torch.diff(edges, dim=1, prepend=torch.zeros_like(edges[:, :1]))
    return (floor + spread).long()
