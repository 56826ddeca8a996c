"""An in-process API shaped like the one users of the seed deployment know.

    synth = Synthesizer(device="cpu")
    wav = synth.tts("Hello!", emotion="happy", reference_audio="ref.wav", speed=1.1)
    synth.save_wav(wav, "out.wav")

Reference clips go through the registration pipeline the server uses
(``engine/registration.py``: decoded and vetted, embedded with our GE2E port, a
voice transform fitted to them); fits are cached by the pipeline's content hash,
so a clip used again costs nothing. Emotions (``engine/emotion.py``, synonyms in
English and Chinese) and explicit pitch/volume are realized by
``engine.expression.render``: rate and pauses in the engine, the rest in one
stage pass (PSOLA, together with a registered voice's adaptation).
Neutral speech in the bundled voice skips that stage entirely: its samples are
the engine's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import registration
from .adapt import Probe
from .emotion import DEFAULT_INTENSITY, SPEED_RANGE, check_range, resolve
from .expression import Expression, check_rate, render
from .interface import Controls
from .marked import MarkedEngine, Watermarker
from .multivoice import AUTO, MultiVoiceEngine, has_han
from .offline import speak_many
from .pcm import write_wav
from .pitch import yin_median
from .transform import VoiceTransform
from .vits import VitsEngine
from .voice import PROBE_SENTENCE, SynthesisParams, Voice

__all__ = ["PROBE_SENTENCE", "Synthesizer"]


ReferenceAudio = str | Path | bytes | tuple[np.ndarray, int]


class Synthesizer:
    """Text (and optionally a reference voice) in, waveform out. Not thread-safe."""

    def __init__(
        self, device: str = "cpu", precision: str = "float32", *, watermark: bool = True
    ) -> None:
        """Raises: ValueError / RuntimeError as :meth:`engine.voice.Voice.load`.

        Args:
            watermark: mark every output with the Perth watermark (``marked.py``);
                False leaves the bundled voices' output unmarked (a registered voice's
                is marked whatever this says).
        """
        self.voice = Voice.load(device=device, precision=precision)  # type: ignore[arg-type]
        self.sample_rate = self.voice.sample_rate
        self.watermarker = Watermarker(str(self.voice.device), all_output=watermark)
        """Marks what this synthesizer speaks."""
        self._encoder: Any = None
        self._probe: Probe | None = None
        self._probe_samples: np.ndarray | None = None
        self._center_hz: float | None = None
        self._multivoice: MarkedEngine | None = None
        self._fits: dict[str, registration.Registration] = {}
        """Registrations by content hash."""
        self._uploads: dict[str, str] = {}
        """Content hash of each upload seen (by ``registration.upload_key``)."""

    # -- public API ------------------------------------------------------------------

    def tts(
        self,
        text: str,
        emotion: str | None = None,
        reference_audio: ReferenceAudio | None = None,
        speed: float = 1.0,
        pitch_scale: float = 1.0,
        seed: int | None = None,
        *,
        intensity: float = DEFAULT_INTENSITY,
        pitch: float = 0.0,
        volume: float = 0.0,
        lang: str | None = None,
    ) -> np.ndarray:
        """One text to a float32 waveform at :attr:`sample_rate`.

        Chinese is spoken by the Mandarin voice (loaded on first use), English by the
        English one, mixed text run by run.

        Args:
            emotion: an emotion or synonym (``"happy"``, ``"furious"``, ``"伤心"``, …);
                None is neutral.
            reference_audio: a clip of the voice to speak like (None: the bundled voice).
            speed: speaking-rate factor on top of the emotion's (0.25–4).
            pitch_scale: pitch factor (0.5–2); adds ``12·log2(pitch_scale)`` semitones.
            seed: noise seed, for reproducible output (None: fresh noise).
            intensity: how strongly the emotion shows, 0 (neutral) to 1.
            pitch: pitch change in semitones (−12…12), on top of the emotion's.
            volume: level change in dB (−30…12), on top of the emotion's.
            lang: the voice for text in no particular script (digits): ``"en"``,
                ``"zh"``, or ``"auto"``/None (by the text's main script).

        Raises:
            ValueError: bad text (``engine.frontend.TextError``), a bad reference
                (``engine.reference.ReferenceAudioError``), an unknown emotion (the
                message lists the supported ones), or controls out of range.
        """
        return self.tts_batch(
            [text],
            [emotion],
            [reference_audio],
            speed,
            pitch_scale,
            seed,
            intensity=intensity,
            pitch=pitch,
            volume=volume,
            lang=lang,
        )[0]

    def tts_batch(
        self,
        texts: Sequence[str],
        emotions: Sequence[str | None] | None = None,
        reference_audios: Sequence[ReferenceAudio | None] | None = None,
        speed: float = 1.0,
        pitch_scale: float = 1.0,
        seed: int | None = None,
        *,
        intensity: float | Sequence[float] = DEFAULT_INTENSITY,
        pitch: float = 0.0,
        volume: float = 0.0,
        lang: str | None = None,
    ) -> list[np.ndarray]:
        """Several texts, synthesized as one batch; each may have its own emotion,
        intensity and reference (controls as :meth:`tts`).

        Every control is checked before any reference is fitted or audio made.

        Raises:
            ValueError: as :meth:`tts`, for the first bad item.
        """
        n = len(texts)
        emotions = list(emotions) if emotions is not None else [None] * n
        refs = list(reference_audios) if reference_audios is not None else [None] * n
        if np.ndim(intensity) == 0:
            intensities = [float(intensity)] * n  # type: ignore[arg-type]
        else:
            intensities = [float(k) for k in intensity]  # type: ignore[union-attr]
        if not len(emotions) == len(refs) == len(intensities) == n:
            raise ValueError(
                "texts, emotions, reference_audios and intensities must have the same length"
            )
        check_range("speed", speed, SPEED_RANGE)
        if not 0.5 <= pitch_scale <= 2.0:
            raise ValueError(f"pitch_scale must be in [0.5, 2], got {pitch_scale}")
        pitch_st = pitch + 12 * math.log2(pitch_scale) if pitch_scale != 1.0 else pitch
        params = SynthesisParams(length_scale=1.0 / speed, seed=seed)
        # Validate every item's controls (cheap) before fitting references (costly).
        for i, (emotion, k) in enumerate(zip(emotions, intensities)):
            expr = Expression.create(
                emotion=emotion, intensity=k, pitch_st=pitch_st, volume_db=volume
            )
            check_rate(expr, params, f"item {i}: " if n > 1 else "")
        if lang not in (None, AUTO, "en", "zh"):
            raise ValueError(f"lang must be auto, en or zh, got {lang!r}")
        voices = [None if r is None else self.register(r).transform for r in refs]
        if lang == "zh" or any(has_han(t) for t in texts):
            controls = [
                Controls(
                    emotion="neutral" if e is None else resolve(e),
                    intensity=k,
                    speed=speed,
                    pitch_st=pitch_st,
                    volume_db=volume,
                    seed=seed,
                    voice=v,
                )
                for e, k, v in zip(emotions, intensities, voices)
            ]
            engine = self.multivoice()
            prepared = [engine.prepare(t, lang or AUTO) for t in texts]
            return [s.audio for s in speak_many(engine, prepared, controls)]
        results = [self.voice.frontend.process(t) for t in texts]
        expressions = [
            self.expression(emotion=e, intensity=k, pitch_st=pitch_st, volume_db=volume, voice=v)
            for e, k, v in zip(emotions, intensities, voices)
        ]
        return render(self.voice, results, expressions, [params] * n, marker=self.watermarker)

    def multivoice(self) -> MarkedEngine:
        """Both built-in voices as one engine at :attr:`sample_rate` (built on first use),
        marked as :attr:`watermarker` says.

        Raises:
            ModelMissing: the Mandarin voice's files are not installed.
        """
        if self._multivoice is None:
            from .mandarin.engine import MandarinEngine  # torch modules of its own: on use

            english = VitsEngine(self.voice)
            both = MultiVoiceEngine(
                [english, MandarinEngine.load(str(self.voice.device))], default="en"
            )
            self._multivoice = MarkedEngine(both, self.watermarker)
        return self._multivoice

    def expression(
        self,
        *,
        emotion: str | None = None,
        intensity: float = DEFAULT_INTENSITY,
        pitch_st: float = 0.0,
        volume_db: float = 0.0,
        voice: VoiceTransform | None = None,
    ) -> Expression:
        """One utterance's :class:`~engine.expression.Expression` for this voice.

        The pitch centre (the bundled voice's median F0) is measured once, and
        only when the expression needs the stage to move pitch: neutral speech in the
        bundled voice (or a mere volume change) never pays for it. Speed is not
        here: it is the engine's ``length_scale`` (:class:`~engine.voice.SynthesisParams`).

        Args:
            voice: a registered voice's fitted transform (``register(ref).transform``).

        Raises:
            ValueError: unknown emotion (the message lists the supported ones), or a
                control out of range.
        """
        expr = Expression.create(
            emotion=emotion,
            intensity=intensity,
            pitch_st=pitch_st,
            volume_db=volume_db,
            voice=voice,
        )
        if expr.transform is None or not expr.transform.needs_stage():
            return expr  # no stage, or a level change only: no pitch to centre
        return replace(expr, center_hz=self.pitch_center_hz())

    def pitch_center_hz(self) -> float:
        """The bundled voice's median F0 (Hz) on :data:`PROBE_SENTENCE` (cached).

        The same figure as the fitting probe's ``f0_median_hz``, at the cost of one
        deterministic sentence (~0.5 s on CPU) instead of the fitting probe's analysis.

        Raises:
            ValueError: the probe sentence has no voiced speech.
        """
        if self._center_hz is None:
            if self._probe is not None:
                self._center_hz = self._probe.stats["f0_median_hz"]
            else:
                center = yin_median(self._probe_audio(), self.sample_rate)
                if center <= 0:
                    raise ValueError("the probe sentence has no voiced speech")
                self._center_hz = center
        return self._center_hz

    def register(self, reference_audio: ReferenceAudio) -> registration.Registration:
        """Decode, embed and fit a reference (cached by content hash).

        Its ``transform`` moves the bundled voice toward the reference; its
        ``summary`` says what was found (usable seconds, similarity before/after).

        Raises:
            engine.reference.ReferenceAudioError: the clip cannot be used.
            ValueError: the clip has no voiced speech to fit pitch to.
            OSError: a path cannot be read.
        """
        data = _reference_bytes(reference_audio)
        upload = registration.upload_key(data)
        known = self._fits.get(self._uploads.get(upload, ""))
        if known is not None:  # the very same upload: no decoding at all
            return known
        decoded = registration.decode(data)
        self._uploads[upload] = decoded.content_hash
        known = self._fits.get(decoded.content_hash)
        if known is None:
            encoder, probe = self._tools()
            known = registration.analyse(decoded, encoder, probe)
            self._fits[decoded.content_hash] = known
        return known

    def save_wav(self, waveform: np.ndarray, path: str | Path) -> None:
        """16-bit PCM WAV at :attr:`sample_rate`. Raises: OSError."""
        write_wav(path, waveform, self.sample_rate)

    # -- internals -------------------------------------------------------------------

    def _tools(self) -> tuple[Any, Probe]:
        if self._encoder is None or self._probe is None:
            from .speaker import SpeakerEncoder

            self._encoder = SpeakerEncoder.load(device=self.voice.device)
            self._probe = Probe.from_audio(self._probe_audio(), self.sample_rate)
        return self._encoder, self._probe

    def _probe_audio(self) -> np.ndarray:
        """The bundled voice saying :data:`PROBE_SENTENCE`, without noise (cached)."""
        if self._probe_samples is None:
            (self._probe_samples,) = self.voice.synthesize_texts(
                [PROBE_SENTENCE], SynthesisParams.deterministic()
            )
        return self._probe_samples


def _reference_bytes(ref: ReferenceAudio) -> bytes:
    if isinstance(ref, bytes):
        return ref
    if isinstance(ref, tuple):
        import io

        import soundfile

        audio, rate = ref
        buf = io.BytesIO()
        soundfile.write(
            buf, np.asarray(audio, np.float32), int(rate), format="WAV", subtype="FLOAT"
        )
        return buf.getvalue()
    return Path(ref).read_bytes()
