"""An in-process API shaped like the one users of the seed deployment know.

    synth = Synthesizer(device="cpu")
    wav = synth.tts("Hello!", reference_audio="ref.wav", speed=1.1, pitch_scale=1.05)
    synth.save_wav(wav, "out.wav")

Reference clips are decoded and vetted (``engine/reference.py``), embedded
with our GE2E port (``engine/speaker.py``), and a voice transform is fitted to
them (``engine/adapt.py``); fits are cached by the clip's content hash, so a
clip used again costs nothing. Without a reference the bundled voice speaks
unchanged (the adaptation stage is skipped entirely).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .adapt import Fit, Probe, fit_transform, voice_statistics
from .reference import decode_reference
from .voice import SynthesisParams, Voice
from .world import StreamAdapter, VoiceTransform

__all__ = ["PROBE_SENTENCE", "Synthesizer", "VoiceFit"]

PROBE_SENTENCE = "Please call Stella and ask her to bring these things with her from the store."
"""What the bundled voice says when a transform is fitted (a phonetically rich classic)."""

ReferenceAudio = str | Path | bytes | tuple[np.ndarray, int]


class VoiceFit:
    """A fitted reference: its transform, statistics and similarity figures."""

    def __init__(self, fit: Fit, stats: dict[str, float], summary: dict[str, Any]) -> None:
        self.transform = fit.transform
        self.fit = fit
        self.stats = stats
        self.summary = summary | {
            "similarity_before": round(fit.similarity_before, 3),
            "similarity": round(fit.similarity_after, 3),
        }


class Synthesizer:
    """Text (and optionally a reference voice) in, waveform out. Not thread-safe."""

    def __init__(self, device: str = "cpu", precision: str = "float32") -> None:
        """Raises: ValueError / RuntimeError as :meth:`engine.voice.Voice.load`."""
        self.voice = Voice.load(device=device, precision=precision)  # type: ignore[arg-type]
        self.sample_rate = self.voice.sample_rate
        self._encoder: Any = None
        self._probe: Probe | None = None
        self._fits: dict[str, VoiceFit] = {}

    # -- public API ------------------------------------------------------------------

    def tts(
        self,
        text: str,
        emotion: str | None = None,
        reference_audio: ReferenceAudio | None = None,
        speed: float = 1.0,
        pitch_scale: float = 1.0,
        seed: int | None = None,
    ) -> np.ndarray:
        """One text to a float32 waveform at :attr:`sample_rate`.

        Raises:
            ValueError: bad text (``engine.frontend.TextError``), a bad reference
                (``engine.reference.ReferenceAudioError``), an emotion (not available
                yet), or controls out of range.
        """
        return self.tts_batch([text], [emotion], [reference_audio], speed, pitch_scale, seed)[0]

    def tts_batch(
        self,
        texts: Sequence[str],
        emotions: Sequence[str | None] | None = None,
        reference_audios: Sequence[ReferenceAudio | None] | None = None,
        speed: float = 1.0,
        pitch_scale: float = 1.0,
        seed: int | None = None,
    ) -> list[np.ndarray]:
        """Several texts, synthesized as one batch; each may have its own reference.

        Raises:
            ValueError: as :meth:`tts`, for the first bad item.
        """
        n = len(texts)
        emotions = list(emotions) if emotions is not None else [None] * n
        refs = list(reference_audios) if reference_audios is not None else [None] * n
        if len(emotions) != n or len(refs) != n:
            raise ValueError("texts, emotions and reference_audios must have the same length")
        for emotion in emotions:
            if emotion not in (None, "neutral"):
                raise ValueError(f"emotion {emotion!r} is not available yet; only neutral")
        if not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be in [0.25, 4], got {speed}")
        if not 0.5 <= pitch_scale <= 2.0:
            raise ValueError(f"pitch_scale must be in [0.5, 2], got {pitch_scale}")
        params = SynthesisParams(length_scale=1.0 / speed, seed=seed)
        transforms = [self._transform(r, pitch_scale) for r in refs]
        groups = [self.voice.requests(t, params)[0] for t in texts]
        audio = self.voice.synthesize_groups(groups)
        return [self._adapt(a, tr) for a, tr in zip(audio, transforms)]

    def register(self, reference_audio: ReferenceAudio) -> VoiceFit:
        """Decode, embed and fit a reference (cached by content).

        Raises:
            engine.reference.ReferenceAudioError: the clip cannot be used.
            OSError: a path cannot be read.
        """
        data = _reference_bytes(reference_audio)
        raw_key = hashlib.sha256(data).hexdigest()
        if raw_key in self._fits:  # the very same upload: no decoding at all
            return self._fits[raw_key]
        reference = decode_reference(data, 16000)
        key = hashlib.sha256(np.ascontiguousarray(reference.audio).tobytes()).hexdigest()
        cached = self._fits.get(key)
        if cached is not None:
            self._fits[raw_key] = cached
            return cached
        encoder, probe = self._tools()
        embedding = encoder.embed(reference.audio, 16000)
        stats = voice_statistics(reference.audio, 16000)
        fit = fit_transform(embedding, stats, probe, encoder)
        self._fits[key] = self._fits[raw_key] = VoiceFit(fit, stats, reference.summary())
        return self._fits[key]

    def save_wav(self, waveform: np.ndarray, path: str | Path) -> None:
        """16-bit PCM WAV at :attr:`sample_rate`. Raises: OSError."""
        import soundfile

        pcm = np.clip(np.round(np.asarray(waveform, np.float32) * 32767), -32768, 32767)
        soundfile.write(str(path), pcm.astype(np.int16), self.sample_rate, subtype="PCM_16")

    def adapt(self, audio: np.ndarray, transform: VoiceTransform | None) -> np.ndarray:
        """Move the bundled voice's audio by ``transform`` (None: unchanged)."""
        return self._adapt(audio, transform)

    # -- internals -------------------------------------------------------------------

    def _tools(self) -> tuple[Any, Probe]:
        if self._encoder is None or self._probe is None:
            from .speaker import SpeakerEncoder

            self._encoder = SpeakerEncoder.load(device=self.voice.device)
            (probe,) = self.voice.synthesize_texts(
                [PROBE_SENTENCE], SynthesisParams.deterministic()
            )
            self._probe = Probe.from_audio(probe, self.sample_rate)
        return self._encoder, self._probe

    def _transform(self, ref: ReferenceAudio | None, pitch_scale: float) -> VoiceTransform | None:
        base = VoiceTransform() if ref is None else self.register(ref).transform
        if pitch_scale != 1.0:
            base = replace(base, f0_shift_st=base.f0_shift_st + 12 * math.log2(pitch_scale))
        return None if base.is_identity() else base

    def _adapt(self, audio: np.ndarray, transform: VoiceTransform | None) -> np.ndarray:
        if transform is None:
            return audio  # the bundled voice: no WORLD pass at all
        _, probe = self._tools()
        adapter = StreamAdapter(transform, self.sample_rate, probe.stats["f0_median_hz"])
        return np.concatenate([adapter.process(audio), adapter.flush()])


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
