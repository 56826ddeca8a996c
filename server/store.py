"""Voice profiles, cached: in process by default, in Redis when configured.

A profile is keyed twice: by its voice id (what clients name in ``speak``) and
by the content hash of the decoded reference plus the model version, so that
registering the same clip again is a cache hit (no decoding of embeddings or
fitting again). Voices are either scoped to the session that registered them
(dropped when it closes) or persistent (kept; in Redis they survive restarts
and are shared by every gateway and worker).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgpack

__all__ = [
    "MemoryVoiceStore",
    "RedisVoiceStore",
    "Scope",
    "VoiceProfile",
    "VoiceStore",
    "open_store",
    "usable_by",
]

Scope = Literal["session", "persistent"]
_PREFIX = "voxlive:voice:"
_BY_HASH = "voxlive:voicehash:"
_BY_OWNER = "voxlive:voiceowner:"


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
            )
        except Exception as exc:  # msgpack and KeyError/TypeError alike
            raise ValueError("not a stored voice profile") from exc


class VoiceStore(Protocol):
    """Where profiles live. All methods are coroutines; ``hits``/``misses`` count lookups."""

    hits: int
    misses: int

    async def get(self, voice_id: str) -> VoiceProfile | None: ...
    async def find_by_hash(self, content_hash: str) -> VoiceProfile | None: ...
    async def put(self, profile: VoiceProfile) -> None: ...
    async def delete(self, voice_id: str) -> bool: ...
    async def list(self, owner: str | None = None) -> list[VoiceProfile]: ...
    async def drop_owner(self, owner: str) -> int: ...
    async def close(self) -> None: ...


class MemoryVoiceStore:
    """In-process LRU (the embedded default)."""

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

    async def find_by_hash(self, content_hash: str) -> VoiceProfile | None:
        found = next((p for p in self._voices.values() if p.content_hash == content_hash), None)
        self._count(found)
        if found is not None:
            self._voices.move_to_end(found.voice_id)
        return found

    async def put(self, profile: VoiceProfile) -> None:
        self._voices[profile.voice_id] = profile
        self._voices.move_to_end(profile.voice_id)
        while len(self._voices) > self.capacity:
            self._voices.popitem(last=False)

    async def delete(self, voice_id: str) -> bool:
        return self._voices.pop(voice_id, None) is not None

    async def list(self, owner: str | None = None) -> list[VoiceProfile]:
        return [p for p in self._voices.values() if usable_by(p, owner)]

    async def drop_owner(self, owner: str) -> int:
        mine = [v for v, p in self._voices.items() if p.scope == "session" and p.owner == owner]
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

    Layout: ``voxlive:voice:<id>`` (profile bytes), ``voxlive:voicehash:<hash>`` → id,
    ``voxlive:voiceowner:<session>`` (set of its session-scoped ids). Session-scoped
    keys carry a TTL (``session_ttl_s``) as a safety net for sessions whose process
    died without cleaning up; persistent ones have none.
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

    async def find_by_hash(self, content_hash: str) -> VoiceProfile | None:
        voice_id = await self._redis.get(_BY_HASH + content_hash)
        if voice_id is None:
            self.misses += 1
            return None
        return await self.get(_text(voice_id))

    async def put(self, profile: VoiceProfile) -> None:
        ttl = self.session_ttl_s if profile.scope == "session" else None
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_PREFIX + profile.voice_id, profile.to_bytes(), ex=ttl)
            pipe.set(_BY_HASH + profile.content_hash, profile.voice_id, ex=ttl)
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

    async def list(self, owner: str | None = None) -> list[VoiceProfile]:
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
            if profile is not None and profile.scope == "session":
                await self._remove(profile)
                dropped += 1
        await self._redis.delete(_BY_OWNER + owner)
        return dropped

    async def _fetch(self, voice_id: str) -> VoiceProfile | None:
        data = await self._redis.get(_PREFIX + voice_id)
        return None if data is None else VoiceProfile.from_bytes(_raw(data))

    async def _remove(self, profile: VoiceProfile) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_PREFIX + profile.voice_id)
            pipe.delete(_BY_HASH + profile.content_hash)
            if profile.owner is not None:
                pipe.srem(_BY_OWNER + profile.owner, profile.voice_id)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


def usable_by(profile: VoiceProfile, owner: str | None) -> bool:
    """Whether the session ``owner`` may see and use ``profile`` (SPEC.md §4.6).

    Persistent voices are everyone's; a session voice is its own session's. ``owner``
    ``None`` asks for every profile (a listing across sessions).
    """
    return profile.scope == "persistent" or owner is None or profile.owner == owner


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
