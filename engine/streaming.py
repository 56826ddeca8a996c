"""The VITS voice's streaming core: batches, controls and streams synthesis.

The ladder (after piper's ``voice.py``)::

    Voice.load(files, device) → voice.frontend.process(text) → ids
        → voice.prepare([SynthesisRequest, ...])   # text encoder, durations, prior
        → voice.stream(batch)                      # flow + decoder window by window
        → Iterator[AudioChunk]

``prepare`` runs the cheap per-utterance work once over the whole batch;
``stream`` runs the prior flow in two blocks (a prefix that covers the first
chunk, then the rest) and the decoder on context-padded windows
(``engine/chunking.py``), so each item's first audio comes out after one
small decoder step, and every item's chunks join into exactly its whole decode.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
import torch

from .chunking import ChunkSchedule, Window, decoder_context, flow_context, windows
from .frontend import Frontend
from .interface import Precision
from .loader import VoiceFiles, default_voice_files, load_vits
from .nets.commons import sequence_mask
from .nets.models import Vits
from .pcm import pcm16_bytes
from .runtime import reserve_kernel_cache

__all__ = [
    "AudioChunk",
    "Batch",
    "ItemStream",
    "Precision",
    "StreamingVoice",
    "SynthesisParams",
    "SynthesisRequest",
]

WIDTH_BUCKET = 8
"""Decoder rows are padded to a multiple of this many latent frames."""
SHAPE_BUCKET = 16
"""Phoneme and flow widths are padded to a multiple of this: oneDNN builds kernels
per input shape, and a fresh shape costs several times the convolution itself."""
DECODE_BUDGET_FRAMES = 192
"""Most latent frames (rows × padded width) in one decoder call."""
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthesisParams:
    """Per-utterance controls of the VITS voice.

    Raises:
        ValueError: a value is outside its documented range.
    """

    length_scale: float = 1.0
    """Speaking-time multiplier: 2.0 is half as fast. Range [0.25, 4]."""
    noise_scale: float = 0.667
    """Prior sampling temperature (liveliness of timbre). Range [0, 2]; 0 is deterministic."""
    noise_w: float = 0.8
    """Duration sampling temperature (rhythm variation). Range [0, 2]; 0 is deterministic."""
    seed: int | None = None
    """Seed of this utterance's noise; None draws a fresh one."""

    def __post_init__(self) -> None:
        if not 0.25 <= self.length_scale <= 4.0:
            raise ValueError(f"length_scale must be in [0.25, 4], got {self.length_scale}")
        for name in ("noise_scale", "noise_w"):
            value = getattr(self, name)
            if not 0.0 <= value <= 2.0:
                raise ValueError(f"{name} must be in [0, 2], got {value}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")

    def offset_seed(self, n: int) -> SynthesisParams:
        """The same controls for the ``n``-th of several pieces (sentences, lines).

        A fixed seed moves on by ``n`` so that pieces differ but stay reproducible;
        without a seed nothing changes.
        """
        if self.seed is None or n == 0:
            return self
        return replace(self, seed=(self.seed + n) % 2**63)

    @classmethod
    def deterministic(cls, length_scale: float = 1.0) -> SynthesisParams:
        """No sampling noise: the same ids always give the same samples."""
        return cls(length_scale=length_scale, noise_scale=0.0, noise_w=0.0, seed=0)


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    """One sentence's phoneme ids and its controls."""

    ids: Sequence[int]
    params: SynthesisParams = field(default_factory=SynthesisParams)
    phoneme_scale: Sequence[float] | None = None
    """Optional per-id duration multipliers (pauses, emphasis), same length as ``ids``."""


@dataclass(slots=True)
class AudioChunk:
    """A piece of one item's audio, in order within that item."""

    item: int
    """Index of the request in the batch."""
    samples: np.ndarray
    """float32 mono samples in [-1, 1] at the voice's sample rate."""
    offset: int
    """Sample offset of ``samples[0]`` within the item's audio."""
    is_last: bool
    """True on the item's final chunk."""
    phoneme_samples: list[int] | None = None
    """Samples spoken per phoneme id of the item (first chunk only)."""
    warnings: list[str] = field(default_factory=list)
    """What the engine degraded for this item (first chunk only)."""
    tag: object = None
    """The caller's handle of the item (see :meth:`Voice.begin`)."""

    def pcm16(self) -> bytes:
        """The samples as little-endian signed 16-bit PCM."""
        return pcm16_bytes(self.samples)


@dataclass(slots=True)
class Batch:
    """Output of :meth:`Voice.prepare`: durations and prior samples (on the voice's device)."""

    z_p: torch.Tensor  # [b, c, t_y] prior sample, zero past each item's frames
    durations: torch.Tensor  # [b, t_x] frames per phoneme id
    frames: list[int]  # latent frames per item
    id_counts: list[int]  # phoneme ids per item (durations past this are padding)


@dataclass(slots=True, eq=False)
class ItemStream:
    """One sentence in flight: its prior sample, chunk plan and progress.

    Made by :meth:`Voice.begin`, advanced by :meth:`Voice.step`. Items from
    different ``begin`` calls can share a step: a running batch admits new
    utterances at every decoder step (continuous batching).
    """

    index: int
    """Position in the ``begin`` call."""
    tag: object
    """The caller's handle, copied onto every chunk."""
    z_p: torch.Tensor
    """``[c, frames]`` prior sample."""
    plan: list[Window]
    """The chunks to decode, in order."""
    phoneme_samples: list[int]
    """Samples per phoneme id."""
    z: torch.Tensor
    """``[c, ready]`` flow output computed so far (a prefix of the latent)."""
    step: int = 0
    """Chunks already decoded."""

    @property
    def frames(self) -> int:
        return int(self.z_p.shape[1])

    @property
    def done(self) -> bool:
        return self.step >= len(self.plan)


class StreamingVoice:
    """A loaded VITS voice on one device: the batching machinery (``prepare``, ``begin``,
    ``step``). Not thread-safe: one caller at a time."""

    def __init__(
        self,
        model: Vits,
        config: dict[str, Any],
        device: torch.device,
        precision: Precision = "float32",
    ) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.precision = precision
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.language = str(config.get("language", {}).get("code", "en_US")).replace("_", "-")
        """The voice's language as a BCP 47 tag (``en-US``)."""
        self.hop_length = model.cfg.hop_length
        self.frontend = Frontend.from_config(config)
        cfg = model.cfg
        shape = (
            cfg.upsample_rates,
            cfg.upsample_kernel_sizes,
            cfg.resblock_kernel_sizes,
            cfg.resblock_dilation_sizes,
        )
        self.decoder_context = decoder_context(*shape)
        self.late_context = decoder_context(*shape, first_stage=1)
        self.flow_context = flow_context(n_couplings=4, wn_layers=4, kernel_size=5)

    @classmethod
    def load(
        cls,
        files: VoiceFiles | None = None,
        device: str | torch.device = "cpu",
        precision: Precision = "float32",
    ) -> Self:
        """Load a Piper voice (default: the bundled ``en_US-joe-medium``).

        Args:
            files: the voice's ``.onnx`` and ``.onnx.json``.
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
            precision: dtype of the prior flow and decoder; the text encoder and
                duration predictor stay float32.

        Raises:
            ValueError: unknown precision, float16 on CPU, or the weights do not
                fit the architecture.
            RuntimeError: the device is not available.
        """
        if precision not in _DTYPES:
            raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        if dev.type == "cpu" and precision == "float16":
            # Measured: CPU float16 convolutions run ~20x slower than float32.
            raise ValueError("float16 is for CUDA; on CPU use bfloat16 or float32")
        reserve_kernel_cache()
        model, config = load_vits(files or default_voice_files(), dev)
        model.prepare_for_inference(_DTYPES[precision])
        return cls(model, config, dev, precision)

    # -- batch stages ------------------------------------------------------------------

    @torch.inference_mode()
    def prepare(self, requests: Sequence[SynthesisRequest]) -> Batch:
        """Encode text, sample durations and prior noise for a batch.

        Raises:
            ValueError: empty batch, empty ids, ids out of the vocabulary, or a
                ``phoneme_scale`` of the wrong length.
        """
        if not requests:
            raise ValueError("prepare() needs at least one request")
        n_vocab = self.model.cfg.n_vocab
        lengths = [len(r.ids) for r in requests]
        t_x = _bucket(max(lengths), SHAPE_BUCKET)  # padding is masked; shapes repeat
        ids = torch.zeros(len(requests), t_x, dtype=torch.long)
        dp_noise = torch.zeros(len(requests), 2, t_x)
        scale = torch.ones(len(requests), t_x)
        gens = []
        for i, r in enumerate(requests):
            if not r.ids:
                raise ValueError(f"request {i} has no phoneme ids")
            row = torch.as_tensor(list(r.ids), dtype=torch.long)
            if int(row.min()) < 0 or int(row.max()) >= n_vocab:
                raise ValueError(f"request {i} has phoneme ids outside [0, {n_vocab})")
            ids[i, : len(row)] = row
            if r.phoneme_scale is not None:
                if len(r.phoneme_scale) != len(r.ids):
                    raise ValueError(f"request {i}: phoneme_scale must have one value per id")
                scale[i, : len(row)] = torch.as_tensor(list(r.phoneme_scale), dtype=torch.float32)
            seed = r.params.seed if r.params.seed is not None else secrets.randbits(63)
            gen = torch.Generator().manual_seed(seed)
            dp_noise[i, :, : len(row)] = torch.randn(2, len(row), generator=gen) * r.params.noise_w
            gens.append(gen)
        dev = self.device
        length_scale = torch.tensor([r.params.length_scale for r in requests])
        phoneme_scale = None if all(r.phoneme_scale is None for r in requests) else scale.to(dev)
        m_p, logs_p, durations = self.model.durations(
            ids.to(dev),
            torch.tensor(lengths, device=dev),
            dp_noise.to(dev),
            length_scale.to(dev),
            phoneme_scale,
        )
        frames = [max(1, int(f)) for f in durations.sum(1).tolist()]
        c = self.model.cfg.inter_channels
        noise = torch.zeros(len(requests), c, _bucket(max(frames), SHAPE_BUCKET))
        for i, (f, g, r) in enumerate(zip(frames, gens, requests)):
            noise[i, :, :f] = torch.randn(c, f, generator=g) * r.params.noise_scale
        z_p, _ = self.model.prior(m_p, logs_p, durations, noise.to(dev))
        return Batch(z_p, durations, frames, lengths)

    def phoneme_samples(self, batch: Batch, item: int) -> list[int]:
        """Samples per phoneme id of one item (for word/phoneme timestamps)."""
        durations = batch.durations[item, : batch.id_counts[item]].tolist()
        return [int(d) * self.hop_length for d in durations]

    @torch.inference_mode()
    def begin(
        self,
        requests: Sequence[SynthesisRequest],
        schedule: ChunkSchedule | None = None,
        tags: Sequence[object] | None = None,
    ) -> list[ItemStream]:
        """Prepare a batch and run the prior flow over each item's first window.

        The rest of the flow runs when an item first needs it (its second
        step), so the first chunk waits for only a prefix of the flow.

        Raises:
            ValueError: as :meth:`prepare`.
        """
        schedule = schedule or ChunkSchedule()
        tags = list(tags) if tags is not None else [None] * len(requests)
        batch = self.prepare(requests)
        items = [
            ItemStream(
                index=i,
                tag=tag,
                z_p=batch.z_p[i, :, :f],
                plan=windows(f, schedule, self.decoder_context),
                phoneme_samples=self.phoneme_samples(batch, i),
                z=batch.z_p.new_zeros(batch.z_p.shape[1], 0),
            )
            for i, (f, tag) in enumerate(zip(batch.frames, tags))
        ]
        self._advance_flow(items, [it.plan[0].hi for it in items])
        return items

    @torch.inference_mode()
    def step(self, items: Sequence[ItemStream]) -> Iterator[AudioChunk]:
        """Decode the next chunk of every unfinished item, in as few decoder calls as fit.

        Items still waiting for their first chunk go first, and chunks are
        yielded group by group as each decoder call finishes, so a newly
        admitted utterance's first audio does not wait for the others' chunks.
        Within an item, chunks come in order and join to its whole decode.
        """
        fresh = [it for it in items if it.step == 0 and not it.done]
        going = [it for it in items if it.step > 0 and not it.done]
        yield from self._decode_chunks(fresh)
        # The rest of the flow only now: first chunks need not wait for it.
        behind = [it for it in going if it.plan[it.step].hi > it.z.shape[1]]
        if behind:
            self._advance_flow(behind, [it.frames for it in behind])
        yield from self._decode_chunks(going)

    def _decode_chunks(self, items: list[ItemStream]) -> Iterator[AudioChunk]:
        for group in self._groups(items):
            for it, audio in zip(group, self._decode_group(group)):
                w = it.plan[it.step]
                yield AudioChunk(
                    item=it.index,
                    samples=audio,
                    offset=w.start * self.hop_length,
                    is_last=it.step == len(it.plan) - 1,
                    phoneme_samples=it.phoneme_samples if it.step == 0 else None,
                    tag=it.tag,
                )
                it.step += 1

    def stream(
        self, requests: Sequence[SynthesisRequest], schedule: ChunkSchedule | None = None
    ) -> Iterator[AudioChunk]:
        """Synthesize a batch, yielding each item's chunks as they are ready.

        Step ``k`` decodes the ``k``-th chunk of every item that has one; so a
        batch's first chunks all arrive after the first step.
        """
        items = self.begin(requests, schedule)
        while not all(it.done for it in items):
            yield from self.step(items)

    def _advance_flow(self, items: Sequence[ItemStream], ends: Sequence[int]) -> None:
        """Extend each item's flow output to ``end`` frames, in one batched flow call.

        Each row carries ``flow_context`` real frames (or the true edge) on both
        sides of the frames it produces, so blocks join exactly.
        """
        ctx = self.flow_context
        spans = []
        for it, end in zip(items, ends):
            start = it.z.shape[1]
            spans.append((start, end, max(0, start - ctx), min(it.frames, end + ctx)))
        width = _bucket(max(hi - lo for _, _, lo, hi in spans), SHAPE_BUCKET)
        dtype = _DTYPES[self.precision]
        x = items[0].z_p.new_zeros(len(items), items[0].z_p.shape[0], width, dtype=dtype)
        for row, (it, (_, _, lo, hi)) in enumerate(zip(items, spans)):
            x[row, :, : hi - lo] = it.z_p[:, lo:hi]
        lengths = torch.tensor([hi - lo for _, _, lo, hi in spans], device=self.device)
        mask = sequence_mask(lengths, width).unsqueeze(1).to(dtype)  # [n, 1, w]
        z = self.model.flow.reverse(x, mask) * mask
        for row, (it, (start, end, lo, _)) in enumerate(zip(items, spans)):
            it.z = torch.cat([it.z, z[row, :, start - lo : end - lo].float()], dim=1)

    def _groups(self, items: list[ItemStream]) -> Iterator[list[ItemStream]]:
        """Split items into decoder calls of at most ``DECODE_BUDGET_FRAMES`` frames.

        Rows are padded to a multiple of ``WIDTH_BUCKET`` frames: oneDNN builds
        (and caches) kernels per input shape, and a fresh shape per call costs
        several times the convolution itself. A bounded group keeps its
        activations in cache.
        """
        group: list[ItemStream] = []
        width = 0
        for it in items:
            w = it.plan[it.step]
            wider = max(width, _bucket(w.hi - w.lo, WIDTH_BUCKET))
            if group and (len(group) + 1) * wider > DECODE_BUDGET_FRAMES:
                yield group
                group, wider = [], _bucket(w.hi - w.lo, WIDTH_BUCKET)
            group.append(it)
            width = wider
        if group:
            yield group

    def _decode_group(self, items: list[ItemStream]) -> list[np.ndarray]:
        wins = [it.plan[it.step] for it in items]
        width = _bucket(max(w.hi - w.lo for w in wins), WIDTH_BUCKET)
        x = items[0].z.new_zeros(len(items), items[0].z.shape[0], width)
        for row, (it, w) in enumerate(zip(items, wins)):
            x[row, :, : w.hi - w.lo] = it.z[:, w.lo : w.hi]
        lengths = [w.hi - w.lo for w in wins]
        keep = [(w.start - w.lo, w.end - w.lo) for w in wins]
        audio = self.model.dec(x, lengths, keep, self.late_context).cpu().numpy()
        hop = self.hop_length
        return [audio[row, : (w.end - w.start) * hop].copy() for row, w in enumerate(wins)]


def _bucket(n: int, step: int) -> int:
    return -(-n // step) * step
