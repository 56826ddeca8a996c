"""Voice profile stores: the in-process LRU and Redis (a real redis-server on a free port)."""

from __future__ import annotations

import asyncio

import msgpack  # type: ignore[import-untyped]
import pytest

from voxlive.server.store import MemoryVoiceStore, Owner, RedisVoiceStore, VoiceProfile, usable_by

from .redis_server import redis_server


def profile(
    voice_id: str, scope="session", owner="s1", content_hash=None, tenant=None, created=None
) -> VoiceProfile:
    extra = {} if created is None else {"created": created}
    return VoiceProfile(
        voice_id=voice_id,
        content_hash=content_hash or f"hash-{voice_id}",
        embedding=(0.6, 0.8),
        stats={"f0_median_hz": 120.0},
        summary={"usable_s": 7.5},
        scope=scope,
        owner=owner,
        tenant=tenant,
        **extra,
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
    assert [got] == by_hash
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
        s1 = sorted(p.voice_id for p in await store.list(Owner("s1")))
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


def test_memory_store_never_evicts_a_persistent_voice() -> None:
    async def main():
        store = MemoryVoiceStore(capacity=2)
        await store.put(profile("kept", scope="persistent", owner=None))
        await store.put(profile("a"))
        await store.put(profile("b"))  # over capacity: the oldest session voice goes
        await store.put(profile("also-kept", scope="persistent", owner=None))
        return [p.voice_id for p in await store.list()]

    assert asyncio.run(main()) == ["kept", "also-kept"]


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
    assert [(p.voice_id, p.scope) for p in found] == [("keep", "persistent")]


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
    assert usable_by(mine, Owner("s1")) and not usable_by(mine, Owner("s2"))
    assert usable_by(shared, Owner("s1")) and usable_by(shared, Owner("s2"))
    assert usable_by(mine, None)  # a listing across sessions sees every profile


def test_a_persistent_voice_is_its_tenants_and_invisible_to_every_other() -> None:
    theirs = profile("t", scope="persistent", owner="s1", tenant="acme")
    assert usable_by(theirs, Owner("s2", "acme"))
    assert not usable_by(theirs, Owner("s3", "other")) and not usable_by(theirs, Owner("s4"))
    # Without keys (tenant None) sessions share theirs, and no tenant sees them.
    open_one = profile("o", scope="persistent", owner="s1")
    assert usable_by(open_one, Owner("s2")) and not usable_by(open_one, Owner("s2", "acme"))
    # A session voice stays its session's, even within the tenant.
    session_one = profile("x", owner="s1", tenant="acme")
    assert not usable_by(session_one, Owner("s2", "acme"))
    assert not usable_by(session_one, Owner("s1", "other"))


def test_one_clip_held_by_several_owners_keeps_each_profile(make_store) -> None:
    """The defect: a second owner's copy of a clip replaced the first's in the hash index."""

    async def main():
        store = make_store()
        first = profile("a", scope="persistent", owner="s1", content_hash="h", created=1.0)
        second = profile("b", owner="s2", content_hash="h", created=2.0)
        await store.put(first)
        await store.put(second)
        both = await store.find_by_hash("h")
        listed = sorted(p.voice_id for p in await store.list(Owner("s3")))
        dropped = await store.drop_owner("s2")
        after_drop = await store.find_by_hash("h")
        await store.delete("a")
        after_delete = await store.find_by_hash("h")
        await store.close()
        return both, listed, dropped, after_drop, after_delete

    both, listed, dropped, after_drop, after_delete = asyncio.run(main())
    assert [p.voice_id for p in both] == ["a", "b"]  # oldest first
    assert listed == ["a"] and dropped == 1
    assert [p.voice_id for p in after_drop] == ["a"] and after_delete == []


def test_listing_shows_a_tenant_only_its_own_persistent_voices(make_store) -> None:
    async def main():
        store = make_store()
        await store.put(profile("acme-voice", scope="persistent", tenant="acme"))
        await store.put(profile("open-voice", scope="persistent"))
        await store.put(profile("acme-session", owner="s9", tenant="acme"))
        seen = {
            who: sorted(p.voice_id for p in await store.list(owner))
            for who, owner in {
                "acme": Owner("s2", "acme"),
                "acme s9": Owner("s9", "acme"),
                "other": Owner("s3", "other"),
                "keyless": Owner("s4"),
            }.items()
        }
        await store.close()
        return seen

    assert asyncio.run(main()) == {
        "acme": ["acme-voice"],
        "acme s9": ["acme-session", "acme-voice"],
        "other": [],
        "keyless": ["open-voice"],
    }


def test_a_voice_id_put_again_with_another_clip_leaves_the_old_clips_index(make_store) -> None:
    async def main():
        store = make_store()
        await store.put(profile("v", content_hash="old"))
        await store.put(profile("v", content_hash="new", owner="s2"))
        old, new = await store.find_by_hash("old"), await store.find_by_hash("new")
        dropped = await store.drop_owner("s1")  # v is s2's now: s1 has nothing to drop
        await store.close()
        return old, new, dropped

    old, new, dropped = asyncio.run(main())
    assert old == [] and [p.owner for p in new] == ["s2"] and dropped == 0


def test_profiles_stored_before_tenants_are_found_and_cleaned_up(redis_url) -> None:
    """An earlier server wrote one hash key per clip and profiles without a tenant."""

    async def main():
        import redis.asyncio as aioredis

        raw = aioredis.Redis.from_url(redis_url)
        old = profile("legacy", scope="persistent", content_hash="h")
        fields = msgpack.unpackb(old.to_bytes())
        del fields["tenant"]
        await raw.set("voxlive:voice:legacy", msgpack.packb(fields))
        await raw.set("voxlive:voicehash:h", "legacy")
        store = RedisVoiceStore(redis_url)
        found = await store.find_by_hash("h")
        await store.delete("legacy")
        left = await raw.exists("voxlive:voicehash:h"), await store.find_by_hash("h")
        await raw.aclose()
        await store.close()
        return found, left

    found, left = asyncio.run(main())
    assert [(p.voice_id, p.tenant) for p in found] == [("legacy", None)]
    assert left == (0, [])
