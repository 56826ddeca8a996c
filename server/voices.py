"""Zero-shot voice registration: reference clip in, speaker profile stored (SPEC.md §4.6).

``Voices`` is owned by the ``App``. It runs the engine's registration pipeline
(``engine/registration.py``: decode and vet, embed, fit) on one dedicated thread, never
on the event loop, so at most one clip is analysed at a time (each connection may have
``limits.max_registrations`` waiting); what it adds is storage, ownership and names.

A profile is found again by the pipeline's **content hash** (a re-encoded copy of the
same audio is a hit too), looked up between decoding and embedding. That hash needs the
decode; to make re-registering the *same bytes* cheap, an in-process map from the
upload's hash to its content hash skips it (only a hash of the upload runs on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from voxlive.engine import registration
from voxlive.engine.adapt import Probe
from voxlive.engine.reference import ReferenceAudioError, ReferenceLimits
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.transform import VoiceTransform
from voxlive.protocol.messages import VoiceInfo, VoiceRegister, VoiceSummary
from voxlive.protocol.types import ErrorCode

from .errors import wire_code
from .store import VoiceProfile, VoiceStore, usable_by

__all__ = [
    "Registered",
    "RegistrationError",
    "Voices",
    "summary_of",
]

logger = logging.getLogger(__name__)

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
        upload_key = registration.upload_key(event.audio)
        seen = self.by_upload.get(upload_key)
        if seen is not None:
            known = await self.store.find_by_hash(seen)
            if known is not None:
                return await self._reuse(known, event, owner)
        loop = asyncio.get_running_loop()
        try:
            decoded = await loop.run_in_executor(
                self.pool, registration.decode, event.audio, self.limits
            )
        except ReferenceAudioError as exc:
            raise RegistrationError(wire_code(exc.code), str(exc)) from exc
        self._remember(upload_key, decoded.content_hash)
        known = await self.store.find_by_hash(decoded.content_hash)
        if known is not None:
            return await self._reuse(known, event, owner)
        self.cache_misses += 1
        probe = None if self.adapter is None else self.adapter.probe
        done = await loop.run_in_executor(
            self.pool, registration.analyse, decoded, self.encoder, probe
        )
        profile = VoiceProfile(
            voice_id=event.name or _new_voice_id(),
            content_hash=done.content_hash,
            embedding=tuple(float(x) for x in done.embedding),
            stats=dict(done.stats),
            summary=dict(done.summary),
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
        if taken is not None and not usable_by(taken, owner):
            raise RegistrationError("duplicate_id", f"voice name {name} is taken")

    async def _reuse(self, known: VoiceProfile, event: VoiceRegister, owner: str) -> Registered:
        """A known clip: answer with its profile, or copy it under the asked name/scope."""
        wanted = event.name or (known.voice_id if usable_by(known, owner) else None)
        same = wanted == known.voice_id and known.scope == event.scope
        if same and usable_by(known, owner):
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

    def _remember(self, upload_key: str, content_hash: str) -> None:
        self.by_upload[upload_key] = content_hash
        self.by_upload.move_to_end(upload_key)
        while len(self.by_upload) > _UPLOAD_MAP_SIZE:
            self.by_upload.popitem(last=False)

    async def find(self, voice: str, owner: str) -> VoiceProfile | None:
        """The registered voice ``voice`` if the session ``owner`` may use it."""
        profile = await self.store.get(voice)
        return profile if profile is not None and usable_by(profile, owner) else None

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
    """Registered voices are fitted against ``probe`` and moved toward (WORLD stage)."""

    def __init__(self, probe: Probe, sample_rate: int) -> None:
        self.probe = probe
        """The bundled voice's probe sentence, analysed: what registrations fit against."""
        self.sample_rate = sample_rate

    def transform_for(self, profile: VoiceProfile) -> VoiceTransform:
        """The fitted transform that moves the bundled voice toward ``profile``."""
        return registration.transform_from_stats(profile.stats)


def summary_of(profile: VoiceProfile) -> VoiceSummary:
    """The profile's summary as the protocol carries it (scalar values only)."""
    return {k: v for k, v in profile.summary.items() if isinstance(v, str | int | float | bool)}


def _new_voice_id() -> str:
    return "v-" + secrets.token_hex(8)
