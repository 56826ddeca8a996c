"""WORLD analysis, transformation and resynthesis: a reference vocoder, not the runtime's stage.

The expressive stage and voice adaptation run on PSOLA (``psola.py``,
``adapt.py``), which keeps the engine's own waveform. WORLD stays as an
independent way of moving a voice: tests build synthetic speakers of known
ground truth with it, and ``voxlive bench stages`` compares the two stages.
``pyworld`` is therefore a ``dev`` dependency, loaded lazily: importing this
module works without it, calling WORLD does not.

WORLD (Morise et al. 2016) splits speech into an F0 contour, a smooth spectral
envelope and aperiodicity. Reshaping those and resynthesizing moves a voice's
pitch level, range and contour, its formants (vocal-tract length), its spectral
tilt and its breathiness while keeping the words: in one pass. We use the
``pyworld`` binding.

F0 tracking is the trap here: with a wide search range WORLD's trackers read
the bundled voice 5-9 semitones too high (pYIN: ~98 Hz median; harvest 50-300 Hz:
~147 Hz), and resynthesis then moves the voice by that much before any intended
change. :func:`track_f0` uses YIN, which rarely errs by an octave, refined by
WORLD's stonemask.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np

from .pitch import FRAME_PERIOD_MS, yin_track
from .transform import VoiceTransform, contour_window, soft_limit

__all__ = [
    "Analysis",
    "StreamAdapter",
    "analyze",
    "apply",
    "pyworld",
    "synthesize",
    "track_f0",
]


@cache
def pyworld() -> ModuleType:
    """The compiled ``pyworld`` module.

    Loaded straight from its extension file: the package's ``__init__`` imports
    ``pkg_resources`` just to read its own version, and setuptools ≥ 81 no longer
    ships that module.

    Raises:
        ModuleNotFoundError: pyworld is not installed.
    """
    spec = importlib.util.find_spec("pyworld")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyworld is not installed (pip install -e .[dev])")
    folder = Path(next(iter(spec.submodule_search_locations)))
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = [
        p for p in folder.iterdir() if p.name.startswith("pyworld.") and p.name.endswith(suffixes)
    ]
    if not found:
        raise ModuleNotFoundError(f"pyworld's compiled module is missing in {folder}")
    loader = importlib.machinery.ExtensionFileLoader("pyworld", str(found[0]))
    module_spec = importlib.util.spec_from_file_location("pyworld", str(found[0]), loader=loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    return module


@dataclass(frozen=True, slots=True)
class Analysis:
    """WORLD parameters of one signal."""

    f0: np.ndarray
    """[frames] Hz, 0 where unvoiced."""
    sp: np.ndarray
    """[frames, bins] smooth power spectral envelope."""
    ap: np.ndarray
    """[frames, bins] aperiodicity (0 = periodic, 1 = noise)."""
    sample_rate: int


def track_f0(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 contour (Hz, 0 unvoiced) on WORLD's frame grid: YIN, refined by stonemask.

    Measured on the bundled voice, resynthesis from this contour keeps the pitch
    within ~0.5-1.8 semitones (YIN medians), where harvest's contour raised it by
    ~2.5 even in a range set around the YIN median, and by 5-9 with a wide range.
    It is also ~10x faster than harvest.
    """
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    f0 = yin_track(x64, sample_rate)
    t = np.arange(len(f0)) * FRAME_PERIOD_MS / 1000
    return np.asarray(pyworld().stonemask(x64, f0, t, sample_rate))


def analyze(x: np.ndarray, sample_rate: int, f0: np.ndarray | None = None) -> Analysis:
    """WORLD analysis; tracks F0 with :func:`track_f0` unless given.

    Raises:
        ValueError: empty or non-finite input.
    """
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    if len(x64) == 0 or not np.isfinite(x64).all():
        raise ValueError("analysis needs finite, non-empty audio")
    pw = pyworld()
    f0 = track_f0(x64, sample_rate) if f0 is None else np.ascontiguousarray(f0, np.float64)
    t = np.arange(len(f0)) * FRAME_PERIOD_MS / 1000.0
    sp = pw.cheaptrick(x64, f0, t, sample_rate)
    ap = pw.d4c(x64, f0, t, sample_rate)
    return Analysis(f0, sp, ap, sample_rate)


def apply(
    a: Analysis,
    tr: VoiceTransform,
    center_hz: float | None = None,
    contour_st: np.ndarray | None = None,
) -> Analysis:
    """Move pitch, formants, tilt and breathiness; returns a new analysis.

    Pitch-range scaling is centred on ``center_hz``, or on the signal's own median
    F0 when None (a whole utterance; pieces of a stream need a common centre).
    ``contour_st`` adds a per-frame pitch offset (semitones; phrase-end contours).
    ``gain_db`` is not applied here (it belongs after synthesis).
    """
    if not tr.needs_stage() and contour_st is None:
        return a
    f0 = _shift_f0(a.f0, tr, center_hz, contour_st)
    ap = a.ap
    if tr.breathiness:
        b = max(-0.9, min(0.9, tr.breathiness))
        ap = np.clip(a.ap, 1e-6, 1.0) ** (1.0 - b)
    return Analysis(f0, _reshape_envelope(a.sp, a.sample_rate, tr), ap, a.sample_rate)


def synthesize(a: Analysis, limit: bool = True) -> np.ndarray:
    """float32 waveform from WORLD parameters; peak-normalized into [-1, 1] if ``limit``.

    Pieces of a stream pass ``limit=False`` (a per-piece normalization would
    step the level between pieces) and use :func:`soft_limit` instead.
    """
    pw = pyworld()
    y = pw.synthesize(
        np.ascontiguousarray(a.f0),
        np.ascontiguousarray(a.sp),
        np.ascontiguousarray(a.ap),
        a.sample_rate,
        FRAME_PERIOD_MS,
    )
    peak = float(np.max(np.abs(y))) if len(y) and limit else 0.0
    if peak > 0.999:
        y = y * (0.999 / peak)
    out: np.ndarray = y.astype(np.float32)
    return out


def _shift_f0(
    f0: np.ndarray, tr: VoiceTransform, center_hz: float | None, contour_st: np.ndarray | None
) -> np.ndarray:
    voiced = f0 > 0
    if not voiced.any():
        return f0
    log_f0 = np.log(f0[voiced])
    center = float(np.median(log_f0)) if center_hz is None else float(np.log(center_hz))
    shift = np.full(len(log_f0), tr.f0_shift_st)
    if contour_st is not None:
        shift = shift + contour_st[voiced]
    moved = center + tr.f0_range * (log_f0 - center) + shift * np.log(2) / 12
    out = np.zeros_like(f0)
    out[voiced] = np.exp(moved)
    return out


def _reshape_envelope(sp: np.ndarray, sample_rate: int, tr: VoiceTransform) -> np.ndarray:
    """Frequency-scale the envelope (formants) and add a tilt, per frame."""
    bins = sp.shape[1]
    k = np.arange(bins, dtype=np.float64)
    src = np.clip(k / tr.formant_scale, 0, bins - 1)  # new bin k takes old bin k / scale
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, bins - 1)
    w = src - lo
    out = sp[:, lo] * (1 - w) + sp[:, hi] * w  # [frames, bins]
    if tr.tilt_db_per_octave:
        freqs = k * sample_rate / (2 * (bins - 1))
        octaves = np.log2(np.maximum(freqs, 500.0) / 500.0)
        out = out * 10 ** (tr.tilt_db_per_octave * octaves / 10)  # power spectrum: dB/10
    return np.maximum(out, 1e-16)


class StreamAdapter:
    """Apply a :class:`VoiceTransform` to audio arriving in chunks.

    WORLD works on whole signals, so each block is analysed with ``context_s``
    of real audio on both sides and resynthesized; consecutive blocks overlap
    by ``crossfade_s`` and are joined with a raised-cosine crossfade. Output
    lags input by ``context_s`` (the look-ahead, 60 ms: about one analysis window
    of cheaptrick/d4c at the voice's lowest pitch) plus the crossfade. Pitch-range
    scaling is centred on ``center_hz`` (the voice's median) so that every block moves alike, and
    phrase-end contours are placed by absolute sample position, so a block's
    boundaries never show in the pitch. A transform that only changes the
    level skips WORLD: the gain and the soft limiter apply with no look-ahead.
    """

    def __init__(
        self,
        transform: VoiceTransform,
        sample_rate: int,
        center_hz: float,
        context_s: float = 0.06,
        crossfade_s: float = 0.02,
    ) -> None:
        if center_hz <= 0:
            raise ValueError(f"center_hz must be positive, got {center_hz}")
        self.transform = transform
        self.sample_rate = sample_rate
        self.center_hz = center_hz
        self.world = transform.needs_stage()
        self.gain = float(10 ** (transform.gain_db / 20))
        self.context = int(context_s * sample_rate)
        self.fade = int(crossfade_s * sample_rate)
        self.buffer = np.zeros(0, np.float64)  # input not yet final in the output
        self.base = 0  # input index of buffer[0]
        self.emitted = 0  # output samples emitted
        self.tail = np.zeros(0, np.float32)  # last block's overlap, waiting to crossfade
        self.phrases: list[tuple[int, int]] = []  # contour windows [start, end) of input

    def phrase(self, start: int, end: int) -> None:
        """Speech of a phrase spans input samples ``[start, end)``: give it the end contour.

        Call before feeding the phrase's samples (e.g. when a sentence's first
        chunk, which carries its durations, arrives).
        """
        window = contour_window(self.transform, self.sample_rate, start, end)
        if window is not None:
            self.phrases.append(window)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; returns the adapted samples now final."""
        if not self.world:
            return self._level(np.asarray(chunk, np.float32))
        self.buffer = np.concatenate([self.buffer, np.asarray(chunk, np.float64)])
        ready = self.base + len(self.buffer) - self.context  # output final up to here
        return self._emit(ready, final=False)

    def flush(self) -> np.ndarray:
        """End of input: the rest."""
        if not self.world:
            return np.zeros(0, np.float32)
        return self._emit(self.base + len(self.buffer), final=True)

    def _level(self, y: np.ndarray) -> np.ndarray:
        return y if self.gain == 1.0 else soft_limit(y * np.float32(self.gain))

    def _emit(self, stop: int, final: bool) -> np.ndarray:
        # Emit as soon as a crossfade's worth of new audio is final: the engine's first
        # chunk (186 ms) must already give audio, or first audio waits a whole engine turn.
        if stop - self.emitted < (0 if final else 2 * self.fade):
            return np.zeros(0, np.float32)
        lo = max(self.base, self.emitted - self.context)
        hi = self.base + len(self.buffer)
        segment = self.buffer[lo - self.base : hi - self.base]
        y = self._transform(segment, lo)  # aligned with input [lo, hi)
        start = self.emitted - lo
        end = (stop - lo) if final else (stop - lo + self.fade)
        piece = y[start : min(end, len(y))]
        if len(self.tail):
            n = min(len(self.tail), len(piece))
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
            piece = piece.copy()
            piece[:n] = self.tail[:n] * (1 - ramp) + piece[:n] * ramp
        if final:
            out, self.tail = piece, np.zeros(0, np.float32)
        else:
            out, self.tail = piece[: len(piece) - self.fade], piece[len(piece) - self.fade :]
        self.emitted += len(out)
        keep_from = max(0, self.emitted - 2 * self.context - self.base)
        self.buffer, self.base = self.buffer[keep_from:], self.base + keep_from
        self.phrases = [p for p in self.phrases if p[1] > self.emitted - 2 * self.context]
        return self._level(out.astype(np.float32))

    def _transform(self, x: np.ndarray, at: int) -> np.ndarray:
        a = analyze(x, self.sample_rate)
        b = apply(a, self.transform, self.center_hz, self._contour(len(a.f0), at))
        y = synthesize(b, limit=False)
        if len(y) < len(x):
            y = np.pad(y, (0, len(x) - len(y)))
        y = y[: len(x)]
        # WORLD resynthesis is ~1-2.5 dB louder than its input (measured on the
        # bundled voice); loudness is the gain's job, so each block keeps its input's.
        rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y.astype(np.float64) ** 2))
        if rms_in > 1e-5 and rms_out > 1e-5:
            y = y * np.float32(np.clip(rms_in / rms_out, 0.5, 2.0))
        return y

    def _contour(self, n_frames: int, at: int) -> np.ndarray | None:
        """Per-frame pitch offsets (st) for frames of a block starting at input ``at``."""
        if not self.phrases:
            return None
        t = at + np.arange(n_frames) * (FRAME_PERIOD_MS / 1000 * self.sample_rate)
        out = np.zeros(n_frames)
        for lo, hi in self.phrases:
            inside = (t >= lo) & (t < hi)
            if inside.any():
                u = (t[inside] - lo) / (hi - lo)  # 0 → 1 over the window
                out[inside] += self.transform.end_contour_st * u * u
        return out if out.any() else None
