"""Zero-shot voice registration: reference clip in, speaker profile stored (SPEC.md §4.6).

``Voices`` is owned by the ``App``. It decodes and vets an upload
(``engine.reference.decode_reference``) and embeds it (``SpeakerEncoder``) on one
dedicated thread, never on the event loop, so at most one clip is analysed at a time
(each connection may have ``limits.max_registrations`` waiting).

A profile is found again by the **content hash**: sha256 of the decoded float32 samples
plus ``MODEL_VERSION``, so a re-encoded copy of the same audio is a hit too. That hash
needs the decode; to make re-registering the *same bytes* cheap, an in-process map from
sha256(upload) to content hash skips it (only a hash of the upload runs on the loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np

from voxlive.engine.adapt import Probe, fit_transform, voice_statistics
from voxlive.engine.reference import (
    Reference,
    ReferenceAudioError,
    ReferenceLimits,
    decode_reference,
)
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.world import VoiceTransform
from voxlive.protocol.messages import VoiceInfo, VoiceRegister, VoiceSummary
from voxlive.protocol.types import ErrorCode

from .errors import wire_code
from .store import VoiceProfile, VoiceStore

__all__ = [
    "MODEL_VERSION",
    "REFERENCE_RATE",
    "Registered",
    "RegistrationError",
    "Voices",
    "summary_of",
]

logger = logging.getLogger(__name__)

MODEL_VERSION: Final = "ge2e-1"
"""Part of every content hash: a new embedding model must not reuse old profiles."""
REFERENCE_RATE: Final = 16000
"""Rate the reference is decoded at (the speaker encoder's)."""
_UPLOAD_MAP_SIZE: Final = 4096


class RegistrationError(Exception):
    """A registration was refused; ``code`` and the message go to the client."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Registered:
    """The outcome of a successful registration."""

    profile: VoiceProfile
    cached: bool
    """Nothing was decoded or embedded: the clip was known."""


class Voices:
    """Registered voices of one server process; see the module docstring.

    Args:
        store: Where profiles live (shared with other processes when it is Redis).
        encoder: Speaker embedding network.
        max_reference_bytes: Largest upload accepted.
        reserved: Voice names that cannot be registered (the built-in voices).
    """

    def __init__(
        self,
        store: VoiceStore,
        encoder: SpeakerEncoder,
        *,
        max_reference_bytes: int,
        reserved: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.adapter: VoiceAdapter | None = None
        """Set by the app: registration then also fits the adaptation transform."""
        # 2 minutes of audio is plenty to find the best 30 s, and bounds the worst
        # legal clip (e.g. a tiny FLAC of 384 kHz noise) to seconds of decoding.
        self.limits = ReferenceLimits(max_bytes=max_reference_bytes, max_decoded_seconds=120.0)
        self.reserved = frozenset(reserved)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="voxlive-voices")
        self.by_upload: OrderedDict[str, str] = OrderedDict()
        self.inflight = 0
        self.cache_hits = 0
        """Registrations answered from a known clip (nothing decoded or embedded)."""
        self.cache_misses = 0
        """Registrations that embedded a new clip."""

    async def register(self, event: VoiceRegister, owner: str) -> Registered:
        """Register the clip of ``event`` for the session ``owner``.

        Raises:
            RegistrationError: the clip was refused (a reference error code) or the
                name is taken (``duplicate_id``).
        """
        self.inflight += 1
        try:
            return await self._register(event, owner)
        finally:
            self.inflight -= 1

    async def _register(self, event: VoiceRegister, owner: str) -> Registered:
        await self._check_name(event.name, owner)
        upload_key = hashlib.sha256(event.audio).hexdigest()
        seen = self.by_upload.get(upload_key)
        if seen is not None:
            known = await self.store.find_by_hash(seen)
            if known is not None:
                return await self._reuse(known, event, owner)
        loop = asyncio.get_running_loop()
        try:
            reference, content_hash = await loop.run_in_executor(
                self.pool, self._decode, event.audio
            )
        except ReferenceAudioError as exc:
            raise RegistrationError(wire_code(exc.code), str(exc)) from exc
        self._remember(upload_key, content_hash)
        known = await self.store.find_by_hash(content_hash)
        if known is not None:
            return await self._reuse(known, event, owner)
        self.cache_misses += 1
        embedding, stats = await loop.run_in_executor(self.pool, self._embed, reference)
        summary = dict(reference.summary())
        for key in ("similarity", "similarity_before"):
            if key in stats:
                summary[key] = round(stats[key], 3)
        profile = VoiceProfile(
            voice_id=event.name or _new_voice_id(),
            content_hash=content_hash,
            embedding=embedding,
            stats=stats,
            summary=summary,
            scope=event.scope,
            owner=owner,
        )
        await self.store.put(profile)
        return Registered(profile, cached=False)

    async def _check_name(self, name: str | None, owner: str) -> None:
        if name is None:
            return
        if name in self.reserved:
            raise RegistrationError("duplicate_id", f"voice {name} is a built-in voice")
        taken = await self.store.get(name)
        if taken is not None and not _visible(taken, owner):
            raise RegistrationError("duplicate_id", f"voice name {name} is taken")

    async def _reuse(self, known: VoiceProfile, event: VoiceRegister, owner: str) -> Registered:
        """A known clip: answer with its profile, or copy it under the asked name/scope."""
        wanted = event.name or (known.voice_id if _visible(known, owner) else None)
        same = wanted == known.voice_id and known.scope == event.scope
        if same and _visible(known, owner):
            self.cache_hits += 1
            return Registered(known, cached=True)
        self.cache_hits += 1
        profile = VoiceProfile(
            voice_id=wanted or _new_voice_id(),
            content_hash=known.content_hash,
            embedding=known.embedding,
            stats=dict(known.stats),
            summary=dict(known.summary),
            scope=event.scope,
            owner=owner,
        )
        await self.store.put(profile)
        return Registered(profile, cached=True)

    def _decode(self, audio: bytes) -> tuple[Reference, str]:
        """On the voices thread: decode and vet, then hash the samples."""
        reference = decode_reference(audio, REFERENCE_RATE, self.limits)
        digest = hashlib.sha256(np.ascontiguousarray(reference.audio, np.float32).tobytes())
        digest.update(MODEL_VERSION.encode())
        return reference, digest.hexdigest()

    def _embed(self, reference: Reference) -> tuple[tuple[float, ...], dict[str, float]]:
        """On the voices thread: the speaker embedding and, with an adapter, the fit."""
        audio = np.array(reference.audio)  # a writable copy for torch
        embedding = self.encoder.embed(audio, REFERENCE_RATE)
        stats: dict[str, float] = {}
        if self.adapter is not None:
            stats = self.adapter.fit(embedding, audio, REFERENCE_RATE, self.encoder)
        return tuple(float(x) for x in embedding), stats

    def _remember(self, upload_key: str, content_hash: str) -> None:
        self.by_upload[upload_key] = content_hash
        self.by_upload.move_to_end(upload_key)
        while len(self.by_upload) > _UPLOAD_MAP_SIZE:
            self.by_upload.popitem(last=False)

    async def find(self, voice: str, owner: str) -> VoiceProfile | None:
        """The registered voice ``voice`` if the session ``owner`` may use it."""
        profile = await self.store.get(voice)
        return profile if profile is not None and _visible(profile, owner) else None

    async def listing(self, owner: str) -> tuple[VoiceInfo, ...]:
        """Persistent voices and those of the session ``owner``."""
        profiles = await self.store.list(owner=owner)
        return tuple(
            VoiceInfo(p.voice_id, p.scope, summary_of(p))
            for p in sorted(profiles, key=lambda p: p.voice_id)
        )

    async def delete(self, voice: str, owner: str) -> bool:
        """Delete ``voice`` if the session ``owner`` can see it; return whether it did."""
        if await self.find(voice, owner) is None:
            return False
        return await self.store.delete(voice)

    async def drop_session(self, owner: str) -> None:
        """Forget the session-scoped voices of ``owner`` (its connection closed)."""
        dropped = await self.store.drop_owner(owner)
        if dropped:
            logger.info("dropped %d session voices of %s", dropped, owner)

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        await self.store.close()


class VoiceAdapter:
    """Fits registered voices and moves the bundled voice toward them (WORLD stage)."""

    def __init__(self, probe: Probe, sample_rate: int) -> None:
        self.probe = probe
        self.sample_rate = sample_rate

    def fit(
        self, embedding: np.ndarray, audio: np.ndarray, rate: int, encoder: SpeakerEncoder
    ) -> dict[str, float]:
        """Statistics, fitted transform and similarities of a reference (blocking)."""
        stats = voice_statistics(audio, rate)
        fit = fit_transform(embedding, stats, self.probe, encoder)
        return (
            stats
            | fit.transform.to_dict()
            | {
                "similarity_before": fit.similarity_before,
                "similarity": fit.similarity_after,
            }
        )

    def transform_for(self, profile: VoiceProfile) -> VoiceTransform:
        """The fitted transform that moves the bundled voice toward ``profile``."""
        keys = VoiceTransform().to_dict()
        return VoiceTransform.from_dict({k: v for k, v in profile.stats.items() if k in keys})


def _visible(profile: VoiceProfile, owner: str) -> bool:
    return profile.scope == "persistent" or profile.owner == owner


def summary_of(profile: VoiceProfile) -> VoiceSummary:
    """The profile's summary as the protocol carries it (scalar values only)."""
    return {k: v for k, v in profile.summary.items() if isinstance(v, str | int | float | bool)}


def _new_voice_id() -> str:
    return "v-" + secrets.token_hex(8)
