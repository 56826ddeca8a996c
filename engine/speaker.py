"""GE2E speaker encoder: a torch port of resemblyzer's ``VoiceEncoder``.

The weights are resemblyzer's ``pretrained.pt``; the package itself is never
imported (its ``__init__`` pulls in librosa and webrtcvad), only located with
``importlib.util.find_spec``, which does not execute it.

Pipeline, matching ``resemblyzer`` 0.1.4 step for step::

    wav (any rate) → resample to 16 kHz → normalize_volume(-30 dBFS, increase only)
        → partial_starts(rate=1.3, min_coverage=0.75), zero-pad the tail
        → power mel spectrogram (librosa defaults: Slaney mel, hann, centred,
          zero ``pad_mode`` as in librosa ≥ 0.10; older librosa reflected the
          edges, which changes only the first and last frame) → [partials, 160, 40]
        → LSTM 40→256 ×3 → linear → ReLU → L2 norm → mean of partials → L2 norm

Not ported: ``trim_long_silences``. It runs the webrtcvad C library, whose
fixed-point GMM decisions we cannot reproduce exactly. Callers that hold audio
with long pauses should trim them first. On the output of ``preprocess_wav`` (or
any clip it would not trim), ``embed`` equals ``VoiceEncoder.embed_utterance``
to float rounding (see ``tests/engine/test_speaker.py``). One nuance: resemblyzer
normalizes the volume before trimming, this port after (on what it is given).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch
from torch import nn

from .resample import resample

__all__ = [
    "EMBEDDING_SIZE",
    "N_MELS",
    "PARTIAL_FRAMES",
    "SAMPLE_RATE",
    "SpeakerEncoder",
    "cosine",
    "default_weights_path",
    "mel_filterbank",
    "normalize_volume",
    "partial_starts",
]

SAMPLE_RATE: Final = 16000
N_FFT: Final = 400  # 25 ms windows
HOP_LENGTH: Final = 160  # 10 ms hop
N_MELS: Final = 40
PARTIAL_FRAMES: Final = 160  # 1.6 s per partial utterance
HIDDEN_SIZE: Final = 256
EMBEDDING_SIZE: Final = 256
NUM_LAYERS: Final = 3
TARGET_DBFS: Final = -30.0
PARTIALS_PER_S: Final = 1.3
MIN_COVERAGE: Final = 0.75

Audio = np.ndarray | torch.Tensor


def default_weights_path() -> Path:
    """Where the installed ``resemblyzer`` keeps ``pretrained.pt`` (without importing it).

    Raises:
        ModuleNotFoundError: ``resemblyzer`` is not installed.
    """
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the GE2E weights ship in the 'resemblyzer' package; install it with "
            "'pip install resemblyzer --no-deps' (its dependencies are not needed)",
            name="resemblyzer",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's auditory toolbox scale (librosa ``htk=False``): linear below 1 kHz, log above."""
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = math.log(6.4) / 27.0
    safe = np.maximum(hz, 1000.0)  # keeps log() finite where the linear branch is taken
    return np.where(hz >= 1000.0, min_log_mel + np.log(safe / 1000.0) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, 1000.0 * np.exp(logstep * (mel - min_log_mel)), mel * f_sp)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr, n_fft, n_mels)`` with its defaults (Slaney scale and norm).

    Returns:
        float32 weights ``[n_mels, n_fft // 2 + 1]``.

    Raises:
        ValueError: a size is not positive.
    """
    if sample_rate <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ValueError(f"sizes must be positive, got {sample_rate=}, {n_fft=}, {n_mels=}")
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)  # [f]
    top = _hz_to_mel(np.array(sample_rate / 2))
    edges_hz = _mel_to_hz(np.linspace(0.0, top, n_mels + 2))  # [m + 2]
    ramps = edges_hz[:, None] - fft_hz[None, :]  # [m + 2, f]
    widths = np.diff(edges_hz)  # [m + 1]
    lower = -ramps[:-2] / widths[:-1, None]  # [m, f]
    upper = ramps[2:] / widths[1:, None]  # [m, f]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # Slaney: equal area per band
    return weights.astype(np.float32)


def partial_starts(
    n_samples: int, rate: float = PARTIALS_PER_S, min_coverage: float = MIN_COVERAGE
) -> list[int]:
    """First mel frame of each 160-frame partial, as ``VoiceEncoder.compute_partial_slices``.

    Partial ``k`` covers frames ``[s, s + 160)`` and samples ``[s * 160, (s + 160) * 160)``;
    the last one is dropped when under ``min_coverage`` of it is real audio, unless it
    is the only one (a short clip is zero-padded to one partial).

    Raises:
        ValueError: ``n_samples`` is negative, ``min_coverage`` is outside (0, 1], or
            ``rate`` spaces partials by zero frames or by more than one partial.
    """
    if n_samples < 0:
        raise ValueError(f"n_samples must be ≥ 0, got {n_samples}")
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    n_frames = math.ceil((n_samples + 1) / HOP_LENGTH)
    frame_step = round((SAMPLE_RATE / rate) / HOP_LENGTH)
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate} spaces partials by {frame_step} frames")
    steps = max(1, n_frames - PARTIAL_FRAMES + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    coverage = (n_samples - starts[-1] * HOP_LENGTH) / (PARTIAL_FRAMES * HOP_LENGTH)
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


def normalize_volume(wav: torch.Tensor, target_dbfs: float = TARGET_DBFS) -> torch.Tensor:
    """Raise a quiet clip to ``target_dbfs`` RMS; louder clips pass unchanged.

    Raises:
        ValueError: the clip is empty or digitally silent (resemblyzer returns NaN).
    """
    rms = wav.double().square().mean().sqrt().item() if wav.numel() else 0.0
    if rms == 0.0:
        raise ValueError("audio is empty or silent: no speaker to embed")
    dbfs = 20.0 * math.log10(rms)
    if dbfs >= target_dbfs:
        return wav
    louder: torch.Tensor = wav * 10.0 ** ((target_dbfs - dbfs) / 20.0)
    return louder


def cosine(a: Audio, b: Audio) -> float:
    """Cosine similarity of two embeddings.

    Raises:
        ValueError: the shapes differ or either vector is zero.
    """
    x = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, np.float64).ravel()
    y = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"embeddings differ in shape: {x.shape} vs {y.shape}")
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    if norm == 0.0:
        raise ValueError("cosine of a zero vector is undefined")
    return float(x @ y) / norm


class SpeakerEncoder(nn.Module):
    """GE2E d-vector network on one device. Build it with :meth:`load`."""

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN_SIZE, NUM_LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_SIZE)
        self.relu = nn.ReLU()
        # Not weights: rebuilt here, moved by .to(device), kept out of the state dict.
        window = torch.hann_window(N_FFT, periodic=True)  # scipy "hann", fftbins=True
        basis = torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS))
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_basis", basis, persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.linear.weight.device

    @classmethod
    def load(cls, path: Path | None = None, device: str | torch.device = "cpu") -> SpeakerEncoder:
        """Read resemblyzer's checkpoint (default: the installed ``pretrained.pt``).

        Args:
            path: a ``.pt`` holding ``{"model_state": {"lstm.…", "linear.…", …}}``.
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …

        Raises:
            ModuleNotFoundError: no ``path`` and ``resemblyzer`` is not installed.
            FileNotFoundError: the weights file does not exist.
            ValueError: the file does not hold weights of this architecture.
            RuntimeError: the device is not available.
        """
        path = default_weights_path() if path is None else Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"GE2E weights not found at {path}")
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a bad file
            raise ValueError(f"{path} is not a torch checkpoint") from exc
        model = cls()
        state = _network_state(checkpoint, set(model.state_dict()))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # shape mismatch
            raise ValueError(f"{path} does not fit the GE2E architecture") from exc
        return model.to(dev).eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`embed_partials`."""
        return self.embed_partials(mels)

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Power mel spectrogram ``[t] → [1 + t // 160, 40]`` of 16 kHz audio (not log-mel).

        Equals ``librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400,
        hop_length=160, n_mels=40).T``.

        Raises:
            ValueError: ``wav`` is not a non-empty 1-D tensor.
        """
        if wav.ndim != 1 or wav.numel() == 0:
            raise ValueError(f"expected non-empty 1-D audio, got shape {tuple(wav.shape)}")
        spec = torch.stft(
            wav.to(self.window),
            N_FFT,
            HOP_LENGTH,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # [f, frames]
        power = spec.real.square() + spec.imag.square()
        return (self.mel_basis @ power).T  # [frames, mels]

    def embed_partials(self, mels: torch.Tensor) -> torch.Tensor:
        """d-vectors of partial utterances ``[b, 160, 40] → [b, 256]``, each L2-normalized.

        Raises:
            ValueError: ``mels`` is not ``[b, frames, 40]``.
        """
        if mels.ndim != 3 or mels.shape[-1] != N_MELS:
            raise ValueError(f"expected mels [b, frames, {N_MELS}], got {tuple(mels.shape)}")
        _, (hidden, _) = self.lstm(mels)  # hidden: [layers, b, hidden]
        raw: torch.Tensor = self.relu(self.linear(hidden[-1]))  # [b, emb]
        norm: torch.Tensor = torch.linalg.vector_norm(raw, dim=1, keepdim=True)  # [b, 1]
        return raw / norm

    def embed(self, wav: Audio, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Speaker embedding of one clip whose long silences are already trimmed.

        As in resemblyzer, a clip under one partial (1.6 s) is zero-padded to one:
        any non-empty, non-silent clip gets an embedding, however short.

        Returns:
            float32 ``[256]``, L2-normalized.

        Raises:
            ValueError: the audio is not 1-D, is empty or silent, holds NaN/inf, or
                ``sample_rate`` is not positive.
        """
        row: np.ndarray = self.embed_batch([wav], sample_rate)[0]
        return row

    def embed_batch(self, wavs: Sequence[Audio], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Embeddings of many clips; all their partials run through the LSTM as one batch.

        Returns:
            float32 ``[n, 256]``, each row L2-normalized (``[0, 256]`` for no clips).

        Raises:
            ValueError: as :meth:`embed`, for the first bad clip.
        """
        if not wavs:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        with torch.inference_mode():
            parts = [self._partial_mels(self._prepare(w, sample_rate)) for w in wavs]
            partials = self.embed_partials(torch.cat(parts))  # [sum n_k, emb]
            groups = torch.split(partials, [len(p) for p in parts])
            raw = torch.stack([g.mean(dim=0) for g in groups])  # [n, emb]
            out = raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True)
        result: np.ndarray = out.float().cpu().numpy()
        return result

    def _prepare(self, wav: Audio, sample_rate: int) -> torch.Tensor:
        """Checked, 16 kHz, volume-normalized float32 audio on this device."""
        if wav.ndim != 1 or len(wav) == 0:
            raise ValueError(f"expected non-empty 1-D audio, got shape {tuple(wav.shape)}")
        if sample_rate != SAMPLE_RATE:
            host = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else wav
            wav = resample(np.asarray(host, np.float32), sample_rate, SAMPLE_RATE)
        if isinstance(wav, np.ndarray) and not wav.flags.writeable:
            wav = wav.copy()  # torch refuses to wrap read-only memory
        x = torch.as_tensor(wav).to(self.device, torch.float32)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("audio holds NaN or infinite samples")
        return normalize_volume(x)

    def _partial_mels(self, wav: torch.Tensor) -> torch.Tensor:
        """``[t] → [partials, 160, 40]``, zero-padding the tail as resemblyzer does."""
        starts = partial_starts(len(wav))
        stop = (starts[-1] + PARTIAL_FRAMES) * HOP_LENGTH
        if stop >= len(wav):
            wav = nn.functional.pad(wav, (0, stop - len(wav)))  # [stop]
        mel = self.mel(wav)  # [frames, mels]
        return torch.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])  # [n, 160, mels]


def _network_state(checkpoint: object, wanted: set[str]) -> dict[str, torch.Tensor]:
    """The LSTM and linear tensors of a resemblyzer checkpoint (drops the GE2E loss scalars).

    Raises:
        ValueError: the checkpoint has no ``model_state`` or misses a tensor.
    """
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError("not a resemblyzer checkpoint: no 'model_state' dict")
    missing = wanted - set(state)
    if missing:
        raise ValueError(f"checkpoint misses {sorted(missing)}")
    return {k: v for k, v in state.items() if k in wanted}
