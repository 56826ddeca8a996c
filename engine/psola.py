"""Pitch-synchronous overlap-add (TD-PSOLA): the expressive stage without a vocoder.

WORLD re-estimates the whole spectrum and resynthesizes it, which costs quality
even when nothing is changed. PSOLA keeps the engine's own waveform: voiced
speech is cut into two-period grains centred on pitch marks (one per glottal
cycle), and the grains are laid down again at the new pitch's spacing. Time
stays where it was (a grain is repeated or skipped as needed), so the output is
as long as the input and timing marks stay valid. Unvoiced speech and silence
pass through unchanged.

Realized from a :class:`~.transform.VoiceTransform`:

- pitch level, range (around ``center_hz``) and phrase-end contours: the grain
  spacing;
- formant scale: each grain is resampled (compressed in time to raise formants)
  before it is laid down, its spacing (the pitch) unchanged;
- breathiness (> 0): high-passed noise added to voiced grains, in proportion to
  each grain's level; < 0 is not realized (the engine's voice is clean already);
- tilt: a first-order shelf (half its gain at 2 kHz, full at high frequencies);
- gain: a level change, then :func:`~.transform.soft_limit`.

Pitch marks come from YIN (pure numpy, its octave errors folded back toward
``center_hz``: the bundled voice is low and its second harmonic strong), then
each mark is placed one period after the previous one where the waveform best
matches the previous period (normalized cross-correlation), so marks sit at
the same point of every cycle.

Everything runs as one sequential pass with absolute sample positions: YIN
frames, marks, synthesis marks and grains are decided as soon as the input
they depend on has arrived, never revised, so feeding the signal in chunks
gives the same samples as feeding it whole.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from .dsp import cubic, noise, one_pole, shelf
from .transform import VoiceTransform, contour_window, soft_limit

__all__ = ["PsolaAdapter"]

_WINDOW_S = 0.03
"""YIN analysis window (short: this voice glides fast)."""
_HOP_S = 0.005
_SEARCH = 0.2
"""A mark is searched within ± this fraction of a period around its prediction."""
_MIN_MATCH = 0.5
"""A voiced region ends where the next period matches the last one less than this."""
_DRIFT = 0.06
"""A mark may move this fraction of a period from the best match, toward the energy peak."""
_QUIET = 1e-6
"""Frames below this mean power (−60 dBFS) are never voiced."""
_BREATH_LEVEL = 0.05
"""Noise RMS, relative to a grain's RMS, at breathiness 1."""


@dataclass(slots=True)
class _Region:
    """A voiced stretch: its pitch marks (absolute samples), growing while open."""

    marks: list[int] = field(default_factory=list)
    open: bool = True


class PsolaAdapter:
    """Apply a :class:`VoiceTransform` to audio arriving in chunks, by TD-PSOLA.

    The interface of :class:`~.expression.Stage`: ``phrase`` before feeding a
    phrase's samples, ``process`` per chunk, ``flush`` at the end; the output is
    exactly as long as the input. Output lags input by a few pitch periods (the
    look-ahead the marks and grains need) and chunked input gives the samples
    whole input gives. A transform that only changes
    the level applies the gain and the limiter with no look-ahead.

    Raises:
        ValueError: ``center_hz`` is not positive.
    """

    def __init__(self, transform: VoiceTransform, sample_rate: int, center_hz: float) -> None:
        if center_hz <= 0:
            raise ValueError(f"center_hz must be positive, got {center_hz}")
        self.transform = transform
        self.sample_rate = sample_rate
        self.center_hz = center_hz
        self.active = transform.needs_stage()
        self.gain = float(10 ** (transform.gain_db / 20))
        self.alpha = float(transform.formant_scale)
        self.breath = max(0.0, min(0.9, transform.breathiness)) * _BREATH_LEVEL
        sr = sample_rate
        self.hop = max(1, round(_HOP_S * sr))
        self.half = int(_WINDOW_S * sr) // 2
        self.width = 2 * self.half
        fmin, fmax = max(40.0, center_hz / 2**1.25), min(600.0, center_hz * 2**1.6)
        # YIN runs at half the rate: pitch needs no more, and it costs a quarter.
        self.tau_min = int(sr / 2 / fmax)
        self.tau_max = min(int(sr / 2 / fmin), self.half - 2)
        self.unvoiced_step = self.hop  # grain spacing where nothing moves
        self.smooth = max(1, round(0.0005 * sr))  # half-width of the energy smoothing
        # Input: x[i] is input sample x0 + i; zeros stand before the stream's start.
        self.pre = self.width + 8
        self.x = np.zeros(self.pre, np.float64)
        self.x0 = -self.pre
        self.received = 0
        self.final = False
        # YIN frames: frame i is centred on input sample i * hop.
        self.f0 = np.zeros(0, np.float64)
        self.f0_base = 0
        self.frames_done = 0
        # Pitch marks.
        self.regions: list[_Region] = []
        self.search_frame = 0  # a region starting later starts at this frame or after
        # Synthesis marks: grain j spans [s[j-1], s[j+1]), centred on s[j].
        self.s_prev = -self.unvoiced_step
        self.s_cur = 0
        self.s_float = 0.0
        self.acc = np.zeros(0, np.float64)  # overlap-add of output samples from `emitted`
        self.emitted = 0
        self.phrases: list[tuple[int, int]] = []
        # Post-filters (sequential, so chunking does not show).
        self.shelf = shelf(transform.tilt_db_per_octave, sr)
        self.shelf_state = (0.0, 0.0)  # last input, last output
        self.noise_prev = 0.0

    # -- public interface (as StreamAdapter) ----------------------------------------------

    def phrase(self, start: int, end: int) -> None:
        """Speech of a phrase spans input samples ``[start, end)``: give it the end contour.

        Call before feeding the phrase's samples.
        """
        window = contour_window(self.transform, self.sample_rate, start, end)
        if window is not None:
            self.phrases.append(window)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; returns the adapted samples now final."""
        if not self.active:
            return self._level(np.asarray(chunk, np.float32))
        x = np.asarray(chunk, np.float64)
        self.x = np.concatenate([self.x, x])
        self.received += len(x)
        return self._advance()

    def flush(self) -> np.ndarray:
        """End of input: the rest."""
        if not self.active:
            return np.zeros(0, np.float32)
        self.final = True
        # Zeros after the end, enough for any window, search or grain to read.
        self.x = np.concatenate([self.x, np.zeros(4 * self.width + 16)])
        return self._advance()

    # -- the pass ------------------------------------------------------------------------

    def _advance(self) -> np.ndarray:
        self._frames()
        self._marks()
        ready = self._grains()
        if self.final:
            ready = self.received
        out = self.acc[: ready - self.emitted]
        if len(out) < ready - self.emitted:
            out = np.pad(out, (0, ready - self.emitted - len(out)))
        self.acc = self.acc[ready - self.emitted :]
        self.emitted = ready
        self._trim()
        return self._post(out)

    def _frames(self) -> None:
        """YIN on every frame whose window has arrived."""
        if self.final:
            stop = (self.received - 1) // self.hop + 1 if self.received else 0
        else:
            stop = max(0, (self.received - self.half) // self.hop + 1)
        if stop <= self.frames_done:
            return
        f0 = self._yin(self.frames_done, stop)
        keep = max(0, self.frames_done - self.f0_base - 64)  # a little history for lookups
        self.f0 = np.concatenate([self.f0[keep:], f0])
        self.f0_base += keep
        self.frames_done = stop

    def _yin(self, first: int, stop: int) -> np.ndarray:
        """F0 (Hz, 0 unvoiced) of frames ``first..stop-1`` (de Cheveigné & Kawahara 2002)."""
        w = self.half  # samples at half rate
        starts = np.arange(first, stop) * self.hop - self.half - self.x0
        idx = starts[:, None] + 2 * np.arange(w)[None, :]
        frames = (0.5 * (self.x[idx] + self.x[idx + 1])).astype(np.float32)  # [n, w]
        n = len(frames)
        power = (frames**2).mean(1)
        n_fft = 1 << int(np.ceil(np.log2(2 * w)))
        spec = np.fft.rfft(frames, n_fft)
        r = np.fft.irfft(spec * np.conj(spec), n_fft)[:, : self.tau_max + 1]  # autocorrelation
        cum = np.concatenate([np.zeros((n, 1), np.float32), np.cumsum(frames**2, axis=1)], 1)
        taus = np.arange(self.tau_max + 1)
        d = cum[:, w - taus] + (cum[:, -1:] - cum[:, taus]) - 2 * r  # difference function
        cmnd = d[:, 1:] * taus[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
        search = cmnd[:, self.tau_min - 1 :]
        rows = np.arange(n)
        below = search < 0.15
        pick = np.where(below.any(1), below.argmax(1), search.argmin(1))
        for _ in range(8):  # down to the local minimum after the first dip
            nxt = np.minimum(pick + 1, search.shape[1] - 1)
            pick = np.where(search[rows, nxt] < search[rows, pick], nxt, pick)
        voiced = (search[rows, pick] < 0.45) & (power > _QUIET)
        hz = self.sample_rate / 2 / (pick + self.tau_min)
        octave = np.log2(hz / self.center_hz)
        hz = hz / 2.0 ** np.where(np.abs(octave) > 0.75, np.round(octave), 0.0)
        return np.where(voiced, hz, 0.0)

    def _frame_f0(self, sample: int) -> float:
        i = min(max(0, round(sample / self.hop)), self.frames_done - 1)
        return float(self.f0[i - self.f0_base])

    def _marks(self) -> None:
        """Place pitch marks as far as the input allows."""
        sr = self.sample_rate
        while True:
            region = self.regions[-1] if self.regions and self.regions[-1].open else None
            if region is None:
                # Onset: three voiced frames in a row.
                lo, hi = self.search_frame, self.frames_done - 2
                if hi <= lo:
                    return
                v = self.f0[lo - self.f0_base : self.frames_done - self.f0_base] > 0
                run = v[:-2] & v[1:-1] & v[2:]
                if not run.any():
                    self.search_frame = hi
                    return
                f = lo + int(run.argmax())
                period = sr / float(self.f0[f - self.f0_base])
                t0 = f * self.hop
                end = t0 + int(period)
                if end + 2 * int(period) > self._available():
                    self.search_frame = f
                    return
                self.regions.append(_Region([self._peak(t0, end)]))
                continue
            m = region.marks[-1]
            hz = self._frame_f0(m) if self.frames_done * self.hop > m + self.half else -1.0
            if hz < 0:
                return  # its frame has not arrived
            last = region.marks[-1] - region.marks[-2] if len(region.marks) >= 2 else 0
            if last > 0 and not (hz > 0 and abs(math.log(sr / hz / last)) < 0.2):
                period = float(last)  # the tracker jumped: keep the marks' own period
            else:
                period = sr / hz if hz > 0 else 0.0
            nxt = self._next_mark(m, period) if period > 0 else None
            if nxt == -1:
                return  # wait for input
            if nxt is None or nxt <= m:  # no further period (marks only move forward)
                region.open = False
                self.search_frame = max(self.search_frame, m // self.hop + 1)
                continue
            region.marks.append(nxt)

    def _next_mark(self, m: int, period: float) -> int | None:
        """The next mark after ``m``; None: the voicing ends; -1: more input needed."""
        half = max(2, int(period / 2))
        lo = m + int(period * (1 - _SEARCH))
        hi = m + int(period * (1 + _SEARCH)) + 1
        if hi + half > self._available():
            return None if self.final else -1
        template = self.x[m - half - self.x0 : m + half - self.x0]
        seg = self.x[lo - half - self.x0 : hi + half - 1 - self.x0]
        dots = np.correlate(seg, template, "valid")  # [candidates]
        cum = np.concatenate([[0.0], np.cumsum(seg**2)])
        energy = (cum[2 * half :] - cum[: len(cum) - 2 * half]) * float(np.sum(template * template))
        match = dots / np.sqrt(np.maximum(energy, 1e-20))
        offset = (np.arange(lo, hi) - (m + period)) / (period * _SEARCH)
        score = match * (1 - 0.1 * offset**2)  # ties go to the predicted spacing
        best = int(score.argmax())
        if match[best] < _MIN_MATCH:
            return None
        # Drift toward the cycle's energy peak (the excitation), a little per period:
        # a grain centred between two excitations smears both when it is moved.
        reach = max(1, int(period * _DRIFT))
        return self._peak(lo + best - reach, lo + best + reach + 1)

    def _peak(self, start: int, stop: int) -> int:
        """Where the short-term energy peaks in input ``[start, stop)``."""
        k = self.smooth
        seg = self.x[start - k - self.x0 : stop + k - self.x0] ** 2
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        energy = cum[2 * k + 1 :] - cum[: len(cum) - 2 * k - 1]  # [stop - start]
        return start + int(energy.argmax())

    def _available(self) -> int:
        """Input samples that may be read (all, padded with zeros, once flushed)."""
        return self.x0 + len(self.x) if self.final else self.received

    def _frontier(self) -> float:
        """No pitch mark not yet placed can lie before this sample."""
        if self.final and self._marks_done():
            return math.inf
        if self.regions and self.regions[-1].open:
            return float(self.regions[-1].marks[-1] + 1)
        return float(self.search_frame * self.hop)

    def _marks_done(self) -> bool:
        return not (self.regions and self.regions[-1].open)

    def _locate(self, s: int) -> tuple[int, float] | None:
        """The grain at synthesis mark ``s``: (source mark, period) where voiced,
        (``s`` itself, 0) where not, or None until the marks around ``s`` are known."""
        for region in reversed(self.regions):
            marks = region.marks
            if s > marks[-1]:
                if region.open:
                    return None
                break
            if s < marks[0]:
                continue
            k = bisect_left(marks, s)  # marks[k-1] < s <= marks[k]
            if k > 0 and s - marks[k - 1] < marks[k] - s:
                k -= 1
            if k + 1 < len(marks):
                return marks[k], float(marks[k + 1] - marks[k])
            if region.open:
                return None
            if k > 0:
                return marks[k], float(marks[k] - marks[k - 1])
            break
        return (s, 0.0) if s < self._frontier() else None

    def _snap(self, after: int, until: float) -> int:
        """Where a synthesis mark in ``(after, until]`` goes, or -1: the first mark of a
        region starting there, else the last mark of a closed region ending there."""
        end = -1
        for region in self.regions:
            marks = region.marks
            if len(marks) > 1 and after < marks[0] <= until:
                return marks[0]
            if len(marks) > 1 and not region.open and after < marks[-1] <= until:
                end = marks[-1]
        return end

    def _ratio(self, s: int, period: float) -> float:
        """Pitch ratio (new F0 / old) of the grain at ``s``."""
        tr = self.transform
        st = tr.f0_shift_st
        for lo, hi in self.phrases:
            if lo <= s < hi:
                u = (s - lo) / (hi - lo)
                st += tr.end_contour_st * u * u
        ratio = 2 ** (st / 12)
        if tr.f0_range != 1.0:
            ratio *= (self.sample_rate / period / self.center_hz) ** (tr.f0_range - 1)
        return float(ratio)

    def _grains(self) -> int:
        """Decide synthesis marks and overlap-add their grains; returns the final output end.

        Where nothing moves (unvoiced), grains are read from where they are laid down,
        with raised-cosine windows that sum to one: the input comes out unchanged. A
        voiced region's first synthesis mark is its first pitch mark, so a ratio of one
        reads every voiced grain from where it is laid down too, and its last synthesis
        mark is its last pitch mark, so the unvoiced grains after it join in phase.
        """
        sp, sc = self.s_prev, self.s_cur
        grains: list[tuple[int, int, int, int, float, bool]] = []
        limit = self._available()
        step = self.unvoiced_step
        while sc < self.received:
            found = self._locate(sc)
            if found is None:
                break
            source, period = found
            voiced = period > 0
            ratio = self._ratio(sc, period) if voiced else 1.0
            s_next = self.s_float + period / ratio if voiced else float(sc + step)
            if s_next + step >= self._frontier():
                break  # a region might start before it
            snap = self._snap(sc, s_next + step / 2)
            if snap >= 0:
                s_next = float(snap)
            sn = round(s_next)
            if source + self.alpha * (sn - sc) + 3 >= limit:
                break
            grains.append((sp, sc, sn, source, ratio**-0.5, voiced))
            sp, sc, self.s_float = sc, sn, s_next
        self.s_prev, self.s_cur = sp, sc
        if grains:
            self._overlap_add(grains)
        return max(self.emitted, min(sp, self.received))

    def _overlap_add(self, grains: list[tuple[int, int, int, int, float, bool]]) -> None:
        g = np.array([g[:4] for g in grains], np.int64)  # [j, (prev, centre, next, source)]
        amp = np.array([g[4] for g in grains])
        voiced = np.array([g[5] for g in grains])
        prev, centre, nxt, source = g.T
        spans = nxt - prev
        j = np.repeat(np.arange(len(g)), spans)  # ragged: grain of each output sample
        n = prev[j] + np.arange(len(j)) - np.repeat(np.cumsum(spans) - spans, spans)
        rel = (n - centre[j]).astype(np.float64)
        width = np.where(rel < 0, np.maximum(centre - prev, 1)[j], np.maximum(nxt - centre, 1)[j])
        win = 0.5 + 0.5 * np.cos(np.pi * rel / width)
        if self.alpha == 1.0:
            values = self.x[source[j] + rel.astype(np.int64) - self.x0]
        else:
            values = cubic(self.x, source[j] + self.alpha * rel - self.x0)
        values = values * win * amp[j]
        if self.breath > 0 and voiced.any():
            power = np.bincount(j, values**2, len(g)) / np.maximum(np.bincount(j, win, len(g)), 1)
            scale = np.sqrt(power) * self.breath * voiced
            values = values + noise(n) * win * scale[j]
        end = int(nxt.max())
        if end - self.emitted > len(self.acc):
            self.acc = np.pad(self.acc, (0, end - self.emitted - len(self.acc)))
        idx = n - self.emitted
        keep = idx >= 0  # before the stream's start
        self.acc += np.bincount(idx[keep], values[keep], minlength=len(self.acc))

    def _trim(self) -> None:
        """Drop input, frames and marks nothing will read again."""
        oldest = min(self.emitted, self.s_prev, self.search_frame * self.hop)
        for region in self.regions:
            if region.open or region.marks[-1] >= oldest:
                oldest = min(oldest, region.marks[0])
                break
        self.regions = [r for r in self.regions if r.open or r.marks[-1] >= self.s_prev - 1]
        cut = oldest - 2 * self.width - 8 - self.x0
        if cut > 0:
            self.x = self.x[cut:]
            self.x0 += cut

    # -- after the grains ------------------------------------------------------------------

    def _post(self, y: np.ndarray) -> np.ndarray:
        if self.shelf is not None and len(y):
            y = self._shelve(y)
        return self._level(y.astype(np.float32))

    def _shelve(self, x: np.ndarray) -> np.ndarray:
        assert self.shelf is not None
        b0, b1, a1 = self.shelf
        x_last, y_last = self.shelf_state
        v = b0 * x + b1 * np.concatenate([[x_last], x[:-1]])
        y = one_pole(v, -a1, y_last)
        self.shelf_state = (float(x[-1]), float(y[-1]))
        return y

    def _level(self, y: np.ndarray) -> np.ndarray:
        return y if self.gain == 1.0 else soft_limit(y * np.float32(self.gain))
