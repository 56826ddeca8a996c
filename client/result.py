"""The collected audio and messages of one finished utterance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxlive.protocol.codec import SAMPLE_WIDTH
from voxlive.protocol.messages import Done, Error, Marks, Started
from voxlive.protocol.types import AudioFormat, UtteranceId

__all__ = ["Result"]


@dataclass(frozen=True, slots=True)
class Result:
    """Everything the server sent for one utterance, returned by ``Client.synthesize``."""

    id: UtteranceId
    pcm: bytes
    """Mono PCM of every audio frame, joined, in ``format``."""
    sample_rate: int
    """Hz, the session's output rate (``welcome.audio.sample_rate``)."""
    format: AudioFormat
    """PCM sample encoding of ``pcm``."""
    done: Done
    """How the utterance ended; ``done.status`` is ``completed`` when all went well."""
    started: Started | None = None
    """The ``started`` message, or ``None`` if synthesis never started."""
    marks: list[Marks] = field(default_factory=list)
    """Word and phoneme timings, when asked for with ``timestamps=True``."""
    errors: list[Error] = field(default_factory=list)
    """Errors the server reported about this utterance."""

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the server skipped or read other than written (``done.warnings``, v1.4)."""
        return self.done.warnings

    @property
    def ok(self) -> bool:
        """Whether the utterance completed (``done.status == "completed"``)."""
        return self.done.status == "completed"

    @property
    def emotion(self) -> str | None:
        """The canonical emotion the server applied (``started.emotion``, SPEC.md §5.2).

        ``None`` when synthesis never started or the server did not say (before v1.3).
        """
        return None if self.started is None else self.started.emotion

    @property
    def intensity(self) -> float | None:
        """The emotion intensity the server applied (``started.intensity``), or ``None``."""
        return None if self.started is None else self.started.intensity

    @property
    def num_samples(self) -> int:
        """Samples in ``pcm``."""
        return len(self.pcm) // SAMPLE_WIDTH[self.format]

    @property
    def duration_s(self) -> float:
        """Duration of ``pcm``, in seconds."""
        return self.num_samples / self.sample_rate

    def samples(self) -> np.ndarray:
        """Return the audio as float32 samples in [-1, 1].

        Raises:
            ValueError: ``pcm`` is not a whole number of samples.
        """
        if self.format == "s16le":
            return np.frombuffer(self.pcm, dtype="<i2").astype(np.float32) / 32768.0
        return np.frombuffer(self.pcm, dtype="<f4").astype(np.float32)

    def save_wav(self, path: str | Path) -> None:
        """Write the audio as a mono 16-bit PCM WAV file at ``sample_rate``.

        Raises:
            ValueError: ``pcm`` is not a whole number of samples.
            soundfile.LibsndfileError: the file cannot be written (a ``RuntimeError``).
        """
        import soundfile  # only needed here; keeps the import light

        soundfile.write(str(path), self._int16(), self.sample_rate, subtype="PCM_16")

    def _int16(self) -> np.ndarray:
        if self.format == "s16le":
            return np.frombuffer(self.pcm, dtype="<i2")
        floats = np.frombuffer(self.pcm, dtype="<f4")
        return np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)
