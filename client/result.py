"""The collected audio and messages of one finished utterance."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxlive.protocol.codec import SAMPLE_WIDTH
from voxlive.protocol.messages import Done, Error, Marks, Phoneme, Started, Viseme, Word
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
    """Word, phoneme and viseme timings, when asked for with ``timestamps=True``: one
    ``Marks`` per sentence, in order (``words``, ``phonemes`` and ``visemes`` below
    join them)."""
    errors: list[Error] = field(default_factory=list)
    """Errors the server reported about this utterance."""

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the server skipped or read other than written (``done.warnings``, v1.4)."""
        return self.done.warnings

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word (``text``, ``start``, ``end``), from ``marks`` in order.

        Positions are samples of ``pcm`` at ``sample_rate`` (``end`` exclusive); empty
        without ``timestamps=True``.
        """
        return tuple(w for m in self.marks for w in m.words)

    @property
    def phonemes(self) -> tuple[Phoneme, ...]:
        """Every phoneme (``p``, ``start``, ``end``), from ``marks`` in order: IPA for
        the English voice, pinyin initials and toned finals for the Chinese one."""
        return tuple(p for m in self.marks for p in m.phonemes)

    @property
    def visemes(self) -> tuple[Viseme, ...]:
        """The mouth shapes for lip-sync (``v``, ``start``, ``end``), from ``marks`` in order.

        ``v`` is one of 15 names, ``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou`` (the
        Oculus/ARKit-style set; SPEC.md §5.3 says which sounds each stands for). Within a
        sentence the entries are contiguous: each starts where the previous one ended,
        the first at the sentence's first sample. Positions are samples of ``pcm`` at
        ``sample_rate``. Empty without ``timestamps=True`` or from a server before v1.5.
        """
        return tuple(v for m in self.marks for v in m.visemes)

    def viseme_at(self, sample: int) -> str:
        """The mouth shape at ``sample`` of ``pcm`` (``sil`` where no viseme covers it).

        For a player: the shape to show while that sample plays.
        """
        visemes = self.visemes
        j = bisect.bisect_right([v.start for v in visemes], sample) - 1
        if j >= 0 and visemes[j].start <= sample < visemes[j].end:
            return visemes[j].v
        return "sil"

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
