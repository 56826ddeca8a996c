"""The engine interface: what a server (or its batcher) needs from a speech engine.

A model family (the bundled VITS voice, a Mandarin FastSpeech2, a user's own
checkpoints) implements :class:`Engine`, with its own ``sample_rate`` and
``language``. The caller never sees ids, phrase spans or signal stages: it
gets **final** audio, with word and phoneme marks already computed.

The ladder, and the thread each step runs on::

    engine.prepare(text) -> Text                  # any thread (a front-end pool)
    engine.perform(controls, listener) -> Performance   # the caller's thread
    engine.begin([SentenceRequest, ...]) -> streams     # the engine thread
    engine.step(streams) -> Iterator[Decoded]           # the engine thread
        ... listener.audio(FinalChunk) ...              # a thread the engine owns
    performance.end(n_sentences)                        # the caller's thread

A :class:`Performance` is one utterance on the engine side. Its sentences are
begun under it, each with its index, and may be decoded in any order and in
batches with other utterances' sentences; the performance puts their audio
back in order, runs whatever expressive or voice stage the engine has (on a
thread the engine owns, never the caller's), and hands each finished piece to
its :class:`Listener`. After ``end`` and the last sentence, one chunk with
``end=True`` closes the utterance (a stage's look-ahead tail, or nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeAlias, TypeVar

import numpy as np

from .emotion import DEFAULT_INTENSITY
from .transform import VoiceTransform

__all__ = [
    "Controls",
    "Decoded",
    "Engine",
    "EngineWrapper",
    "FinalChunk",
    "Listener",
    "ModelMissing",
    "Performance",
    "Precision",
    "Sentence",
    "SentenceMarks",
    "SentenceRequest",
    "Stream",
    "Text",
    "TextError",
    "TextErrorCode",
    "Timed",
    "VoiceInfo",
    "alone",
    "own",
]

Precision: TypeAlias = Literal["float32", "bfloat16", "float16"]
"""dtype of an engine's heavy layers (float16 is for CUDA)."""

TextErrorCode: TypeAlias = Literal["empty_text", "text_too_long", "unsupported_language"]


class ModelMissing(FileNotFoundError):
    """A voice's model files are not installed (the message says how to install them)."""


class TextError(ValueError):
    """The text cannot be spoken by this engine.

    Attributes:
        code: ``"empty_text"``, ``"text_too_long"`` or ``"unsupported_language"``.
    """

    def __init__(self, code: TextErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: TextErrorCode = code

    def __reduce__(self) -> tuple[type[TextError], tuple[TextErrorCode, str]]:
        return type(self), (self.code, str(self))


@dataclass(frozen=True, slots=True)
class Sentence:
    """One unit of synthesis: a sentence, or a piece of a long one."""

    text: str
    """The normalized text spoken (best effort when the front end had to split it)."""
    phonemes: list[str]
    """The phonemes (or other units) spoken, in order; the engine's own alphabet."""
    ids: list[int]
    """The model's input ids for this sentence (their layout is the engine's business)."""
    words: list[str]
    """The words of :attr:`text`, for word marks (best effort)."""
    voice: str = ""
    """The built-in voice that speaks it (see :attr:`Engine.voices`); empty: the engine's
    only voice."""


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A built-in voice an engine speaks."""

    name: str
    """What ``speak.voice`` names it by (``en``, ``zh``)."""
    language: str
    """BCP 47 tag (``en-US``, ``zh-CN``)."""
    sample_rate: int
    """Its own output rate, Hz."""
    license: str
    """Terms of its weights (and of the data they were trained on), in a line."""


@dataclass(frozen=True, slots=True)
class Text:
    """What :meth:`Engine.prepare` made of one text."""

    sentences: list[Sentence]
    """Non-empty sentences, in order."""
    warnings: list[str]
    """Human-readable notes on anything dropped or changed beyond plain normalization."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Controls:
    """How one utterance is performed."""

    emotion: str = "neutral"
    """A canonical emotion name of :attr:`Engine.emotions` (synonyms are resolved by the
    caller, once, where the request enters: the protocol session)."""
    intensity: float = DEFAULT_INTENSITY
    """Strength of ``emotion``, 0–1."""
    speed: float = 1.0
    """Speaking-rate factor (2 is twice as fast)."""
    pitch_st: float = 0.0
    """Pitch change, semitones."""
    volume_db: float = 0.0
    """Level change, dB."""
    seed: int | None = None
    """Seed of the utterance's sampling noise; None draws a fresh one."""
    voice: VoiceTransform | None = None
    """A registered voice's fitted transform; None speaks in the engine's own voice."""


@dataclass(frozen=True, slots=True)
class Timed:
    """A word, phoneme or viseme and where it is spoken, in samples of the utterance's audio."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SentenceMarks:
    """Where one sentence's words, phonemes and mouth shapes are, in samples at the
    engine's rate.

    Every position counts from the start of the utterance's audio.
    """

    start: int
    """The sentence's first sample."""
    words: tuple[Timed, ...]
    phonemes: tuple[Timed, ...]
    visemes: tuple[Timed, ...] = ()
    """The sentence's viseme track (``engine/visemes.py``): a shape name of
    ``VISEMES`` at every sample from ``start`` on, entries contiguous; empty when the
    engine cannot tell shapes for its language."""


@dataclass(frozen=True, slots=True)
class FinalChunk:
    """A piece of an utterance's final audio, in order within the utterance."""

    samples: np.ndarray
    """float32 mono samples in [-1, 1] at :attr:`Engine.sample_rate`."""
    sentence: int | None
    """Index of the sentence it was made from; None for the utterance's closing chunk."""
    is_last: bool
    """The last chunk made from ``sentence`` (a stage's look-ahead may carry the
    sentence's final samples into the next chunk)."""
    marks: SentenceMarks | None = None
    """The sentence's marks, on the first chunk made from it."""
    end: bool = False
    """The utterance is complete: nothing follows this chunk."""


class Listener(Protocol):
    """Receives one performance's output, on a thread the engine owns: must not block."""

    def audio(self, chunk: FinalChunk) -> None:
        """The next piece of final audio."""

    def failed(self, reason: str) -> None:
        """The performance failed; nothing more comes. ``reason`` is safe to show."""


class Performance(Protocol):
    """One utterance on the engine side (see the module docstring)."""

    def end(self, sentences: int) -> None:
        """The utterance has exactly ``sentences`` sentences (indices ``0 … sentences-1``);
        the closing chunk follows the last of them."""

    def cancel(self) -> None:
        """Stop: nothing more is delivered."""


@dataclass(frozen=True, slots=True)
class SentenceRequest:
    """One sentence of a performance, to synthesize."""

    performance: Performance
    """Made by the same engine's :meth:`Engine.perform`."""
    index: int
    """Position of the sentence in its utterance, from 0."""
    sentence: Sentence

    @property
    def cost(self) -> int:
        """Work needed to start it, in ids (what a scheduler bounds per turn)."""
        return len(self.sentence.ids)


class Stream(Protocol):
    """A sentence in flight (made by :meth:`Engine.begin`)."""

    @property
    def started(self) -> bool:
        """Some of its audio was decoded already."""

    @property
    def done(self) -> bool:
        """All of its audio was decoded."""

    @property
    def cost(self) -> int:
        """Work of its next step, in the engine's unit (latent frames for VITS)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Progress of one stream in a step (its audio goes to its performance's listener)."""

    stream: Stream
    samples: int
    """Samples decoded, at the engine's rate."""
    is_last: bool
    """The stream is done."""


class Engine(Protocol):
    """A speech engine a batcher can drive (see the module docstring).

    ``begin`` and ``step`` are called from one thread (the engine thread) at a time;
    ``prepare`` from any thread; ``perform`` and a performance's methods from the
    caller's thread.
    """

    @property
    def sample_rate(self) -> int:
        """Rate of every :class:`FinalChunk`, Hz."""

    @property
    def language(self) -> str:
        """The language spoken, as a BCP 47 tag (``en-US``, ``zh-CN``)."""

    @property
    def emotions(self) -> tuple[str, ...]:
        """Canonical emotion names :class:`Controls` may take."""

    @property
    def voices(self) -> tuple[VoiceInfo, ...]:
        """The built-in voices it speaks (at least one)."""

    @property
    def emotion_aliases(self) -> Mapping[str, str]:
        """Synonyms callers may accept, each mapped to its canonical name."""

    def prepare(self, text: str, voice: str | None = None) -> Text:
        """Text → sentences (the front end). Thread-safe.

        ``voice`` names the utterance's built-in voice (None: the engine's default;
        ``"auto"``: the text's script picks); an engine with one voice ignores it.

        Raises:
            TextError: empty, too long, or unsupported text (``code`` says which).
        """

    def perform(self, controls: Controls, listener: Listener) -> Performance:
        """Start one utterance's performance; its audio goes to ``listener``.

        Raises:
            ValueError: a control out of range, or an unknown emotion.
        """

    def begin(self, requests: Sequence[SentenceRequest]) -> Sequence[Stream]:
        """Start sentences (of any performances), one stream each, in order.

        Raises:
            ValueError: a request this engine cannot run (or from another engine).
        """

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        """Decode the next piece of every unfinished stream; yields as pieces finish.

        The audio goes to each stream's performance; what comes back is progress.
        """

    def close(self) -> None:
        """Stop the engine's own threads (after the last ``step``)."""


class EngineWrapper:
    """An engine around another: its voices, emotions and front end are the inner
    engine's; a subclass changes what it performs (``perform``, ``begin``, ``step``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    @property
    def language(self) -> str:
        return self.engine.language

    @property
    def emotions(self) -> tuple[str, ...]:
        return self.engine.emotions

    @property
    def voices(self) -> tuple[VoiceInfo, ...]:
        return self.engine.voices

    @property
    def emotion_aliases(self) -> Mapping[str, str]:
        return self.engine.emotion_aliases

    def prepare(self, text: str, voice: str | None = None) -> Text:
        return self.engine.prepare(text, voice)

    def close(self) -> None:
        """Close the inner engine."""
        self.engine.close()


def alone(controls: Controls, index: int) -> Controls:
    """The controls that perform sentence ``index`` of an utterance as sentence 0 of a
    performance of its own, with the same samples (a scale-out worker runs sentences
    one by one).

    Sentence ``i`` of every engine's performance draws its noise from the seed moved on
    by ``i`` (the VITS engine's ``SynthesisParams.offset_seed``); an engine without noise
    ignores the seed. Without a seed nothing is reproducible anyway.
    """
    if controls.seed is None or index == 0:
        return controls
    return replace(controls, seed=(controls.seed + index) % 2**63)


_Own = TypeVar("_Own")


def own(value: object, kind: type[_Own], what: str) -> _Own:
    """``value`` as one of the engine's own ``kind`` (a performance or stream it made).

    Raises:
        ValueError: ``value`` was made by another engine (``what`` names it).
    """
    if not isinstance(value, kind):
        raise ValueError(f"a {what} of another engine")
    return value
