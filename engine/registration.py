"""Voice registration: reference bytes → vetted clip → embedding → fitted transform.

The one pipeline behind both the server's ``voice.register`` (``server/voices.py``,
which adds storage, ownership and threads) and ``Synthesizer.register``. It is
synchronous and blocking (decoding, torch and the fitting search): callers run it
off their event loop. Two steps, so that a caller can look the clip up between them:

1. :func:`decode`: decode and vet the upload (``engine/reference.py``) and compute its
   **content hash**, the one cache key of a registered voice: sha256 of the decoded
   float32 samples plus :data:`MODEL_VERSION`, so a re-encoded copy of the same audio
   finds the same voice, and a new embedding model or fitting stage never reuses old
   profiles.
2. :func:`analyse`: embed it (GE2E, ``engine/speaker.py``) and, given the bundled
   voice's probe, fit the transform that moves that voice toward it
   (``engine/adapt.py``).

:func:`upload_key` hashes the raw upload, for callers that remember which upload gave
which content hash and so skip the decode when the very same bytes come again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from .adapt import Fit, Probe, fit_transform, voice_statistics
from .reference import Reference, ReferenceLimits, decode_reference
from .speaker import SpeakerEncoder
from .transform import VoiceTransform

__all__ = [
    "MODEL_VERSION",
    "REFERENCE_RATE",
    "Decoded",
    "Registration",
    "analyse",
    "content_hash",
    "decode",
    "register",
    "transform_from_stats",
    "upload_key",
]

MODEL_VERSION: Final = "ge2e-1+psola-1"
"""Part of every content hash: names the embedding model and the stage transforms are
fitted on, so profiles from another model or stage (a transform fitted on WORLD does
not fit PSOLA) are never reused."""
REFERENCE_RATE: Final = 16000
"""Rate the reference is decoded at (the speaker encoder's)."""
_SIMILARITIES: Final = ("similarity", "similarity_before")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A vetted reference clip and its content hash (step 1)."""

    reference: Reference
    content_hash: str


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registered voice is made of (step 2)."""

    content_hash: str
    """The cache key (see the module docstring)."""
    embedding: np.ndarray
    """GE2E speaker embedding, float32 [256], L2-normalised."""
    summary: dict[str, float | int | str]
    """What the user is told: the clip's summary plus, when fitted, the rounded
    similarities of the bundled voice to it before and after the transform."""
    stats: dict[str, float] = field(default_factory=dict)
    """The voice's F0 statistics, the fitted transform's fields and the similarities
    (empty without a fit): what a stored profile keeps (see :func:`transform_from_stats`)."""
    fit: Fit | None = None
    """The fitted transform; ``None`` when no probe was given."""

    @property
    def transform(self) -> VoiceTransform | None:
        """The fitted transform that moves the bundled voice toward this one."""
        return None if self.fit is None else self.fit.transform


def upload_key(data: bytes) -> str:
    """sha256 of an upload's bytes: the same bytes again, found without decoding."""
    return hashlib.sha256(data).hexdigest()


def content_hash(audio: np.ndarray) -> str:
    """The content hash of decoded reference samples (see the module docstring)."""
    digest = hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes())
    digest.update(MODEL_VERSION.encode())
    return digest.hexdigest()


def decode(data: bytes, limits: ReferenceLimits | None = None) -> Decoded:
    """Step 1: decode and vet an upload at :data:`REFERENCE_RATE`, and hash it.

    Raises:
        engine.reference.ReferenceAudioError: the clip is refused (its ``code`` says why).
    """
    reference = decode_reference(data, REFERENCE_RATE, limits or ReferenceLimits())
    return Decoded(reference, content_hash(reference.audio))


def analyse(decoded: Decoded, encoder: SpeakerEncoder, probe: Probe | None) -> Registration:
    """Step 2: embed the clip and, with the bundled voice's ``probe``, fit a transform.

    Raises:
        ValueError: the clip has no voiced speech to fit pitch to.
    """
    audio = np.array(decoded.reference.audio)  # a writable copy for torch
    embedding = encoder.embed(audio, REFERENCE_RATE)
    summary = dict(decoded.reference.summary())
    if probe is None:
        return Registration(decoded.content_hash, embedding, summary)
    statistics = voice_statistics(audio, REFERENCE_RATE)
    fit = fit_transform(embedding, statistics, probe, encoder)
    stats = (
        statistics
        | fit.transform.to_dict()
        | {"similarity_before": fit.similarity_before, "similarity": fit.similarity_after}
    )
    summary |= {key: round(stats[key], 3) for key in _SIMILARITIES}
    return Registration(decoded.content_hash, embedding, summary, stats, fit)


def register(
    data: bytes,
    encoder: SpeakerEncoder,
    probe: Probe | None,
    limits: ReferenceLimits | None = None,
) -> Registration:
    """Both steps at once.

    Raises:
        engine.reference.ReferenceAudioError: the clip is refused.
        ValueError: the clip has no voiced speech to fit pitch to.
    """
    return analyse(decode(data, limits), encoder, probe)


def transform_from_stats(stats: Mapping[str, float]) -> VoiceTransform:
    """The fitted transform kept in a registration's (or stored profile's) ``stats``."""
    keys = VoiceTransform().to_dict()
    return VoiceTransform.from_dict({k: v for k, v in stats.items() if k in keys})
