"""Finished utterances kept, so that a repeated line is not synthesized again.

Live chat repeats itself ("666", "哈哈哈", "thanks for the follow"). A whole ``speak``
utterance that completed is kept under a :class:`CacheKey` of everything that decides
its audio, and the next ``speak`` with the same key replays it through the same output
path as fresh audio (resampling, framing, ``started`` / ``marks`` / ``done``): the
cache only replaces synthesis, never admission (SPEC.md §4.4, v1.8).

The key holds the text as received, stripped of surrounding whitespace, not the front
end's normalized sentences: the lookup then happens before the front end, so a hit
costs neither front-end nor engine time. The front end is deterministic for a given
engine identity (also in the key), so equal text means equal sentences; texts that
differ only inside ("666!" and "666") are kept apart.

Two tiers: an LRU in this process bounded by bytes (``cache_bytes``), and, with
``redis_url``, Redis (``voxlive:audio:<sha256 of the key>``, msgpack, ``cache_ttl_s``),
shared by every process. Concurrent lookups of one key in a process make one synthesis:
the first to miss leads (a :class:`Flight`), the others wait for its result, and if it
fails or is cancelled they look again (one of them leads next).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack
import numpy as np

from voxlive.engine.interface import Engine, FinalChunk, SentenceMarks

from .marks import marks_from_list, marks_to_list

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "FLIGHT_WAIT_S",
    "AudioCache",
    "CacheKey",
    "CachedAudio",
    "Flight",
    "Recording",
    "engine_identity",
]

logger = logging.getLogger(__name__)

FLIGHT_WAIT_S: Final = 60.0
"""How long a lookup waits for the utterance synthesizing its key before it
synthesizes too (a leader whose client stopped reading must not hold others)."""
_PREFIX: Final = "voxlive:audio:"
_FORMAT: Final = 1
"""Version of the key's digest and of the stored value (a change starts afresh)."""
_EMPTY: Final = np.zeros(0, np.float32)
_REPLAY_SAMPLES: Final = 8192
"""Samples handed to the output at a time when replaying (≈ 0.37 s at 22.05 kHz)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheKey:
    """Everything that decides an utterance's audio (module docstring)."""

    voice: str
    """``builtin:<name>`` (``default``, ``auto`` or a voice), or
    ``registered:<voice id>:<profile version>``."""
    text: str
    """The ``speak`` text, stripped of surrounding whitespace."""
    emotion: str
    intensity: float
    speed: float
    pitch_st: float
    volume_db: float
    seed: int
    engine: str
    """:func:`engine_identity` of the server's engine."""
    watermarked: bool

    def digest(self) -> str:
        """sha256 (hex) of the key's fields: its name in every tier."""
        fields = [
            _FORMAT,
            self.voice,
            self.text,
            self.emotion,
            float(self.intensity),
            float(self.speed),
            float(self.pitch_st),
            float(self.volume_db),
            self.seed,
            self.engine,
            self.watermarked,
        ]
        return hashlib.sha256(msgpack.packb(fields)).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAudio:
    """One completed utterance: its final audio at the engine's rate, and its marks."""

    samples: np.ndarray
    """float32 mono at the engine's rate, watermarked when the server marks."""
    marks: tuple[SentenceMarks, ...]
    """Each sentence's marks, in the order the engine handed them over."""
    marks_at: tuple[int, ...]
    """Where in ``samples`` each of ``marks`` came (the chunk that carried it began
    there): a replay hands them over at the same points."""
    sentences: int
    warnings: tuple[str, ...]
    """What its ``done`` said (the same text and options give the same notes)."""

    @property
    def nbytes(self) -> int:
        """What it holds in memory, roughly (the audio dominates)."""
        return int(self.samples.nbytes) + 64 * sum(
            1 + len(m.words) + len(m.phonemes) + len(m.visemes) for m in self.marks
        )

    def chunks(self) -> list[FinalChunk]:
        """The audio as the engine handed it over: each of ``marks`` on a chunk that
        begins where it came, pieces of at most :data:`_REPLAY_SAMPLES`, then the closing
        chunk."""
        pending = list(zip(self.marks_at, self.marks, strict=True))
        pending.reverse()  # popped from the end, in order
        cuts = sorted({0, len(self.samples), *self.marks_at})
        out: list[FinalChunk] = []

        def marks_until(i: int) -> None:
            # Every mark up to sample i, each on an empty chunk but the last one
            while len(pending) > 1 and pending[-2][0] <= i:
                out.append(FinalChunk(_EMPTY, None, False, pending.pop()[1]))

        for a, b in zip(cuts, cuts[1:], strict=False):
            for i in range(a, b, _REPLAY_SAMPLES):
                marks_until(i)
                marks = pending.pop()[1] if pending and pending[-1][0] <= i else None
                out.append(
                    FinalChunk(self.samples[i : min(b, i + _REPLAY_SAMPLES)], None, False, marks)
                )
        out.extend(FinalChunk(_EMPTY, None, False, m) for _, m in reversed(pending))
        out.append(FinalChunk(_EMPTY, None, True, end=True))
        return out

    def to_bytes(self) -> bytes:
        """msgpack: the samples as raw little-endian float32, marks as nested lists."""
        data: bytes = msgpack.packb(
            {
                "v": _FORMAT,
                "samples": self.samples.astype("<f4").tobytes(),
                "marks": [marks_to_list(m) for m in self.marks],
                "marks_at": list(self.marks_at),
                "sentences": self.sentences,
                "warnings": list(self.warnings),
            }
        )
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAudio:
        """Raises: ValueError on data that is not a stored utterance of this format."""
        try:
            d = msgpack.unpackb(data, raw=False)
            if d["v"] != _FORMAT:
                raise ValueError(f"stored format {d['v']}, not {_FORMAT}")
            samples = np.frombuffer(d["samples"], "<f4").astype(np.float32)
            marks = tuple(marks_from_list(m) for m in d["marks"])
            marks_at = tuple(int(i) for i in d["marks_at"])
            if len(marks_at) != len(marks):
                raise ValueError("marks_at and marks differ in length")
            warnings = tuple(map(str, d["warnings"]))
            return cls(samples, marks, marks_at, int(d["sentences"]), warnings)
        except Exception as exc:  # msgpack, KeyError, TypeError alike
            raise ValueError("not a stored utterance") from exc


class Recording:
    """A missed utterance's audio and marks as they come, kept for the cache."""

    def __init__(self) -> None:
        self.pieces: list[np.ndarray] = []
        self.samples = 0
        self.marks: list[SentenceMarks] = []
        self.marks_at: list[int] = []

    def add(self, chunk: FinalChunk) -> None:
        if chunk.marks is not None:
            self.marks.append(chunk.marks)
            self.marks_at.append(self.samples)
        if len(chunk.samples):
            self.pieces.append(np.array(chunk.samples, np.float32))  # a copy: engines reuse
            self.samples += len(chunk.samples)

    def audio(self, sentences: int, warnings: list[str]) -> CachedAudio:
        samples = np.concatenate(self.pieces) if self.pieces else _EMPTY
        marks, marks_at = tuple(self.marks), tuple(self.marks_at)
        return CachedAudio(samples, marks, marks_at, sentences, tuple(warnings))


class Flight:
    """A key being synthesized by one utterance (the leader); others wait on it."""

    def __init__(self, cache: AudioCache, digest: str) -> None:
        self._cache = cache
        self.digest = digest
        self.result: asyncio.Future[CachedAudio | None] = asyncio.get_running_loop().create_future()

    def complete(self, audio: CachedAudio) -> None:
        """The leader completed: keep its audio and hand it to the waiters."""
        if self.result.done():
            return
        self._cache.store(self.digest, audio)
        self._end(audio)

    def abandon(self) -> None:
        """The leader failed, expired or was cancelled: nothing is kept."""
        if not self.result.done():
            self._end(None)

    def _end(self, audio: CachedAudio | None) -> None:
        self.result.set_result(audio)
        if self._cache.flights.get(self.digest) is self:
            del self._cache.flights[self.digest]


class AudioCache:
    """See module docstring. Lives on the event loop thread.

    Args:
        max_bytes: the in-process LRU's bound (audio bytes, roughly); an utterance
            larger than it is never kept.
        watermark_all: the server marks every output (``watermark``), not only
            registered voices' (part of every key).
        engine: :func:`engine_identity` of the server's engine (part of every key).
        redis_url: a Redis shared with other processes; ``None``: this process only.
        ttl_s: how long an utterance stays in Redis; 0: until Redis evicts it.
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        watermark_all: bool,
        engine: str,
        redis_url: str | None = None,
        ttl_s: float = 0.0,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be ≥ 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self.watermark_all = watermark_all
        self.engine = engine
        self.ttl_s = ttl_s
        self._redis: Redis | None = None
        if redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(redis_url)
        self._entries: OrderedDict[str, CachedAudio] = OrderedDict()
        self.flights: dict[str, Flight] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def key(self, text: str, voice: str, *, registered: bool, **controls: Any) -> CacheKey:
        """The key of one utterance: ``controls`` are ``emotion``, ``intensity``,
        ``speed``, ``pitch_st``, ``volume_db`` and ``seed``."""
        watermarked = self.watermark_all or registered
        return CacheKey(
            voice=voice, text=text.strip(), engine=self.engine, watermarked=watermarked, **controls
        )

    async def lookup(self, key: CacheKey) -> CachedAudio | Flight:
        """The utterance kept under ``key``, or the :class:`Flight` the caller now leads
        (it must ``complete`` or ``abandon`` it)."""
        digest = key.digest()
        while True:
            found = self._recall(digest)
            if found is not None:
                self.hits += 1
                return found
            leader = self.flights.get(digest)
            if leader is None:
                break
            try:
                audio = await asyncio.wait_for(asyncio.shield(leader.result), FLIGHT_WAIT_S)
            except TimeoutError:
                self.misses += 1
                return Flight(self, digest)  # leads nobody: not in ``flights``
            if audio is not None:
                self.hits += 1
                return audio
        flight = self.flights[digest] = Flight(self, digest)
        stored = await self._fetch(digest)
        if stored is not None:
            self.hits += 1
            self._remember(digest, stored)
            flight.abandon()  # the waiters find it in memory
            return stored
        self.misses += 1
        return flight

    def store(self, digest: str, audio: CachedAudio) -> None:
        """Keep ``audio`` here, and in Redis when there is one (written in the background)."""
        if audio.nbytes > self.max_bytes:
            return
        self._remember(digest, audio)
        if self._redis is not None:
            task = asyncio.ensure_future(self._write(digest, audio))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def figures(self) -> dict[str, float]:
        """The ``voxlive_cache_*`` figures of ``/metrics``."""
        return {
            "voxlive_cache_hits_total": self.hits,
            "voxlive_cache_misses_total": self.misses,
            "voxlive_cache_evictions_total": self.evictions,
            "voxlive_cache_bytes": self.bytes,
            "voxlive_cache_entries": len(self._entries),
        }

    async def close(self) -> None:
        """Finish the Redis writes under way, then close the client."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    def _recall(self, digest: str) -> CachedAudio | None:
        found = self._entries.get(digest)
        if found is not None:
            self._entries.move_to_end(digest)
        return found

    def _remember(self, digest: str, audio: CachedAudio) -> None:
        old = self._entries.pop(digest, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._entries[digest] = audio
        self.bytes += audio.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.nbytes
            self.evictions += 1

    async def _fetch(self, digest: str) -> CachedAudio | None:
        if self._redis is None:
            return None
        try:
            data = await self._redis.get(_PREFIX + digest)
            if data is None:
                return None
            # Made without decode_responses: replies are bytes (the stubs allow str).
            return CachedAudio.from_bytes(data.encode() if isinstance(data, str) else data)
        except Exception:  # redis down, or a value of another format: synthesize
            logger.warning("reading the audio cache in redis failed", exc_info=True)
            return None

    async def _write(self, digest: str, audio: CachedAudio) -> None:
        assert self._redis is not None
        ttl_ms = round(self.ttl_s * 1000) or None
        try:
            await self._redis.set(_PREFIX + digest, audio.to_bytes(), px=ttl_ms)
        except Exception:  # the task's boundary: the utterance is done already
            logger.warning("writing the audio cache to redis failed", exc_info=True)


def engine_identity(engine: Engine, precision: str, default_voice: str) -> str:
    """What, besides the request, decides an engine's audio: the package version (its
    bundled weights), the engine's kind, its number format and its voices."""
    try:
        version = importlib.metadata.version("voxlive")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    voices = ",".join(f"{v.name}:{v.language}:{v.sample_rate}" for v in engine.voices)
    kind = type(getattr(engine, "engine", engine)).__name__  # inside a MarkedEngine
    return f"voxlive {version}|{kind}|{precision}|{engine.sample_rate}|{voices}|{default_voice}"
