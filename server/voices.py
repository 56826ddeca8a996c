"""Zero-shot voice registration: reference clip in, speaker profile stored (SPEC.md §4.6).

``Voices`` is owned by the ``App``. It runs the engine's registration pipeline
(``engine/registration.py``: decode and vet, embed, fit) on one dedicated thread, never
on the event loop, so at most one clip is analysed at a time (each connection may have
``limits.max_registrations`` waiting); what it adds is storage, ownership and names.

A profile is found again by the pipeline's **content hash** (a re-encoded copy of the
same audio is a hit too), looked up between decoding and embedding. That hash needs the
decode; to make re-registering the *same bytes* cheap, an in-process map from the
upload's hash to its content hash skips it (only a hash of the upload runs on the loop).
The map is bounded: ``upload_cache_entries`` uploads, each for ``upload_cache_age_s``.

Ownership (SPEC.md §4.6): a cache hit is answered only from profiles of the requester's
tenant, and never hands over, renames, rescopes or re-owns another session's profile: the
requester gets a voice it can already use under the name and scope it asked for, or a
new profile of its own made from the known one (nothing analysed again). Another
tenant's profiles are never seen: the same clip is analysed anew for each tenant.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from time import monotonic
from typing import Final

from voxlive.engine import registration
from voxlive.engine.adapt import Probe
from voxlive.engine.reference import ReferenceAudioError, ReferenceLimits
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.transform import VoiceTransform
from voxlive.protocol.messages import VoiceInfo, VoiceRegister, VoiceSummary
from voxlive.protocol.types import ErrorCode

from .errors import wire_code
from .store import Owner, VoiceProfile, VoiceStore, usable_by

__all__ = [
    "UPLOAD_CACHE_AGE_S",
    "UPLOAD_CACHE_ENTRIES",
    "Owner",
    "Registered",
    "RegistrationError",
    "Voices",
    "profile_version",
    "summary_of",
]

logger = logging.getLogger(__name__)

UPLOAD_CACHE_ENTRIES: Final = 4096
"""Uploads whose bytes are recognised without decoding (about 100 bytes each)."""
UPLOAD_CACHE_AGE_S: Final = 24 * 3600.0
"""How long an upload's bytes are recognised without decoding them, in seconds."""


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
        upload_cache_entries: Uploads recognised by their bytes, at most.
        upload_cache_age_s: For how long each, in seconds.

    Raises:
        ValueError: a cache bound below 1 entry or 0 s.
    """

    def __init__(
        self,
        store: VoiceStore,
        encoder: SpeakerEncoder,
        *,
        max_reference_bytes: int,
        reserved: tuple[str, ...] = (),
        upload_cache_entries: int = UPLOAD_CACHE_ENTRIES,
        upload_cache_age_s: float = UPLOAD_CACHE_AGE_S,
    ) -> None:
        if upload_cache_entries < 1 or not upload_cache_age_s > 0:
            raise ValueError("the upload cache needs at least 1 entry and a positive age")
        self.store = store
        self.encoder = encoder
        self.adapter: VoiceAdapter | None = None
        """Set by the app: registration then also fits the adaptation transform."""
        # 2 minutes of audio is plenty to find the best 30 s, and bounds the worst
        # legal clip (e.g. a tiny FLAC of 384 kHz noise) to seconds of decoding.
        self.limits = ReferenceLimits(max_bytes=max_reference_bytes, max_decoded_seconds=120.0)
        self.reserved = frozenset(reserved)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="voxlive-voices")
        self.upload_cache_entries = upload_cache_entries
        self.upload_cache_age_s = upload_cache_age_s
        self.by_upload: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """Upload hash → (content hash, when it was decoded: ``monotonic()``)."""
        self.inflight = 0
        self.cache_hits = 0
        """Registrations answered from a known clip (nothing decoded or embedded)."""
        self.cache_misses = 0
        """Registrations that embedded a new clip."""

    async def register(self, event: VoiceRegister, owner: Owner) -> Registered:
        """Register the clip of ``event`` for ``owner`` (a session and its tenant).

        Raises:
            RegistrationError: the clip was refused (a reference error code) or the
                name is taken (``duplicate_id``).
        """
        self.inflight += 1
        try:
            return await self._register(event, owner)
        finally:
            self.inflight -= 1

    async def _register(self, event: VoiceRegister, owner: Owner) -> Registered:
        await self._check_name(event.name, owner)
        upload_key = registration.upload_key(event.audio)
        seen = self._seen(upload_key)
        if seen is not None:
            known = await self._known(seen, owner)
            if known:
                return await self._reuse(known, event, owner)
        loop = asyncio.get_running_loop()
        try:
            decoded = await loop.run_in_executor(
                self.pool, registration.decode, event.audio, self.limits
            )
        except ReferenceAudioError as exc:
            raise RegistrationError(wire_code(exc.code), str(exc)) from exc
        self._remember(upload_key, decoded.content_hash)
        known = await self._known(decoded.content_hash, owner)
        if known:
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
            owner=owner.session,
            tenant=owner.tenant,
            consent=event.consent,
        )
        await self._put(profile, event, owner)
        return Registered(profile, cached=False)

    async def _check_name(self, name: str | None, owner: Owner) -> None:
        """Refuse a ``name`` that is built in or used by a voice ``owner`` cannot use.

        Voice names are one namespace per store: another session's or another tenant's
        voice is refused alike, and the error says no more than that the name is taken.
        """
        if name is None:
            return
        if name in self.reserved:
            raise RegistrationError("duplicate_id", f"voice {name} is a built-in voice")
        taken = await self.store.get(name)
        if taken is not None and not usable_by(taken, owner):
            raise RegistrationError("duplicate_id", f"voice name {name} is taken")

    async def _known(self, content_hash: str, owner: Owner) -> list[VoiceProfile]:
        """The profiles of a clip that may answer ``owner`` from the cache: its tenant's."""
        found = await self.store.find_by_hash(content_hash)
        return [p for p in found if p.tenant == owner.tenant]

    async def _reuse(
        self, known: list[VoiceProfile], event: VoiceRegister, owner: Owner
    ) -> Registered:
        """A known clip (``known``: its profiles in ``owner``'s tenant, oldest first).

        A voice ``owner`` can use already, with the name (if one was asked) and scope
        asked for, is the answer as it is; otherwise ``owner`` gets a profile of its own,
        copied from the oldest (the name asked for, else a new one). No known profile is
        changed, but for one this owner can use under the name it asked for, which the
        new one replaces (SPEC.md §4.6: registering under a usable voice's name).
        A consent the request carries is recorded on the voice it is answered with.
        """
        self.cache_hits += 1
        for p in known:
            named = event.name is None or p.voice_id == event.name
            if named and p.scope == event.scope and usable_by(p, owner):
                if event.consent is not None and event.consent != p.consent:
                    p = replace(p, consent=event.consent)
                    await self.store.put(p)
                return Registered(p, cached=True)
        source = known[0]
        profile = VoiceProfile(
            voice_id=event.name or _new_voice_id(),
            content_hash=source.content_hash,
            embedding=source.embedding,
            stats=dict(source.stats),
            summary=dict(source.summary),
            scope=event.scope,
            owner=owner.session,
            tenant=owner.tenant,
            consent=event.consent,
        )
        await self._put(profile, event, owner)
        return Registered(profile, cached=True)

    async def _put(self, profile: VoiceProfile, event: VoiceRegister, owner: Owner) -> None:
        # The name was free when the request began; another session may have taken it
        # while the clip was analysed.
        await self._check_name(event.name, owner)
        await self.store.put(profile)

    def _seen(self, upload_key: str) -> str | None:
        """The content hash of an upload with these bytes, if decoded recently enough."""
        entry = self.by_upload.get(upload_key)
        if entry is None:
            return None
        content_hash, at = entry
        if monotonic() - at > self.upload_cache_age_s:
            del self.by_upload[upload_key]
            return None
        return content_hash

    def _remember(self, upload_key: str, content_hash: str) -> None:
        now = monotonic()
        self.by_upload[upload_key] = (content_hash, now)
        self.by_upload.move_to_end(upload_key)
        oldest = next(iter(self.by_upload.values()))
        while len(self.by_upload) > self.upload_cache_entries or (
            now - oldest[1] > self.upload_cache_age_s
        ):
            self.by_upload.popitem(last=False)
            oldest = next(iter(self.by_upload.values()))

    async def find(self, voice: str, owner: Owner) -> VoiceProfile | None:
        """The registered voice ``voice`` if ``owner`` may use it."""
        profile = await self.store.get(voice)
        return profile if profile is not None and usable_by(profile, owner) else None

    async def listing(self, owner: Owner) -> tuple[VoiceInfo, ...]:
        """The persistent voices of ``owner``'s tenant and those of its session."""
        profiles = await self.store.list(owner=owner)
        return tuple(
            VoiceInfo(p.voice_id, p.scope, summary_of(p), p.consent)
            for p in sorted(profiles, key=lambda p: p.voice_id)
        )

    async def delete(self, voice: str, owner: Owner) -> bool:
        """Delete ``voice`` if ``owner`` can see it; return whether it did."""
        return await self.remove(voice, owner) is not None

    async def remove(self, voice: str, owner: Owner) -> VoiceProfile | None:
        """Delete ``voice`` if ``owner`` can see it; return the profile deleted, if any."""
        profile = await self.find(voice, owner)
        if profile is None or not await self.store.delete(voice):
            return None
        return profile

    async def drop_session(self, owner: str) -> None:
        """Forget the session-scoped voices of the session ``owner`` (its connection closed)."""
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


def profile_version(profile: VoiceProfile) -> str:
    """The voice's id and a hash of what its transform is fitted from (the clip's
    content hash, which names the model version, and the fitted stats): the audio cache's
    name for the voice, so that a voice registered again with another clip misses."""
    fitted = hashlib.sha256(profile.content_hash.encode())
    fitted.update(json.dumps(profile.stats, sort_keys=True).encode())
    return f"{profile.voice_id}:{fitted.hexdigest()[:32]}"


def summary_of(profile: VoiceProfile) -> VoiceSummary:
    """The profile's summary as the protocol carries it (scalar values only)."""
    return {k: v for k, v in profile.summary.items() if isinstance(v, str | int | float | bool)}


def _new_voice_id() -> str:
    return "v-" + secrets.token_hex(8)
