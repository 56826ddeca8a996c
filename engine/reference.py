"""Decoding and vetting a user's reference voice clip (step one of zero-shot registration).

:func:`decode_reference` turns the bytes a client uploaded into a short, clean, mono
clip, or refuses them with a :class:`ReferenceAudioError` whose ``code`` tells the client
what to fix. Every limit is checked as early as the data allows:

1. size of the upload (before any parsing);
2. channels, sample rate and declared duration from the header (before decoding);
   for RIFF/WAVE we also read the ``data`` chunk size ourselves, because libsndfile
   silently clamps a lying size to the file's length;
3. decoded duration, block by block: soundfile already stops at the frame count the
   header gave, and this second guard keeps it so should that ever change;
4. completeness: a WAV holding less than its ``data`` chunk declares, or a stream that
   decodes well short of its declared length (a cut-off MP3), is ``corrupt_audio``.

Resampling feeds each block to :class:`engine.resample.StreamResampler`, which gives
exactly the samples of the one-shot :func:`engine.resample.resample` without holding
the whole clip at the source rate.

Cost: pure, single-threaded, no disk writes. Memory is bounded by the limits, not
by the header: one decode block (65536 frames, all channels), the resampler's working
arrays for it (a few tens of MB at 384 kHz), and the mono clip at the asked rate with
its float64 frame analysis (~24 bytes per output sample: ~230 MB for 600 s at 16 kHz).
Time is linear in decoded seconds and dominated by resampling, whose cost grows with
the source rate (figures, including the worst case the default limits allow:
``docs/performance.md``). Hostile headers are refused before any decoding. The server
must run this off the event loop with bounded concurrency (or lower
``max_decoded_seconds``).
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import soundfile as sf

from .resample import StreamResampler

__all__ = [
    "ACCEPTED_FORMATS",
    "Reference",
    "ReferenceAudioError",
    "ReferenceAudioErrorCode",
    "ReferenceLimits",
    "decode_reference",
]

ReferenceAudioErrorCode = Literal[
    "too_large",
    "unsupported_format",
    "corrupt_audio",
    "too_long_declared",
    "too_short",
    "silent",
    "invalid_audio",
    "too_many_channels",
    "bad_sample_rate",
]
"""Why a clip was refused: the engine's own codes (the server maps them onto the
wire's in ``server/errors.py``)."""

ACCEPTED_FORMATS: Final = frozenset({"WAV", "WAVEX", "RF64", "FLAC", "OGG", "MP3", "AIFF"})
"""libsndfile major formats we decode; its exotic ones (PAF, SD2, MAT5, ...) are refused."""

# Decode granularity (frames): keeps the resampler's working arrays ~13 MB each
# at 384 kHz, and the decoder overshoots a limit by at most this much.
_BLOCK_FRAMES: Final = 65536
_CLIP_LEVEL: Final = 0.999
_FRAME_S: Final = 0.030  # analysis frame for the speech/silence decision
_LOUD_PERCENTILE: Final = 95.0  # "the clip's loud frames"
_QUIET_FRACTION: Final = 0.10  # "the quietest frames", the noise estimate
_BELOW_LOUD_DB: Final = 40.0  # frames this far under the loud level are silence
_FLOOR_DB: Final = -65.0  # frames under this mean-square level (dBFS) are silence
_ABOVE_NOISE_DB: Final = 6.0  # ... and so are frames within this of the noise level,
_MIN_CONTRAST_DB: Final = 10.0  # unless that would put the threshold this close to loud
_NOISE_FLOOR: Final = 1e-10  # mean-square floor (-100 dBFS, under 16-bit dither) for SNR
_MAX_PAUSE_S: Final = 0.3  # pauses up to this long are kept whole
_JOIN_PAUSE_S: Final = 0.1  # longer ones are cut down to this
_TARGET_RMS_DBFS: Final = -23.0
_PEAK_LIMIT: Final = 10.0 ** (-1.0 / 20.0)  # -1 dBFS: normalisation never clips
_TRUNCATION_TOLERANCE: Final = 0.05  # MP3 frame counts are estimates
_RIFF_UNKNOWN_SIZE: Final = 0xFFFFFFFF  # size written by streaming WAV writers (ffmpeg pipes)
# libsndfile's public error numbers (sndfile.h) that mean "not a format we read".
_SF_ERR_UNRECOGNISED_FORMAT: Final = 1
_SF_ERR_UNSUPPORTED_ENCODING: Final = 4


class ReferenceAudioError(ValueError):  # shadows the builtin (weakref) name: import it qualified
    """A reference clip was refused; ``code`` says why (one of :data:`ReferenceAudioErrorCode`).

    The message is safe to show the user: it names measured values and limits only.
    """

    def __init__(self, code: ReferenceAudioErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ReferenceAudioErrorCode = code


@dataclass(frozen=True, slots=True)
class ReferenceLimits:
    """What a reference clip may be.

    Raises:
        ValueError: a limit is not positive or a range is empty.
    """

    max_bytes: int = 10 * 1024 * 1024
    """Largest upload, in bytes."""
    max_decoded_seconds: float = 600.0
    """Longest audio we agree to decode, declared by the header or found while decoding."""
    max_channels: int = 8
    min_rate: int = 8000
    """Lowest source sample rate, Hz."""
    max_rate: int = 384000
    """Highest source sample rate, Hz."""
    min_speech_s: float = 3.0
    """Least usable speech (after trimming silences), seconds."""
    max_speech_s: float = 30.0
    """Longest clip returned; longer speech is cut to its best window, seconds."""

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_channels, self.min_rate) <= 0:
            raise ValueError("max_bytes, max_channels and min_rate must be positive")
        if not 0.0 < self.min_speech_s <= self.max_speech_s <= self.max_decoded_seconds:
            raise ValueError("need 0 < min_speech_s <= max_speech_s <= max_decoded_seconds")
        if self.min_rate > self.max_rate:
            raise ValueError(f"min_rate {self.min_rate} exceeds max_rate {self.max_rate}")


@dataclass(frozen=True, slots=True)
class Reference:
    """A vetted reference clip, ready for speaker embedding or prompting."""

    audio: np.ndarray
    """Mono float32 at ``sample_rate``: silences trimmed, at most ``max_speech_s``, RMS
    normalised to -23 dBFS (less if that would push a peak over -1 dBFS). Read-only."""
    sample_rate: int
    """The rate asked for, Hz."""
    speech_s: float
    """Usable speech, seconds: the length of ``audio`` (short pauses included)."""
    snr_db: float
    """Mean energy of the speech frames over that of the quietest 10 % of frames, dB.
    Reads low for a clip without pauses, whose quietest frames are speech."""
    clipped_fraction: float
    """Fraction of source samples (all channels) at ``|x| >= 0.999``."""
    source_rate: int
    source_channels: int
    source_format: str
    """libsndfile's major format name: ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``, ..."""

    def summary(self) -> dict[str, float | int | str]:
        """What the client is told about its clip (rounded for display)."""
        return {
            "usable_s": round(self.speech_s, 2),
            "snr_db": round(self.snr_db, 1),
            "clipping": round(self.clipped_fraction, 5),
            "sample_rate": self.sample_rate,
            "source_rate": self.source_rate,
            "source_channels": self.source_channels,
            "source_format": self.source_format,
        }


@dataclass(frozen=True, slots=True)
class _Decoded:
    audio: np.ndarray  # mono float32 at the asked rate
    clipped_fraction: float


def decode_reference(
    data: bytes, sample_rate: int = 16000, limits: ReferenceLimits = ReferenceLimits()
) -> Reference:
    """Decode, check, trim and normalise an uploaded reference clip.

    Silences longer than 0.3 s are cut down to 0.1 s (shorter pauses stay whole), and
    leading and trailing silence is removed. A frame (30 ms) is silence when it is
    40 dB under the clip's 95th-percentile frame, under -65 dBFS, or within 6 dB of the
    noise level (the quietest 10 % of frames; this rule never sets the threshold closer
    than 10 dB to the loud level). Speech longer than ``max_speech_s`` is cut to the
    window with the most speech frames (the earliest on ties); it starts where speech
    starts, and ends at the last pause in its second half if it has one.

    Args:
        data: the uploaded file (WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF).
        sample_rate: rate of the returned audio, Hz.
        limits: what a clip may be.

    Returns:
        The vetted clip and what was measured on it.

    Raises:
        ValueError: ``sample_rate`` is not positive (a caller bug, not a bad clip).
        ReferenceAudioError: the clip is refused; ``code`` is ``too_large``,
            ``unsupported_format``, ``corrupt_audio``, ``too_long_declared``,
            ``too_many_channels``, ``bad_sample_rate``, ``invalid_audio`` (NaN or
            infinite samples), ``silent`` or ``too_short``.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if len(data) > limits.max_bytes:
        raise ReferenceAudioError(
            "too_large", f"the file has {len(data)} bytes, the limit is {limits.max_bytes}"
        )
    if not data:
        raise ReferenceAudioError("corrupt_audio", "the file is empty")
    with _open(data) as f:
        _check_header(f, data, limits)
        decoded = _decode(f, sample_rate, limits)
        source = (f.samplerate, f.channels, f.format)
    return _vet(decoded, sample_rate, limits, *source)


def _open(data: bytes) -> sf.SoundFile:
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except sf.LibsndfileError as exc:
        if exc.code in (_SF_ERR_UNRECOGNISED_FORMAT, _SF_ERR_UNSUPPORTED_ENCODING):
            raise ReferenceAudioError("unsupported_format", "not a supported audio file") from exc
        raise ReferenceAudioError("corrupt_audio", "the audio file is damaged") from exc
    if f.format not in ACCEPTED_FORMATS:
        f.close()
        raise ReferenceAudioError("unsupported_format", f"{f.format} files are not accepted")
    return f


def _check_header(f: sf.SoundFile, data: bytes, limits: ReferenceLimits) -> None:
    if f.channels > limits.max_channels:
        raise ReferenceAudioError(
            "too_many_channels", f"{f.channels} channels, at most {limits.max_channels}"
        )
    if not limits.min_rate <= f.samplerate <= limits.max_rate:
        raise ReferenceAudioError(
            "bad_sample_rate",
            f"{f.samplerate} Hz is outside {limits.min_rate}-{limits.max_rate} Hz",
        )
    declared_s = f.frames / f.samplerate
    riff = _riff_data_extent(data)
    if riff is not None:
        declared_s = max(declared_s, riff[0] / riff[2])
    if declared_s > limits.max_decoded_seconds:
        raise ReferenceAudioError(
            "too_long_declared",
            f"the header declares {declared_s:.0f} s, at most "
            f"{limits.max_decoded_seconds:.0f} s is decoded",
        )
    if riff is not None and riff[0] > riff[1]:
        raise ReferenceAudioError(
            "corrupt_audio",
            f"the file is truncated: {riff[0]} bytes of audio declared, {riff[1]} present",
        )


def _riff_data_extent(data: bytes) -> tuple[int, int, int] | None:
    """A RIFF/WAVE file's (declared, present) ``data`` bytes and byte rate, else None.

    None also when the size is the streaming placeholder or a chunk is missing; the
    block decoder still bounds such files.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        tag, size = struct.unpack_from("<4sI", data, pos)
        if tag == b"fmt " and size >= 12 and pos + 20 <= len(data):
            (byte_rate,) = struct.unpack_from("<I", data, pos + 16)
        if tag == b"data":
            if size == _RIFF_UNKNOWN_SIZE or byte_rate == 0:
                return None
            return size, len(data) - pos - 8, byte_rate
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    return None


def _decode(f: sf.SoundFile, sample_rate: int, limits: ReferenceLimits) -> _Decoded:
    """Decode block by block to mono at ``sample_rate``, never past the limit."""
    limit = int(limits.max_decoded_seconds * f.samplerate)
    resampler = StreamResampler(f.samplerate, sample_rate)
    parts: list[np.ndarray] = []
    frames = clipped = 0
    while len(chunk := _read_block(f, _BLOCK_FRAMES)):
        frames += len(chunk)
        if frames > limit:
            raise ReferenceAudioError(
                "too_long_declared",
                f"the audio runs past {limits.max_decoded_seconds:.0f} s, the decode limit",
            )
        if not np.isfinite(chunk).all():
            raise ReferenceAudioError("invalid_audio", "the audio has NaN or infinite samples")
        clipped += int(np.count_nonzero(np.abs(chunk) >= _CLIP_LEVEL))
        parts.append(resampler.process(chunk.mean(axis=1, dtype=np.float32)))
    _check_complete(f, frames)
    parts.append(resampler.flush())
    audio = np.concatenate(parts)
    if not np.isfinite(audio).all():  # finite but huge float samples can overflow
        raise ReferenceAudioError("invalid_audio", "the audio's samples are out of range")
    return _Decoded(audio, clipped / max(1, frames * f.channels))


def _read_block(f: sf.SoundFile, frames: int) -> np.ndarray:
    try:
        chunk: np.ndarray = f.read(frames, dtype="float32", always_2d=True)  # [t, channels]
    except sf.LibsndfileError as exc:
        raise ReferenceAudioError("corrupt_audio", "the audio stream is damaged") from exc
    return chunk


def _check_complete(f: sf.SoundFile, decoded: int) -> None:
    """A stream that ends well short of its header's length was cut off."""
    missing = f.frames - decoded
    if missing > max(_TRUNCATION_TOLERANCE * f.frames, 0.25 * f.samplerate):
        raise ReferenceAudioError(
            "corrupt_audio",
            f"the file is truncated: {f.frames / f.samplerate:.1f} s declared, "
            f"{decoded / f.samplerate:.1f} s decoded",
        )


def _vet(
    decoded: _Decoded,
    sample_rate: int,
    limits: ReferenceLimits,
    source_rate: int,
    source_channels: int,
    source_format: str,
) -> Reference:
    frame = max(1, round(_FRAME_S * sample_rate))
    energy = _frame_energy(decoded.audio, frame)  # [frames] mean square
    speech = _speech_frames(energy)
    if not speech.any():
        raise ReferenceAudioError("silent", "no speech found: the clip is silent")
    keep = _keep_frames(speech)
    window = _best_window(speech[keep], math.floor(limits.max_speech_s * sample_rate / frame))
    frames = _framed(decoded.audio, frame)[keep][window]  # [kept frames, frame]
    audio = frames.reshape(-1)
    speech_s = np.count_nonzero(keep) * frame / sample_rate  # before the window: all usable
    if speech_s < limits.min_speech_s:
        raise ReferenceAudioError(
            "too_short",
            f"{speech_s:.1f} s of speech found, at least {limits.min_speech_s:g} s is needed",
        )
    audio = _normalize(audio)
    audio.flags.writeable = False
    return Reference(
        audio=audio,
        sample_rate=sample_rate,
        speech_s=len(audio) / sample_rate,
        snr_db=_snr_db(energy, speech),
        clipped_fraction=decoded.clipped_fraction,
        source_rate=source_rate,
        source_channels=source_channels,
        source_format=source_format,
    )


def _framed(x: np.ndarray, frame: int) -> np.ndarray:
    """``x`` zero-padded to whole frames, as ``[frames, frame]``."""
    pad = -len(x) % frame
    return np.concatenate([x, np.zeros(pad, x.dtype)]).reshape(-1, frame)


def _frame_energy(x: np.ndarray, frame: int) -> np.ndarray:
    framed = _framed(x, frame).astype(np.float64)  # [frames, frame]
    energy: np.ndarray = np.mean(np.square(framed), axis=1)  # [frames]
    return energy


def _speech_frames(energy: np.ndarray) -> np.ndarray:
    """Which frames hold speech (see :func:`decode_reference` for the rule)."""
    db = 10.0 * np.log10(energy + 1e-20)
    if len(db) == 0:
        return np.zeros(0, bool)
    loud = float(np.percentile(db, _LOUD_PERCENTILE))
    noise = float(np.percentile(db, 100.0 * _QUIET_FRACTION))
    above_noise = min(noise + _ABOVE_NOISE_DB, loud - _MIN_CONTRAST_DB)
    threshold = max(loud - _BELOW_LOUD_DB, _FLOOR_DB, above_noise)
    speech: np.ndarray = db > threshold
    return speech


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _keep_frames(speech: np.ndarray) -> np.ndarray:
    """Speech frames, the pauses between them (long ones cut short), nothing outside."""
    max_pause = round(_MAX_PAUSE_S / _FRAME_S)
    join = round(_JOIN_PAUSE_S / _FRAME_S)
    keep = speech.copy()
    runs = _runs(speech)
    for (_, gap_start), (gap_stop, _) in zip(runs, runs[1:]):
        if gap_stop - gap_start <= max_pause:
            keep[gap_start:gap_stop] = True
        else:  # keep the pause's edges: the last decay and the next onset
            keep[gap_start : gap_start + (join + 1) // 2] = True
            keep[gap_stop - join // 2 : gap_stop] = True
    return keep


def _best_window(speech: np.ndarray, max_frames: int) -> slice:
    """The ``max_frames`` span with the most speech, starting at an onset."""
    n = len(speech)
    if n <= max_frames:
        return slice(0, n)
    onsets = np.flatnonzero(speech & ~np.concatenate([[False], speech[:-1]]))
    onsets = onsets[onsets <= n - max_frames]  # speech[0] is an onset: never empty
    cum = np.concatenate([[0], np.cumsum(speech)])
    start = int(onsets[np.argmax(cum[onsets + max_frames] - cum[onsets])])
    stop = start + max_frames
    tail = speech[stop - max_frames // 2 : stop]
    pauses = np.flatnonzero(~tail[1:] & tail[:-1])  # speech → pause in the second half
    if len(pauses):
        stop = stop - max_frames // 2 + int(pauses[-1]) + 1
    return slice(start, stop)


def _normalize(audio: np.ndarray) -> np.ndarray:
    """Scale to the target RMS, less if a peak would pass -1 dBFS."""
    rms = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64))))
    peak = float(np.max(np.abs(audio)))
    gain = min(10.0 ** (_TARGET_RMS_DBFS / 20.0) / rms, _PEAK_LIMIT / peak)
    out: np.ndarray = (audio * gain).astype(np.float32)
    return out


def _snr_db(energy: np.ndarray, speech: np.ndarray) -> float:
    quiet = max(1, int(_QUIET_FRACTION * len(energy)))
    noise = max(float(np.mean(np.sort(energy)[:quiet])), _NOISE_FLOOR)
    return 10.0 * math.log10(float(np.mean(energy[speech])) / noise)
