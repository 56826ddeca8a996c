"""Voice profiles, cached: in process by default, in Redis when configured.

A profile is keyed twice: by its voice id (what clients name in ``speak``) and
by the content hash of the decoded reference plus the model version, so that
registering the same clip again is a cache hit (no decoding of embeddings or
fitting again). Voices are either scoped to the session that registered them
(dropped when it closes) or persistent (kept; in Redis they survive restarts
and are shared by every gateway and worker).

Who sees what (SPEC.md §4.6): an ``Owner`` is a session and its tenant. A session
voice is its session's alone; a persistent one is shared by every session of the
tenant that registered it (sessions without a tenant share theirs) and invisible to
other tenants. Several profiles may hold the same clip (one per owner that registered
it), so the content-hash index maps a hash to a set of voice ids.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgpack

from voxlive.protocol.messages import Consent
from voxlive.protocol.schema import consent_from_wire, consent_to_wire

__all__ = [
    "MemoryVoiceStore",
    "Owner",
    "RedisVoiceStore",
    "Scope",
    "VoiceProfile",
    "VoiceStore",
    "open_store",
    "usable_by",
]

Scope = Literal["session", "persistent"]
_PREFIX = "voxlive:voice:"
_BY_HASHES = "voxlive:voicehashes:"
_BY_HASH = "voxlive:voicehash:"
"""Before several profiles could share a clip: hash → one id. Read (and cleaned up), no
longer written, so profiles stored by an earlier server are still found by content."""
_BY_OWNER = "voxlive:voiceowner:"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who asks: a session (unique across the servers sharing a store) and its tenant."""

    session: str
    tenant: str | None = None
    """The API key's tenant; ``None`` for a server without keys (such sessions share
    persistent voices among themselves, and only among themselves)."""


@dataclass(frozen=True, slots=True)
class VoiceProfile:
    """What registration learned about a voice."""

    voice_id: str
    content_hash: str
    """The registration pipeline's content hash (``engine.registration.content_hash``)."""
    embedding: tuple[float, ...]
    """Speaker embedding (L2-normalised)."""
    stats: dict[str, float] = field(default_factory=dict)
    """Measured voice statistics and fitted adaptation parameters."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Quality summary reported to the client."""
    scope: Scope = "session"
    owner: str | None = None
    """Session that registered it (session scope)."""
    created: float = field(default_factory=time.time)
    tenant: str | None = None
    """Tenant of the session that registered it: a persistent voice is that tenant's."""
    consent: Consent | None = None
    """The speaker's consent its registration carried (SPEC.md §4.6, v1.7), if any."""

    def to_bytes(self) -> bytes:
        data: bytes = msgpack.packb(
            {
                "voice_id": self.voice_id,
                "content_hash": self.content_hash,
                "embedding": list(self.embedding),
                "stats": self.stats,
                "summary": self.summary,
                "scope": self.scope,
                "owner": self.owner,
                "created": self.created,
                "tenant": self.tenant,
                "consent": None if self.consent is None else consent_to_wire(self.consent),
            }
        )
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> VoiceProfile:
        """Raises: ValueError on data that is not a stored profile."""
        try:
            d = msgpack.unpackb(data, raw=False)
            return cls(
                voice_id=d["voice_id"],
                content_hash=d["content_hash"],
                embedding=tuple(float(x) for x in d["embedding"]),
                stats=dict(d["stats"]),
                summary=dict(d["summary"]),
                scope=d["scope"],
                owner=d["owner"],
                created=float(d["created"]),
                tenant=d.get("tenant"),  # absent from profiles stored before tenants
                consent=_stored_consent(d.get("consent")),  # absent before consents
            )
        except Exception as exc:  # msgpack and KeyError/TypeError alike
            raise ValueError("not a stored voice profile") from exc


class VoiceStore(Protocol):
    """Where profiles live. All methods are coroutines; ``hits``/``misses`` count lookups.

    The store keeps profiles; who may see them is decided by ``usable_by`` (``list``
    applies it), and ``find_by_hash`` returns every profile of a clip, whoever's.
    """

    hits: int
    misses: int

    async def get(self, voice_id: str) -> VoiceProfile | None: ...
    async def find_by_hash(self, content_hash: str) -> list[VoiceProfile]:
        """Every profile of the clip, oldest first (``[]``: none)."""

    async def put(self, profile: VoiceProfile) -> None:
        """Store ``profile``, replacing whatever had its voice id."""

    async def delete(self, voice_id: str) -> bool: ...
    async def list(self, owner: Owner | None = None) -> list[VoiceProfile]:
        """The profiles ``owner`` may use; ``None``: all of them."""

    async def drop_owner(self, owner: str) -> int:
        """Delete the session-scoped profiles of the session ``owner``; return how many."""

    async def close(self) -> None: ...


class MemoryVoiceStore:
    """In-process store (the embedded default): session voices kept least-recently-used
    within ``capacity``; persistent voices are never evicted (a user's registered voice
    is not a cache entry), they only count toward it."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self._voices: OrderedDict[str, VoiceProfile] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def get(self, voice_id: str) -> VoiceProfile | None:
        profile = self._voices.get(voice_id)
        self._count(profile)
        if profile is not None:
            self._voices.move_to_end(voice_id)
        return profile

    async def find_by_hash(self, content_hash: str) -> list[VoiceProfile]:
        found = [p for p in self._voices.values() if p.content_hash == content_hash]
        self._count(found or None)
        for p in found:
            self._voices.move_to_end(p.voice_id)
        return sorted(found, key=_age)

    async def put(self, profile: VoiceProfile) -> None:
        self._voices[profile.voice_id] = profile
        self._voices.move_to_end(profile.voice_id)
        excess = len(self._voices) - self.capacity
        if excess > 0:
            sessions = [v for v, p in self._voices.items() if p.scope == "session"]
            for voice_id in sessions[:excess]:  # oldest first
                del self._voices[voice_id]

    async def delete(self, voice_id: str) -> bool:
        return self._voices.pop(voice_id, None) is not None

    async def list(self, owner: Owner | None = None) -> list[VoiceProfile]:
        return [p for p in self._voices.values() if usable_by(p, owner)]

    async def drop_owner(self, owner: str) -> int:
        mine = [v for v, p in self._voices.items() if _session_voice_of(p, owner)]
        for voice_id in mine:
            del self._voices[voice_id]
        return len(mine)

    async def close(self) -> None:
        self._voices.clear()

    def _count(self, found: object) -> None:
        if found is None:
            self.misses += 1
        else:
            self.hits += 1


class RedisVoiceStore:
    """Profiles in Redis, shared by every process that points at the same server.

    Layout: ``voxlive:voice:<id>`` (profile bytes), ``voxlive:voicehashes:<hash>`` (set
    of the ids holding that clip), ``voxlive:voiceowner:<session>`` (set of its
    session-scoped ids). Session-scoped keys carry a TTL (``session_ttl_s``) as a safety
    net for sessions whose process died without cleaning up; persistent ones have none.
    A hash set has no TTL (it may hold persistent ids): ids of profiles gone are removed
    from it when the hash is next looked up.
    """

    def __init__(self, url: str, session_ttl_s: int = 24 * 3600) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)
        self.session_ttl_s = session_ttl_s
        self.hits = 0
        self.misses = 0

    async def get(self, voice_id: str) -> VoiceProfile | None:
        profile = await self._fetch(voice_id)
        if profile is None:
            self.misses += 1
        else:
            self.hits += 1
        return profile

    async def find_by_hash(self, content_hash: str) -> list[VoiceProfile]:
        key = _BY_HASHES + content_hash
        ids = {_text(m) for m in await self._redis.smembers(key)}
        legacy = await self._redis.get(_BY_HASH + content_hash)
        if legacy is not None:
            ids.add(_text(legacy))
        found, gone = [], []
        for voice_id in sorted(ids):
            profile = await self._fetch(voice_id)
            if profile is not None and profile.content_hash == content_hash:
                found.append(profile)
            else:  # expired, deleted by a process that died, or replaced by another clip
                gone.append(voice_id)
        if gone:
            await self._redis.srem(key, *gone)
            if legacy is not None and _text(legacy) in gone:
                await self._redis.delete(_BY_HASH + content_hash)
        if found:
            self.hits += 1
        else:
            self.misses += 1
        return sorted(found, key=_age)

    async def put(self, profile: VoiceProfile) -> None:
        ttl = self.session_ttl_s if profile.scope == "session" else None
        replaced = await self._fetch(profile.voice_id)
        legacy = None if replaced is None else await self._legacy_key(replaced)
        async with self._redis.pipeline(transaction=True) as pipe:
            if replaced is not None:
                _unindex(pipe, replaced, legacy)
            pipe.set(_PREFIX + profile.voice_id, profile.to_bytes(), ex=ttl)
            pipe.sadd(_BY_HASHES + profile.content_hash, profile.voice_id)
            if profile.scope == "session" and profile.owner is not None:
                pipe.sadd(_BY_OWNER + profile.owner, profile.voice_id)
                pipe.expire(_BY_OWNER + profile.owner, self.session_ttl_s)
            await pipe.execute()

    async def delete(self, voice_id: str) -> bool:
        profile = await self._fetch(voice_id)
        if profile is None:
            return False
        await self._remove(profile)
        return True

    async def list(self, owner: Owner | None = None) -> list[VoiceProfile]:
        out = []
        async for key in self._redis.scan_iter(match=_PREFIX + "*", count=500):
            data = await self._redis.get(key)
            if data is not None:
                profile = VoiceProfile.from_bytes(_raw(data))
                if usable_by(profile, owner):
                    out.append(profile)
        return out

    async def drop_owner(self, owner: str) -> int:
        ids = [_text(m) for m in await self._redis.smembers(_BY_OWNER + owner)]
        dropped = 0
        for voice_id in ids:
            profile = await self._fetch(voice_id)
            if profile is not None and _session_voice_of(profile, owner):
                await self._remove(profile)
                dropped += 1
        await self._redis.delete(_BY_OWNER + owner)
        return dropped

    async def _fetch(self, voice_id: str) -> VoiceProfile | None:
        data = await self._redis.get(_PREFIX + voice_id)
        return None if data is None else VoiceProfile.from_bytes(_raw(data))

    async def _remove(self, profile: VoiceProfile) -> None:
        legacy = await self._legacy_key(profile)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_PREFIX + profile.voice_id)
            _unindex(pipe, profile, legacy)
            await pipe.execute()

    async def _legacy_key(self, profile: VoiceProfile) -> str | None:
        """The pre-set hash key, if it names ``profile`` (another's must stay)."""
        key = _BY_HASH + profile.content_hash
        named = await self._redis.get(key)
        return key if named is not None and _text(named) == profile.voice_id else None

    async def close(self) -> None:
        await self._redis.aclose()


def usable_by(profile: VoiceProfile, owner: Owner | None) -> bool:
    """Whether ``owner`` may see, use and delete ``profile`` (SPEC.md §4.6).

    A persistent voice is its tenant's (every session of it); a session voice is its own
    session's. ``owner`` ``None`` asks for every profile (a listing across sessions).
    """
    if owner is None:
        return True
    if profile.tenant != owner.tenant:
        return False
    return profile.scope == "persistent" or profile.owner == owner.session


def _stored_consent(value: object) -> Consent | None:
    """A stored profile's consent, read as strictly as a client's (``None``: none).

    Raises:
        TypeError: it is not a map.
        InvalidMessage: it is not a consent map (a key missing, unknown or ill-typed).
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("a stored consent is a map")
    return consent_from_wire(value, "stored consent")


def _session_voice_of(profile: VoiceProfile, session: str) -> bool:
    return profile.scope == "session" and profile.owner == session


def _age(profile: VoiceProfile) -> tuple[float, str]:
    return profile.created, profile.voice_id


def _unindex(pipe: Any, profile: VoiceProfile, legacy_key: str | None) -> None:
    """Queue the removal of ``profile`` from the hash and owner indexes on ``pipe``."""
    pipe.srem(_BY_HASHES + profile.content_hash, profile.voice_id)
    if legacy_key is not None:
        pipe.delete(legacy_key)
    if profile.owner is not None:
        pipe.srem(_BY_OWNER + profile.owner, profile.voice_id)


def _raw(value: bytes | str) -> bytes:
    # The client is made without decode_responses, so replies are bytes; the type
    # stubs allow both.
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def open_store(redis_url: str | None) -> VoiceStore:
    """Redis when a URL is given, else the in-process LRU."""
    if redis_url:
        return RedisVoiceStore(redis_url)
    return MemoryVoiceStore()
