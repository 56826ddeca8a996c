"""The bundled VITS voice behind the engine interface (:class:`~.interface.Engine`).

VITS specifics stay here and in the modules it uses: the id layout (marks,
pause scales, phrase spans: ``layout.py``), emotion as length scale, pause
scales and an expressive stage (``expression.py``), the stage thread and sentence
order (``performance.py``), the chunk schedule (``chunking.py``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from .adapt import Probe
from .chunking import ChunkSchedule
from .emotion import EMOTIONS, SYNONYMS
from .expression import Expression, check_rate
from .interface import (
    Controls,
    Decoded,
    Listener,
    Precision,
    Sentence,
    SentenceRequest,
    Stream,
    Text,
    VoiceInfo,
    own,
)
from .performance import StageThread, VitsPerformance
from .streaming import ItemStream, SynthesisParams
from .voice import PROBE_SENTENCE, Voice

__all__ = ["LICENSE", "VOICE_NAME", "VitsEngine", "VitsStream"]

VOICE_NAME = "en"
"""What ``speak.voice`` names the bundled English voice by."""
LICENSE = "Piper voice 'joe' (en_US, medium): CC0 per its model card"


@dataclass(eq=False, slots=True)
class VitsStream:
    """One sentence in flight (:class:`~.interface.Stream`)."""

    item: ItemStream
    performance: VitsPerformance
    index: int
    sentence: Sentence

    @property
    def started(self) -> bool:
        return self.item.step > 0

    @property
    def done(self) -> bool:
        return self.item.done

    @property
    def cost(self) -> int:
        if self.item.done:
            return 0
        w = self.item.plan[self.item.step]
        return w.hi - w.lo


class VitsEngine:
    """A :class:`~.voice.Voice` as an :class:`~.interface.Engine`.

    Args:
        voice: the loaded voice (this engine drives it from one thread).
        schedule: chunk sizes of every sentence.
        probe: the voice's own fitting probe; measured here when not given (~0.5 s).
    """

    def __init__(
        self,
        voice: Voice,
        schedule: ChunkSchedule | None = None,
        probe: Probe | None = None,
    ) -> None:
        self.voice = voice
        self.schedule = schedule or ChunkSchedule()
        self._stages = StageThread()
        self.probe = probe or _probe(voice)
        """The voice saying the fitting probe sentence, analysed (voice adaptation fits to it)."""
        self.center_hz = self.probe.stats["f0_median_hz"]
        """The voice's median pitch: the centre of pitch-range changes."""

    @classmethod
    def load(
        cls,
        device: str = "cpu",
        precision: Precision = "float32",
        schedule: ChunkSchedule | None = None,
    ) -> VitsEngine:
        """The bundled voice on ``device``.

        Raises:
            ValueError, RuntimeError: as :meth:`Voice.load`.
        """
        return cls(Voice.load(device=device, precision=precision), schedule)

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def language(self) -> str:
        return self.voice.language

    @property
    def emotions(self) -> tuple[str, ...]:
        return tuple(EMOTIONS)

    @property
    def emotion_aliases(self) -> Mapping[str, str]:
        return SYNONYMS

    @property
    def voices(self) -> tuple[VoiceInfo, ...]:
        return (VoiceInfo(VOICE_NAME, self.language, self.sample_rate, LICENSE),)

    def prepare(self, text: str, voice: str | None = None) -> Text:
        return self.voice.frontend.process(text)

    def perform(self, controls: Controls, listener: Listener) -> VitsPerformance:
        if controls.emotion not in EMOTIONS:
            supported = ", ".join(EMOTIONS)
            raise ValueError(f"unknown emotion {controls.emotion!r}; supported: {supported}")
        expression = Expression.create(
            emotion=controls.emotion,
            intensity=controls.intensity,
            speed=controls.speed,
            pitch_st=controls.pitch_st,
            volume_db=controls.volume_db,
            voice=controls.voice,
            center_hz=self.center_hz,
        )
        check_rate(expression, SynthesisParams())  # e.g. speed 4 and an excited voice
        params = expression.params(SynthesisParams(seed=controls.seed))
        return VitsPerformance(expression, params, self.sample_rate, listener, self._stages)

    def begin(self, requests: Sequence[SentenceRequest]) -> list[VitsStream]:
        performances = [own(r.performance, VitsPerformance, "performance") for r in requests]
        reqs = [p.request(r.index, r.sentence) for p, r in zip(performances, requests)]
        items = self.voice.begin(reqs, self.schedule)
        streams = []
        for item, p, r in zip(items, performances, requests):
            stream = VitsStream(item, p, r.index, r.sentence)
            item.tag = stream
            streams.append(stream)
        return streams

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        items = [own(s, VitsStream, "stream").item for s in streams]
        for chunk in self.voice.step(items):
            stream = chunk.tag
            assert isinstance(stream, VitsStream)
            stream.performance.feed(stream.index, stream.sentence, chunk)
            yield Decoded(stream, len(chunk.samples), chunk.is_last)

    def close(self) -> None:
        self._stages.close()


_PROBES: weakref.WeakKeyDictionary[Voice, Probe] = weakref.WeakKeyDictionary()
"""Each voice's probe: deterministic, so engines built on one voice share it."""


def _probe(voice: Voice) -> Probe:
    """The voice saying the fitting sentence, analysed once per voice."""
    probe = _PROBES.get(voice)
    if probe is None:
        (audio,) = voice.synthesize_texts([PROBE_SENTENCE], SynthesisParams.deterministic())
        probe = _PROBES[voice] = Probe.from_audio(audio, voice.sample_rate)
    return probe
