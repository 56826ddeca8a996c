"""Voice profile stores: the in-process LRU and Redis (a real redis-server on a free port)."""

from __future__ import annotations

import asyncio

import pytest

from voxlive.server.store import MemoryVoiceStore, RedisVoiceStore, VoiceProfile, usable_by

from .redis_server import redis_server


def profile(voice_id: str, scope="session", owner="s1", content_hash=None) -> VoiceProfile:
    return VoiceProfile(
        voice_id=voice_id,
        content_hash=content_hash or f"hash-{voice_id}",
        embedding=(0.6, 0.8),
        stats={"f0_median_hz": 120.0},
        summary={"usable_s": 7.5},
        scope=scope,
        owner=owner,
    )


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as server:
        yield server.url


@pytest.fixture(params=["memory", "redis"])
def make_store(request, tmp_path):
    if request.param == "memory":
        yield MemoryVoiceStore
        return
    with redis_server(tmp_path) as server:
        yield lambda: RedisVoiceStore(server.url)


def test_profiles_round_trip_through_bytes() -> None:
    p = profile("v1")
    assert VoiceProfile.from_bytes(p.to_bytes()) == p
    with pytest.raises(ValueError, match="profile"):
        VoiceProfile.from_bytes(b"\x93garbage")


def test_put_get_find_delete_and_count_hits(make_store) -> None:
    async def main():
        store = make_store()
        await store.put(profile("v1"))
        got = await store.get("v1")
        by_hash = await store.find_by_hash("hash-v1")
        missing = await store.get("nope")
        deleted, again = await store.delete("v1"), await store.delete("v1")
        after = await store.get("v1")
        counts = (store.hits, store.misses)
        await store.close()
        return got, by_hash, missing, deleted, again, after, counts

    got, by_hash, missing, deleted, again, after, counts = asyncio.run(main())
    assert got == by_hash
    assert got.voice_id == "v1" and got.embedding == (0.6, 0.8)
    assert missing is None and after is None
    assert (deleted, again) == (True, False)
    assert counts == (2, 2)


def test_session_voices_are_private_and_dropped_with_their_session(make_store) -> None:
    async def main():
        store = make_store()
        await store.put(profile("mine", owner="s1"))
        await store.put(profile("theirs", owner="s2"))
        await store.put(profile("shared", scope="persistent", owner=None))
        s1 = sorted(p.voice_id for p in await store.list("s1"))
        dropped = await store.drop_owner("s1")
        left = sorted(p.voice_id for p in await store.list())
        await store.close()
        return s1, dropped, left

    s1, dropped, left = asyncio.run(main())
    assert s1 == ["mine", "shared"]
    assert dropped == 1
    assert left == ["shared", "theirs"]


def test_memory_store_evicts_the_least_recently_used() -> None:
    async def main():
        store = MemoryVoiceStore(capacity=2)
        await store.put(profile("a"))
        await store.put(profile("b"))
        await store.get("a")  # a is now the most recent
        await store.put(profile("c"))
        return [p.voice_id for p in await store.list()]

    assert asyncio.run(main()) == ["a", "c"]


def test_persistent_voices_survive_a_redis_restart_and_are_shared(tmp_path) -> None:
    async def put(url):
        store = RedisVoiceStore(url)
        await store.put(profile("keep", scope="persistent", owner=None))
        await store.close()

    async def get(url):
        store = RedisVoiceStore(url)  # another process's view: a fresh client
        found = await store.find_by_hash("hash-keep")
        await store.close()
        return found

    with redis_server(tmp_path) as server:
        asyncio.run(put(server.url))
        server.stop()
        server.start()  # same port and data directory: AOF replays
        found = asyncio.run(get(server.url))
    assert found is not None and found.voice_id == "keep" and found.scope == "persistent"


def test_session_voices_in_redis_carry_a_ttl_and_persistent_ones_do_not(redis_url) -> None:
    async def main():
        import redis.asyncio as aioredis

        store = RedisVoiceStore(redis_url, session_ttl_s=600)
        await store.put(profile("tmp"))
        await store.put(profile("keep", scope="persistent", owner=None))
        raw = aioredis.Redis.from_url(redis_url)
        ttls = await raw.ttl("voxlive:voice:tmp"), await raw.ttl("voxlive:voice:keep")
        await raw.aclose()
        await store.close()
        return ttls

    tmp_ttl, keep_ttl = asyncio.run(main())
    assert 0 < tmp_ttl <= 600
    assert keep_ttl == -1


def test_a_session_voice_is_usable_by_its_session_and_a_persistent_one_by_all() -> None:
    mine, shared = profile("a", owner="s1"), profile("b", scope="persistent", owner="s1")
    assert usable_by(mine, "s1") and not usable_by(mine, "s2")
    assert usable_by(shared, "s1") and usable_by(shared, "s2")
    assert usable_by(mine, None)  # a listing across sessions sees every profile
