"""Streaming maths: where each chunk starts and ends, and how much context it needs.

Pure functions over integers, so that "the joined chunks equal the whole
decode" can be checked without a model (see ``tests/engine/test_chunking.py``).

Why context and not state: the decoder is a stack of non-causal convolutions.
A window of latent frames decoded with at least the decoder's receptive field
of real frames on each side produces, inside that margin, exactly the samples
the whole-utterance decode produces; the margin is then trimmed. No crossfade
is needed, and none is used (crossfading would *change* the audio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ChunkSchedule",
    "Window",
    "chunk_bounds",
    "decoder_context",
    "flow_context",
    "windows",
]


def decoder_context(
    upsample_rates: Sequence[int],
    upsample_kernel_sizes: Sequence[int],
    resblock_kernel_sizes: Sequence[int],
    resblock_dilation_sizes: Sequence[Sequence[int]],
    pre_kernel: int = 7,
    post_kernel: int = 7,
    first_stage: int = 0,
) -> int:
    """Latent frames of context a HiFi-GAN window needs on each side.

    Sums each layer's one-sided reach, converted to latent frames, and rounds up.
    With ``first_stage > 0``, only the reach of the upsampling stages from that
    one on (and the output conv) counts: the context those later stages need
    around the frames they must produce.

    Returns:
        The one-sided receptive field in latent frames.
    """
    reach = (pre_kernel - 1) / 2 if first_stage == 0 else 0.0  # in latent frames
    rate = math.prod(upsample_rates[:first_stage])
    block = max(
        sum((rk - 1) // 2 * d for d in dils)
        for rk, dils in zip(resblock_kernel_sizes, resblock_dilation_sizes)
    )
    for u, k in zip(upsample_rates[first_stage:], upsample_kernel_sizes[first_stage:]):
        # A transposed conv's output sample sees inputs up to ceil(k / u) samples away.
        reach += math.ceil(k / u) / rate
        rate *= u
        reach += block / rate
    reach += (post_kernel - 1) / 2 / rate
    return math.ceil(reach)


def flow_context(n_couplings: int, wn_layers: int, kernel_size: int, dilation_rate: int = 1) -> int:
    """Latent frames of context the prior flow needs on each side.

    Each coupling layer's WaveNet reaches ``sum((k-1)/2 * rate**i)`` frames and
    couplings compose, so reaches add.
    """
    per_layer = sum((kernel_size - 1) // 2 * int(dilation_rate**i) for i in range(wn_layers))
    return n_couplings * per_layer


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkSchedule:
    """How an utterance's latent frames are cut into streamed chunks.

    A small first chunk gets audio out early; later chunks grow geometrically
    up to ``max_frames`` so the per-chunk context overhead shrinks.
    """

    first_frames: int = 16
    """Latent frames in the first chunk (× hop samples; 16 ≈ 186 ms at 22.05 kHz)."""
    growth: float = 2.0
    """Each chunk is this many times the previous one."""
    max_frames: int = 128
    """Upper bound on a chunk's frames."""

    def __post_init__(self) -> None:
        if self.first_frames < 1:
            raise ValueError(f"first_frames must be ≥ 1, got {self.first_frames}")
        if self.max_frames < self.first_frames:
            raise ValueError(
                f"max_frames ({self.max_frames}) must be ≥ first_frames ({self.first_frames})"
            )
        if self.growth < 1.0:
            raise ValueError(f"growth must be ≥ 1, got {self.growth}")


def chunk_bounds(total: int, schedule: ChunkSchedule) -> list[tuple[int, int]]:
    """Cut ``[0, total)`` frames into consecutive chunks.

    Returns:
        ``[(start, end), ...]`` covering every frame once, in order; empty when
        ``total`` is 0. A tail shorter than a quarter of the next chunk joins
        the previous one, so no chunk is tiny except a short utterance's only one.

    Raises:
        ValueError: ``total`` is negative.
    """
    if total < 0:
        raise ValueError(f"total must be ≥ 0, got {total}")
    bounds: list[tuple[int, int]] = []
    start, size = 0, float(schedule.first_frames)
    while start < total:
        n = int(min(size, schedule.max_frames))
        end = min(total, start + n)
        bounds.append((start, end))
        start, size = end, size * schedule.growth
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min(size, schedule.max_frames) / 4:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


@dataclass(frozen=True, slots=True)
class Window:
    """A chunk and the wider span of frames decoded to produce it."""

    start: int
    """First frame kept."""
    end: int
    """One past the last frame kept."""
    lo: int
    """First frame decoded (≤ start)."""
    hi: int
    """One past the last frame decoded (≥ end)."""

    def trim(self, hop: int) -> slice:
        """The samples of the decoded span's audio that belong to the chunk."""
        return slice((self.start - self.lo) * hop, (self.end - self.lo) * hop)


def windows(total: int, schedule: ChunkSchedule, context: int) -> list[Window]:
    """Chunks of ``[0, total)`` with ``context`` real frames around each (clipped at the ends)."""
    return [
        Window(s, e, max(0, s - context), min(total, e + context))
        for s, e in chunk_bounds(total, schedule)
    ]
