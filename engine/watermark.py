"""The Perth watermark: our torch port of PerthNet, embedding while audio streams, detection.

PerthNet (Resemble AI's implicit watermark, MIT licensed; its weights ship in the
``resemble-perth`` wheel) works on the magnitude spectrogram of 32 kHz audio (a
2048-point Hann STFT, 10 ms hop), in a normalized decibel scale: ``(dB + 180) / 195``.
Its encoder, seven 1-D convolutions over the 0–2 kHz bins (128 of them), adds a
residual ``r`` to that scale on every frame that is not digital silence; its decoder,
three such stacks at 1.25×, 1× and 0.75× the frame rate mixed by attention, reads one
score per clip (about 1 marked, about 0 clean). This module is our own code around the
package's weights: no torchaudio, no librosa, nothing imported from the package.

Embedding as the package does it resamples to 32 kHz, rebuilds the whole signal from
the changed magnitudes and the original phases, and resamples back. Here only the
*difference* is made: a residual ``r`` scales its bin by ``10^(195 r / 20)``, so the
mark is the inverse STFT of ``X · (10^(9.75 r) − 1)`` on the 0–2 kHz bins alone,
brought back to the voice's rate and added to its samples. The voice's own samples
never pass through a resampler or an inverse STFT.

:func:`embed` marks a whole clip. :class:`MarkStream` marks a stream block by block,
holding back what later frames still change: 64 ms for the analysis and synthesis
windows plus ``lookahead`` frames (10 ms each) of right context for the encoder,
whose exact reach is 15 frames. Frames are computed with their full 15 frames of left
context, so a stream differs from the whole clip only by the right context it cut.
:func:`score` is detection.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .interface import ModelMissing
from .resample import FastResampler, resample

__all__ = [
    "HOP",
    "FIRST_LOOKAHEAD",
    "LOOKAHEAD",
    "MODEL",
    "PERTH_PACKAGE",
    "RATE",
    "REACH",
    "STRENGTH",
    "THRESHOLD",
    "Block",
    "MarkStream",
    "PerthNet",
    "embed",
    "embed_many",
    "decode_audio",
    "detect",
    "hold_back",
    "load_perthnet",
    "score",
    "spectrogram",
    "weights_path",
]

PERTH_PACKAGE = "resemble-perth==1.0.1"
"""The wheel whose weights this port loads."""
MODEL = "perthnet-implicit"
"""The scheme's name, as detectors and ``capabilities.watermark`` call it."""
THRESHOLD = 0.5
"""A score (:func:`score`, :func:`detect`) at or above it is marked; the detector's
scores sit near 0 or near 1."""
RATE = 32000
N_FFT = 2048
HOP = 320
SUBBAND = 128
"""Bins the watermark lives in: round(1025 · 2000 / 16000), 0–2 kHz."""
REACH = 15
"""Frames the encoder sees on each side of a frame (five convolutions of width 7)."""
LOOKAHEAD = 4
"""Frames of right context a streamed frame is encoded with (of the exact 15): see
docs/watermark.md for what fewer or more cost."""
STRENGTH = 0.6
"""The share of PerthNet's residual voxlive adds: at the package's full strength the
mark cost 0.08 of Distill-MOS on held-out sentences; at 0.6, 0.05 or less, and every
attacked clip of the benchmark is still found (docs/watermark.md)."""
FIRST_LOOKAHEAD = 0
"""Frames of right context of a segment's first block: none, so that its audio reaches
a player 40 ms sooner (a player that waits for 80 ms before it starts gets it from the
first chunk); it covers a sentence's leading silence, where the mark hardly differs."""
_MIN_DB = -180.0  # 20 · log10(1e-9), the magnitude floor
_RANGE_DB = 195.0  # the normalized scale's span: 180 dB below 1 to 15 dB above
_MASK_SHARE = 0.05
"""A frame is marked when its summed normalized magnitude exceeds this share of the
loudest frame's (only digital silence falls below)."""
_WEIGHTS = "perth_net/pretrained/implicit/perth_net_250000.pth.tar"


def weights_path() -> Path:
    """The PerthNet checkpoint inside the installed ``resemble-perth`` package.

    Found without importing the package (its ``__init__`` needs torchaudio).

    Raises:
        ModelMissing: the package is not installed.
    """
    spec = importlib.util.find_spec("perth")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / _WEIGHTS
        if path.is_file():
            return path
    raise ModelMissing(f"the watermark's weights are not installed: pip install {PERTH_PACKAGE}")


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding=(k - 1) // 2)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x) if self.act else x


class _Stack(nn.Module):
    """1×1 in, five width-7 convolutions, 1×1 out; activations past each item's length
    are kept at zero, so a padded batch equals its items run one by one."""

    def __init__(self, cin: int, hidden: int, cout: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [_Conv(cin, hidden, 1)]
            + [_Conv(hidden, hidden, 7) for _ in range(5)]
            + [_Conv(hidden, cout, 1, act=False)]
        )

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            if valid is not None:
                x = x * valid
        return x


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * m).sum(dim=2) / m.sum(dim=2).clamp(min=1e-9)


class PerthNet(nn.Module):
    """PerthNet's encoder and decoder (module docstring); inputs are normalized
    magnitudes ``[batch, bins ≥ 128, frames]``."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = _Stack(SUBBAND, hidden, SUBBAND)
        self.slow = _Stack(SUBBAND, hidden, 2)
        self.normal = _Stack(SUBBAND, hidden, 2)
        self.fast = _Stack(SUBBAND, hidden, 2)

    def residual(
        self, sub: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The watermark residual ``[B, 128, T]`` of the 0–2 kHz bins ``sub``.

        Args:
            sub: ``[B, 128, T]`` normalized magnitudes.
            mask: ``[B, T]``, 1 where a frame is marked.
            lengths: frames of each item (a padded batch); None: all ``T``.
        """
        valid = None
        if lengths is not None:
            steps = torch.arange(sub.shape[2], device=sub.device)
            valid = (steps[None, :] < lengths[:, None]).to(sub.dtype)[:, None]
        out: torch.Tensor = self.encoder(sub, valid) * mask[:, None]
        return out

    def residuals(
        self, subs: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """:meth:`residual` of several items of their own lengths (``[128, n_i]`` and
        ``[n_i]``), run as one padded batch; each comes back ``[128, n_i]`` (CPU)."""
        if not subs:
            return []
        device = next(self.parameters()).device
        lengths = torch.tensor([s.shape[1] for s in subs])
        width = int(lengths.max())
        sub = torch.stack([F.pad(s, (0, width - s.shape[1])) for s in subs])
        mask = torch.stack([F.pad(m, (0, width - len(m))) for m in masks])
        with torch.inference_mode():
            out = self.residual(sub.to(device), mask.to(device), lengths.to(device)).cpu()
        return [r[:, :n] for r, n in zip(out, lengths.tolist())]

    def decode(self, mag: torch.Tensor) -> torch.Tensor:
        """One watermark score per clip ``[B]`` (not clipped) from ``[B, bins, T]``."""
        mask = frame_mask(mag.sum(dim=1))[:, None]  # [B, 1, T]
        sub = mag[:, :SUBBAND]
        frames = sub.shape[2]
        attn, marks = [], []
        for stack, rate in ((self.slow, 1.25), (self.normal, 1.0), (self.fast, 0.75)):
            x = sub
            if rate != 1.0:
                x = F.interpolate(sub, size=int(frames * rate), mode="linear", align_corners=True)
            out = stack(x)  # [B, 2, T']
            m = F.interpolate(mask, size=out.shape[2], mode="nearest")
            attn.append(_masked_mean(out[:, :1], m))
            marks.append(_masked_mean(out[:, 1:], m))
        weights = torch.softmax(torch.cat(attn, dim=1), dim=1)
        return (torch.cat(marks, dim=1) * weights).sum(dim=1)


def frame_mask(sums: torch.Tensor, peak: torch.Tensor | None = None) -> torch.Tensor:
    """1 for frames whose summed magnitude ``sums [B, T]`` exceeds 5 % of ``peak``
    (default: each item's loudest frame)."""
    if peak is None:
        peak = sums.max(dim=1).values
    return (sums > peak[:, None] * _MASK_SHARE).to(sums.dtype)


def load_perthnet(device: str | torch.device = "cpu", path: Path | None = None) -> PerthNet:
    """The port with the package's weights (eval mode).

    Raises:
        ModelMissing: the package is not installed.
        ValueError: the checkpoint does not fit the port.
    """
    checkpoint = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for key, value in checkpoint["model"].items():
        part, _, rest = key.partition(".")
        if part == "ap":
            continue  # the package's STFT windows and phase-vocoder buffer
        if part == "encoder":
            state["encoder." + rest] = value
        elif part == "decoder":
            branch, _, rest = rest.partition("_layers.")
            state[f"{branch}.layers.{rest}"] = value
        else:
            raise ValueError(f"unexpected PerthNet tensor {key}")
    net = PerthNet()
    mine = net.state_dict()
    if set(mine) != set(state) or any(mine[k].shape != state[k].shape for k in mine):
        raise ValueError("the PerthNet checkpoint does not fit the port")
    net.load_state_dict(state)
    return net.eval().requires_grad_(False).to(device)


_WINDOW = torch.hann_window(N_FFT)


def _normalize(spec: torch.Tensor) -> torch.Tensor:
    db = 20 * torch.log10(spec.abs().clamp(min=1e-9))
    return (db - _MIN_DB) / _RANGE_DB


def spectrogram(y: torch.Tensor, center: bool = True) -> torch.Tensor:
    """The complex STFT ``[1025, T]`` PerthNet reads (reflect-padded when ``center``)."""
    return torch.stft(
        y,
        N_FFT,
        HOP,
        N_FFT,
        window=_WINDOW.to(y.device),
        center=center,
        pad_mode="reflect",
        return_complex=True,
    )


def _scale(spec_sub: torch.Tensor, residual: torch.Tensor, strength: float) -> torch.Tensor:
    """The change each 0–2 kHz bin gets: ``X · (10^(9.75 · strength · r) − 1)``."""
    return spec_sub * torch.expm1(residual * (strength * _RANGE_DB / 20 * math.log(10)))


@torch.inference_mode()
def embed(net: PerthNet, audio: np.ndarray, rate: int, strength: float = STRENGTH) -> np.ndarray:
    """``audio`` (float32 mono at ``rate``) with the watermark added; same length.
    ``strength`` 1 is the package's own mark."""
    return embed_many(net, [audio], rate, strength)[0]


@torch.inference_mode()
def embed_many(
    net: PerthNet, audios: Sequence[np.ndarray], rate: int, strength: float = STRENGTH
) -> list[np.ndarray]:
    """Several clips marked as :func:`embed` marks each, their encoder runs in one batch."""
    device = next(net.parameters()).device
    clips = [np.asarray(a, np.float32) for a in audios]
    ups, specs, subs, masks = [], [], [], []
    for x in clips:
        y = resample(x, rate, RATE, fast=True)
        if len(y) <= N_FFT // 2:
            y = np.pad(y, (0, N_FFT // 2 + 1 - len(y)))
        spec = spectrogram(torch.from_numpy(y).to(device))
        mag = _normalize(spec)
        ups.append(y)
        specs.append(spec)
        subs.append(mag[:SUBBAND])
        masks.append(frame_mask(mag.sum(dim=0)[None])[0])
    residuals = net.residuals(subs, masks)
    window = _WINDOW.to(device)
    out = []
    for x, y, spec, res in zip(clips, ups, specs, residuals):
        change = torch.zeros_like(spec)
        change[:SUBBAND] = _scale(spec[:SUBBAND], res.to(device), strength)
        delta = torch.istft(change, N_FFT, HOP, N_FFT, window=window, center=True, length=len(y))
        back = resample(delta.cpu().numpy(), RATE, rate, fast=True)[: len(x)]
        out.append((x + np.pad(back, (0, len(x) - len(back)))).astype(np.float32))
    return out


@torch.inference_mode()
def score(net: PerthNet, audio: np.ndarray, rate: int) -> float:
    """How marked ``audio`` is, 0 (clean) to 1 (marked); 0.5 is the threshold.

    Silence (no frame above the floor) scores 0.
    """
    y = resample(np.asarray(audio, np.float32), rate, RATE, fast=True)
    if len(y) <= N_FFT // 2:
        return 0.0
    device = next(net.parameters()).device
    mag = _normalize(spectrogram(torch.from_numpy(y).to(device)))
    if not bool((mag.sum(dim=0) > 0).any()):
        return 0.0
    return float(net.decode(mag[None])[0].clamp(0.0, 1.0))


DETECT_WINDOW_S = 10.0
"""Audio longer than 1.5 windows is scored in windows of this length, half overlapping."""


def detect(net: PerthNet, audio: np.ndarray, rate: int) -> float:
    """:func:`score` of ``audio``, or of its most marked 10 s window when it is longer
    (a recording in which only some of the speech is synthetic)."""
    x = np.asarray(audio, np.float32)
    size = int(DETECT_WINDOW_S * rate)
    if len(x) <= size * 3 // 2:
        return score(net, x, rate)
    starts = list(range(0, len(x) - size, size // 2)) + [len(x) - size]
    return max(score(net, x[a : a + size], rate) for a in starts)


def decode_audio(data: bytes, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A file's audio (any format libsndfile reads: WAV, FLAC, OGG, MP3, …) as float32
    mono, and its rate.

    Raises:
        ValueError: not audio, no samples, NaN or infinite samples, an odd header, or
            longer than ``max_seconds`` (checked from the header, before decoding).
    """
    import io

    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels, frames = f.samplerate, f.channels, f.frames
            if not 1 <= channels <= 16 or not 1000 <= rate <= 768000:
                raise ValueError(f"{channels} channels at {rate} Hz is not audio we read")
            if max_seconds is not None and frames > max_seconds * rate:
                raise ValueError(f"the audio is over the limit of {max_seconds:g} s")
            audio = f.read(dtype="float32", always_2d=True).mean(axis=1)
    except sf.LibsndfileError as exc:
        raise ValueError(f"not an audio file we can read ({exc.error_string})") from None
    if not len(audio):
        raise ValueError("the file holds no audio")
    if not np.isfinite(audio).all():
        raise ValueError("the audio has NaN or infinite samples")
    return audio.astype(np.float32), int(rate)


def hold_back(lookahead: int = LOOKAHEAD) -> float:
    """Seconds of audio a :class:`MarkStream` holds back while a segment streams (its
    first block: ``hold_back(0)``)."""
    return (N_FFT + lookahead * HOP) / RATE


@dataclass(slots=True)
class Block:
    """Frames of one stream for the encoder: ``sub [128, n]`` with its ``mask [n]``;
    the residual of frames ``keep`` (a slice of the block) is what the stream takes."""

    sub: torch.Tensor
    mask: torch.Tensor
    keep: slice


class MarkStream:
    """One stream's watermark, segment by segment (module docstring).

    Feed samples with :meth:`feed`; it returns the :class:`Block` the encoder must run
    (None: nothing new to encode yet), and :meth:`take` turns the block's residual into
    the marked samples now final. ``final=True`` ends a segment: everything fed so far
    comes out, marked as a clip of its own, and the next sample starts a new segment.
    Output is exactly as long as input.
    """

    def __init__(
        self,
        rate: int,
        lookahead: int = LOOKAHEAD,
        strength: float = STRENGTH,
        first_lookahead: int = FIRST_LOOKAHEAD,
    ) -> None:
        for value in (lookahead, first_lookahead):
            if not 0 <= value <= REACH:
                raise ValueError(f"look-ahead must be 0–{REACH} frames, got {value}")
        self.rate = rate
        self.lookahead = lookahead
        self.first_lookahead = first_lookahead
        self.strength = strength
        self._start()

    def _start(self) -> None:
        self._up = FastResampler(self.rate, RATE)
        self._down = FastResampler(RATE, self.rate)
        self._y = np.zeros(0, np.float32)  # 32 kHz samples from _y0 on
        self._y0 = 0
        self._n = 0  # 32 kHz samples of the segment so far
        self._encoded = 0  # frames whose residual is in _ola
        self._peak = 0.0  # loudest frame so far (summed normalized magnitude)
        self._ola = np.zeros(0, np.float64)  # the mark at 32 kHz from _ola0 on
        self._env = np.zeros(0, np.float64)  # summed squared windows, same span
        self._ola0 = 0
        self._held = np.zeros(0, np.float32)  # input at the stream's rate, not yet out
        self._out = 0  # samples of the segment out (at the stream's rate)
        self._received = 0  # samples of the segment in
        self._final = False
        self._pending: tuple[int, int, torch.Tensor] | None = None

    # -- the two halves of one step ----------------------------------------------------

    def feed(self, samples: np.ndarray, final: bool = False) -> Block | None:
        """Take samples; the encoder's block for the frames now ready, if any."""
        x = np.asarray(samples, np.float32)
        self._held = np.concatenate([self._held, x])
        self._received += len(x)
        y = self._up.process(x)
        if final:
            y = np.concatenate([y, self._up.flush()])
        self._y = np.concatenate([self._y, y])
        self._n += len(y)
        self._final = final
        return self._block()

    def take(self, residual: torch.Tensor | None) -> np.ndarray:
        """The block's residual ``[128, n]`` (None when :meth:`feed` gave no block) →
        the samples now final, at the stream's rate."""
        if self._pending is not None:
            if residual is None:
                raise ValueError("this stream's block was not encoded")
            first, last, spec = self._pending
            self._pending = None
            self._add(first, last, spec, residual)
        return self._emit()

    # -- internals ---------------------------------------------------------------------

    def _frames_total(self) -> int:
        """Frames of the segment once complete (as a centred STFT counts them)."""
        return 1 + self._n // HOP

    def _block(self) -> Block | None:
        n, first = self._n, self._encoded
        if n == 0:
            return None
        if self._final:
            last = self._frames_total()
            known = last
        else:
            if n <= N_FFT // 2:
                return None  # not enough for the reflected start yet
            known = (n - N_FFT // 2) // HOP + 1  # frames whose window is all there
            last = known - (self.lookahead if first else self.first_lookahead)
        if last <= first:
            return None
        lo, hi = max(0, first - REACH), min(known, last + REACH)
        if not self._final:
            hi = known
        spec = self._stft(lo, hi)
        mag = _normalize(spec)
        sums = mag.sum(dim=0)
        self._peak = max(self._peak, float(sums.max()))
        mask = frame_mask(sums[None], torch.tensor([self._peak]))[0]
        self._pending = (first, last, spec[:SUBBAND, first - lo : last - lo])
        return Block(mag[:SUBBAND], mask, slice(first - lo, last - lo))

    def _stft(self, lo: int, hi: int) -> torch.Tensor:
        """Frames ``[lo, hi)`` of the segment's centred STFT (reflected at its ends)."""
        half = N_FFT // 2
        start, stop = lo * HOP - half, (hi - 1) * HOP + half  # segment sample span
        short = self._n <= half  # too short to reflect: zeros around it
        idx = np.arange(start, stop)
        if short:
            inside = (idx >= 0) & (idx < self._n)
            idx = np.where(inside, idx, -1)
        else:
            idx = np.where(idx < 0, -idx, idx)
            if self._final:
                idx = np.where(idx >= self._n, 2 * (self._n - 1) - idx, idx)
        seg = self._y[np.clip(idx - self._y0, 0, None)]
        if short:
            seg = np.where(idx < 0, 0.0, seg).astype(np.float32)
        frames = torch.from_numpy(np.ascontiguousarray(seg))
        return spectrogram(frames, center=False)

    def _add(self, first: int, last: int, spec: torch.Tensor, residual: torch.Tensor) -> None:
        """Overlap-add the mark of frames ``[first, last)``."""
        change = torch.zeros(N_FFT // 2 + 1, last - first, dtype=spec.dtype)
        change[:SUBBAND] = _scale(spec, residual, self.strength)
        frames = torch.fft.irfft(change, N_FFT, dim=0).numpy() * _WINDOW.numpy()[:, None]
        start = first * HOP - N_FFT // 2  # segment sample of the first frame's start
        stop = (last - 1) * HOP + N_FFT // 2
        if stop - self._ola0 > len(self._ola):
            grow = stop - self._ola0 - len(self._ola)
            self._ola = np.concatenate([self._ola, np.zeros(grow)])
            self._env = np.concatenate([self._env, np.zeros(grow)])
        squared = _WINDOW.numpy().astype(np.float64) ** 2
        for j in range(last - first):
            a = start + j * HOP - self._ola0
            lo = max(0, -a)
            self._ola[a + lo : a + N_FFT] += frames[lo:, j]
            self._env[a + lo : a + N_FFT] += squared[lo:]
        self._encoded = last

    def _emit(self) -> np.ndarray:
        # 32 kHz samples of the mark no later frame touches.
        if self._final and self._encoded >= self._frames_total():
            ready = self._n
        else:
            ready = min(self._n, self._encoded * HOP - N_FFT // 2)
        count = ready - self._ola0
        if count > 0:
            env = self._env[:count]
            mark = np.where(env > 1e-11, self._ola[:count] / np.maximum(env, 1e-11), 0.0)
            self._ola, self._env = self._ola[count:], self._env[count:]
            self._ola0 = ready
            back = self._down.process(mark.astype(np.float32))
        else:
            back = np.zeros(0, np.float32)
        if self._final and ready >= self._n:
            back = np.concatenate([back, self._down.flush()])
        back = back[: self._received - self._out]
        out = self._held[: len(back)] + back
        self._held = self._held[len(back) :]
        self._out += len(back)
        # 32 kHz input the next block still reads: REACH frames of left context.
        keep = max(0, (self._encoded - REACH) * HOP - N_FFT // 2 - self._y0)
        if keep > 0:
            self._y, self._y0 = self._y[keep:], self._y0 + keep
        if self._final:
            rest = self._held  # a segment shorter than the resamplers' reach
            out = np.concatenate([out, rest])
            self._start()
        result: np.ndarray = out.astype(np.float32)
        return result
