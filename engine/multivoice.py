"""Several built-in voices behind one engine interface, and mixed-language utterances.

A :class:`MultiVoiceEngine` holds one engine per built-in voice (the English
VITS voice, the Mandarin FastSpeech2 voice, …) and is itself an
:class:`~.interface.Engine`, so the server and its batcher never learn which
model speaks: every sentence carries the name of the voice that speaks it
(:attr:`~.interface.Sentence.voice`), ``begin`` and ``step`` hand each
sentence to its voice's engine, and one ``step`` advances every voice's
running work in turn.

Text is cut into language runs (``engine/languages.py``): Chinese inside
English and English inside Chinese are spoken by the voice of their language,
never dropped. An utterance's consecutive sentences of one voice form a
*group*, performed by that voice's engine as a performance of its own; groups
play one after another, at the rate of the default voice (the others are
resampled), with their marks moved to the utterance's timeline
(``engine/voicegroups.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from .interface import (
    Controls,
    Decoded,
    Engine,
    Listener,
    Sentence,
    SentenceRequest,
    Stream,
    Text,
    TextError,
    VoiceInfo,
    own,
)
from .languages import Run, split_runs
from .voicegroups import MultiPerformance

__all__ = ["AUTO", "MultiVoiceEngine", "dominant_language", "has_han"]

AUTO = "auto"
"""The ``voice`` of :meth:`MultiVoiceEngine.prepare` that lets the text's script choose."""


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def has_han(text: str) -> bool:
    """Whether ``text`` holds Chinese characters."""
    return any(_is_han(ch) for ch in text)


def dominant_language(text: str) -> str | None:
    """``"zh"`` or ``"en"`` by which script has more characters; None for neither."""
    han = sum(1 for ch in text if _is_han(ch))
    latin = sum(1 for ch in text if _is_latin(ch))
    if han == latin == 0:
        return None
    # A Chinese character carries about as much as a short English word.
    return "zh" if 3 * han >= latin else "en"


class MultiVoiceEngine:
    """See module docstring.

    Args:
        engines: the engines, in the order their voices are listed; each must list
            its own voices in :attr:`~.interface.Engine.voices`.
        default: the voice that speaks when none is named; its rate and language are
            the engine's.

    Raises:
        ValueError: no engines, an unknown default, a voice listed twice, or engines
            with different emotion vocabularies.
    """

    def __init__(self, engines: Sequence[Engine], default: str) -> None:
        if not engines:
            raise ValueError("MultiVoiceEngine needs at least one engine")
        self._by_voice: dict[str, Engine] = {}
        self._infos: list[VoiceInfo] = []
        for engine in engines:
            for info in engine.voices:
                if info.name in self._by_voice:
                    raise ValueError(f"voice {info.name!r} is listed twice")
                self._by_voice[info.name] = engine
                self._infos.append(info)
        if default not in self._by_voice:
            raise ValueError(f"unknown default voice {default!r}; have {', '.join(self._by_voice)}")
        self.engines = tuple(engines)
        self.default = default
        self._main = self._by_voice[default]
        for engine in engines:
            if set(engine.emotions) != set(self._main.emotions):
                raise ValueError("every voice must take the same emotions")
        self._by_language: dict[str, str] = {}
        for info in self._infos:  # the first voice of each language speaks its runs
            self._by_language.setdefault(_primary_subtag(info.language), info.name)
        self._by_language[_primary_subtag(self.info(default).language)] = default

    # -- what it offers -----------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self._main.sample_rate

    @property
    def language(self) -> str:
        return self._main.language

    @property
    def emotions(self) -> tuple[str, ...]:
        return self._main.emotions

    @property
    def emotion_aliases(self) -> Mapping[str, str]:
        return self._main.emotion_aliases

    @property
    def voices(self) -> tuple[VoiceInfo, ...]:
        return tuple(self._infos)

    def info(self, voice: str) -> VoiceInfo:
        """The built-in voice ``voice``.

        Raises:
            KeyError: no such voice.
        """
        for info in self._infos:
            if info.name == voice:
                return info
        raise KeyError(f"no built-in voice {voice!r}")

    def engine_of(self, voice: str) -> Engine:
        """The engine speaking ``voice``. Raises: KeyError."""
        return self._by_voice[voice]

    # -- text ---------------------------------------------------------------------------

    def prepare(self, text: str, voice: str | None = None) -> Text:
        """Cut ``text`` into language runs; each run's sentences name the voice speaking them.

        ``voice`` is the utterance's built-in voice (None: the default; :data:`AUTO`: the
        text's main script picks): it speaks text in no particular script (``666``).

        Raises:
            TextError: nothing speakable; text too long; a run no voice can speak.
        """
        primary = self._primary(text, voice)
        sentences: list[Sentence] = []
        warnings: list[str] = []
        for lang, run in self._runs(text, primary):
            name = self._by_language.get(lang)
            if name is None:
                warnings.append(f"no voice speaks {lang!r}: skipped {run!r}")
                continue
            if _primary_subtag(self.info(primary).language) == lang:
                name = primary
            try:
                prepared = self._by_voice[name].prepare(run)
            except TextError as exc:
                if exc.code != "empty_text":
                    raise
                if run.strip():
                    warnings.append(f"nothing speakable in {run!r}: skipped")
                continue
            sentences.extend(replace(s, voice=name) for s in prepared.sentences)
            warnings.extend(prepared.warnings)
        if not sentences:
            detail = f" ({'; '.join(warnings)})" if warnings else ""
            raise TextError("empty_text", f"the text holds nothing speakable{detail}")
        return Text(sentences, warnings)

    def _primary(self, text: str, voice: str | None) -> str:
        if voice is None:
            return self.default
        if voice == AUTO:
            lang = dominant_language(text)
            return self.default if lang is None else self._by_language.get(lang, self.default)
        if voice not in self._by_voice:
            raise KeyError(f"no built-in voice {voice!r}")
        return voice

    def _runs(self, text: str, primary: str) -> list[tuple[str, str]]:
        """``(language, text)`` runs: by script when the voices speak Chinese and English."""
        lang = _primary_subtag(self.info(primary).language)
        if not {"zh", "en"} <= set(self._by_language):
            return [(lang, text)]
        runs: list[Run] = split_runs(text, default="zh" if lang == "zh" else "en")
        return [(run.lang, run.text) for run in runs]

    # -- performances -------------------------------------------------------------------

    def perform(self, controls: Controls, listener: Listener) -> MultiPerformance:
        return MultiPerformance(self, controls, listener)

    def begin(self, requests: Sequence[SentenceRequest]) -> list[MultiStream]:
        routed = [
            own(r.performance, MultiPerformance, "performance").route(r.index, r.sentence)
            for r in requests
        ]
        streams: list[MultiStream | None] = [None] * len(requests)
        for engine in self.engines:
            mine = [i for i, (e, _) in enumerate(routed) if e is engine]
            if not mine:
                continue
            inner = engine.begin([routed[i][1] for i in mine])
            for i, s in zip(mine, inner):
                streams[i] = MultiStream(engine, s)
        assert all(s is not None for s in streams)
        return [s for s in streams if s is not None]

    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        wrapped = [own(s, MultiStream, "stream") for s in streams]
        for engine in self.engines:
            mine = {id(w.inner): w for w in wrapped if w.engine is engine}
            if not mine:
                continue
            for d in engine.step([w.inner for w in mine.values()]):
                yield Decoded(mine[id(d.stream)], d.samples, d.is_last)

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


@dataclass(eq=False, slots=True)
class MultiStream:
    """A sentence in flight on one voice's engine."""

    engine: Engine
    inner: Stream

    @property
    def started(self) -> bool:
        return self.inner.started

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def cost(self) -> int:
        return self.inner.cost


def _primary_subtag(language: str) -> str:
    return language.split("-")[0].lower()
