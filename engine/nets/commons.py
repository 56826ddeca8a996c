"""Pure tensor helpers shared by the VITS modules (no parameters, no state)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = [
    "expand_by_durations",
    "relative_to_absolute",
    "absolute_to_relative",
    "rational_quadratic_inverse",
    "sequence_mask",
]


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean mask ``[b, t]`` that is True inside each item's length.

    Args:
        lengths: ``[b]`` integer lengths.
        max_length: width of the mask; defaults to ``lengths.max()``.

    Returns:
        ``[b, t]`` bool tensor.
    """
    if max_length is None:
        max_length = int(lengths.max())
    steps = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # [b, t]


def relative_to_absolute(rel: torch.Tensor, window: int) -> torch.Tensor:
    """Scatter banded relative logits onto the full query×key grid.

    Args:
        rel: ``[b, h, t, 2w+1]`` logits, column ``j`` is the key at offset ``j - w``.
        window: ``w``, the attention's relative window.

    Returns:
        ``[b, h, t, t]``; entries farther than ``w`` from the diagonal are 0
        (those offsets have no embedding).
    """
    b, h, t, _ = rel.shape
    rel = F.pad(rel, (0, 1))  # [b, h, t, 2w+2]; last column is the zero for "no embedding"
    q = torch.arange(t, device=rel.device).unsqueeze(1)
    k = torch.arange(t, device=rel.device).unsqueeze(0)
    offset = k - q  # [t, t]
    index = torch.where(offset.abs() <= window, offset + window, 2 * window + 1)
    return torch.gather(rel, 3, index.expand(b, h, t, t))  # [b, h, t, t]


def absolute_to_relative(p: torch.Tensor, window: int) -> torch.Tensor:
    """Collect the band of attention weights around the diagonal.

    Args:
        p: ``[b, h, t, t]`` attention weights.
        window: ``w``.

    Returns:
        ``[b, h, t, 2w+1]``, column ``j`` holds the weight of key ``q + j - w``
        (0 where that key is outside the sequence).
    """
    b, h, t, _ = p.shape
    p = F.pad(p, (0, 1))  # [b, h, t, t+1]; last column is zero
    q = torch.arange(t, device=p.device).unsqueeze(1)
    j = torch.arange(2 * window + 1, device=p.device).unsqueeze(0)
    key = q + j - window  # [t, 2w+1]
    index = torch.where((key >= 0) & (key < t), key, t)
    return torch.gather(p, 3, index.expand(b, h, t, 2 * window + 1))  # [b, h, t, 2w+1]


def expand_by_durations(x: torch.Tensor, durations: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat each phoneme's statistics for its number of latent frames.

    Equivalent to VITS' monotonic path matmul, but a gather: exact and O(t_y).

    Args:
        x: ``[b, c, t_x]`` per-phoneme values.
        durations: ``[b, t_x]`` integer frame counts (0 for padding).
        frames: ``t_y``, the output width (≥ every item's total).

    Returns:
        ``[b, c, t_y]``; frames past an item's total repeat its last phoneme and
        must be masked by the caller.
    """
    b, c, t_x = x.shape
    ends = torch.cumsum(durations, dim=1)  # [b, t_x]
    y = torch.arange(frames, device=x.device, dtype=ends.dtype)
    y = y.unsqueeze(0).expand(b, frames).contiguous()  # [b, t_y]
    index = torch.searchsorted(ends, y, right=True).clamp_(max=t_x - 1)  # [b, t_y]
    return torch.gather(x, 2, index.unsqueeze(1).expand(b, c, frames))  # [b, c, t_y]


_MIN_BIN = 1e-3
_MIN_DERIVATIVE = 1e-3
_EDGE_DERIVATIVE = math.log(math.exp(1 - _MIN_DERIVATIVE) - 1)


def _bins(unnormalized: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin edges ``[..., K+1]`` and sizes ``[..., K]`` on ``[-bound, bound]``."""
    k = unnormalized.shape[-1]
    sizes = _MIN_BIN + (1 - _MIN_BIN * k) * torch.softmax(unnormalized, dim=-1)
    edges = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))  # [..., K+1]
    edges = 2 * bound * edges - bound
    edges[..., 0], edges[..., -1] = -bound, bound  # exact ends despite rounding
    return edges, edges[..., 1:] - edges[..., :-1]


def rational_quadratic_inverse(
    y: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    tail_bound: float,
) -> torch.Tensor:
    """Inverse of the monotonic rational-quadratic spline with linear tails.

    (Durkan et al. 2019, "Neural Spline Flows"; VITS' duration flows.)

    Args:
        y: ``[...]`` values to invert.
        widths: ``[..., K]`` unnormalized bin widths.
        heights: ``[..., K]`` unnormalized bin heights.
        derivatives: ``[..., K-1]`` unnormalized inner knot derivatives.
        tail_bound: the spline acts on ``[-B, B]``; outside it is the identity.

    Returns:
        ``x`` with the shape of ``y``.
    """
    inside = (y >= -tail_bound) & (y <= tail_bound)
    yc = y.clamp(-tail_bound, tail_bound)
    x_edges, x_sizes = _bins(widths, tail_bound)
    y_edges, y_sizes = _bins(heights, tail_bound)
    derivatives = F.pad(derivatives, (1, 1), value=_EDGE_DERIVATIVE)
    derivatives = _MIN_DERIVATIVE + F.softplus(derivatives)  # [..., K+1]

    search = torch.cat([y_edges[..., :-1], y_edges[..., -1:] + 1e-6], -1)
    index = ((yc.unsqueeze(-1) >= search).sum(-1) - 1).unsqueeze(-1)  # [..., 1]

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, index).squeeze(-1)

    x0, w = pick(x_edges), pick(x_sizes)
    y0, hgt = pick(y_edges), pick(y_sizes)
    delta = hgt / w
    d0, d1 = pick(derivatives), pick(derivatives[..., 1:])

    dy = yc - y0
    a = dy * (d0 + d1 - 2 * delta) + hgt * (delta - d0)
    b = hgt * d0 - dy * (d0 + d1 - 2 * delta)
    c = -delta * dy
    root = (2 * c) / (-b - torch.sqrt(b.pow(2) - 4 * a * c))
    return torch.where(inside, root * w + x0, y)
