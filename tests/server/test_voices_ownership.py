"""Who owns a registered voice (SPEC.md §4.6): sessions, tenants and the registration cache.

``Voices`` over the in-process store and over a real redis-server, with a stand-in speaker
encoder and a synthetic clip (a buzz with a syllable rhythm, which passes the reference
checks): no model, so these run in the fast lane.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from voxlive.protocol.messages import VoiceRegister
from voxlive.protocol.types import UtteranceId
from voxlive.server import voices as voices_module
from voxlive.server.store import MemoryVoiceStore, Owner, RedisVoiceStore
from voxlive.server.voices import RegistrationError, Voices

from .redis_server import redis_server

A, B, C = Owner("srv:s1"), Owner("srv:s2"), Owner("srv:s3")
ACME, ACME2, OTHER = Owner("srv:s4", "acme"), Owner("srv:s5", "acme"), Owner("srv:s6", "other")


class StubEncoder:
    """Stands in for the GE2E encoder: every clip embeds to the same unit vector."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        self.calls += 1
        return np.array([0.6, 0.8], np.float32)


def synthetic_clip(f0: float = 120.0, seconds: float = 6.0, rate: int = 16000) -> bytes:
    """A WAV of a harmonic buzz at ``f0`` with a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 20))
    envelope = (1 + np.sin(2 * np.pi * 4 * t)) ** 2 / 8
    noise = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    x = 0.3 * buzz * envelope / np.max(np.abs(buzz)) + noise
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


CLIP = synthetic_clip()


def event(id: str = "r", audio: bytes = CLIP, **first) -> VoiceRegister:
    return VoiceRegister(UtteranceId(id), audio, **first)


@pytest.fixture(params=["memory", "redis"])
def make_voices(request, tmp_path):
    def build(store_factory):
        return lambda **kw: Voices(
            store_factory(), StubEncoder(), max_reference_bytes=10 << 20, **kw
        )

    if request.param == "memory":
        yield build(MemoryVoiceStore)
        return
    with redis_server(tmp_path) as server:
        yield build(lambda: RedisVoiceStore(server.url))


async def names(voices: Voices, owner: Owner) -> dict[str, str]:
    return {v.voice: v.scope for v in await voices.listing(owner)}


def test_a_cache_hit_on_another_sessions_persistent_voice_leaves_it_alone(make_voices):
    """The defect: B's session-scoped upload of A's persistent clip took A's voice over."""

    async def main():
        voices = make_voices()
        kept = await voices.register(event(scope="persistent"), A)
        copy = await voices.register(event(), B)
        seen = {"a": await names(voices, A), "b": await names(voices, B)}
        await voices.drop_session(B.session)
        seen |= {"a later": await names(voices, A), "c later": await names(voices, C)}
        found = await voices.find(kept.profile.voice_id, C)
        await voices.close()
        return kept, copy, seen, found

    kept, copy, seen, found = asyncio.run(main())
    mine, theirs = kept.profile.voice_id, copy.profile.voice_id
    assert copy.cached and theirs != mine
    assert (copy.profile.scope, copy.profile.owner) == ("session", B.session)
    assert seen["a"] == {mine: "persistent"}
    assert seen["b"] == {mine: "persistent", theirs: "session"}
    assert seen["a later"] == seen["c later"] == {mine: "persistent"}
    assert found is not None and found.owner == A.session and found.scope == "persistent"


def test_a_cache_hit_on_another_sessions_session_voice_gives_a_voice_of_ones_own(make_voices):
    async def main():
        voices = make_voices()
        first = await voices.register(event(), A)
        second = await voices.register(event(), B)
        again = await voices.register(event(), B)  # B's own now: the same voice back
        seen = await names(voices, A), await names(voices, B)
        await voices.close()
        return first, second, again, seen

    first, second, again, (a, b) = asyncio.run(main())
    assert second.cached and second.profile.voice_id != first.profile.voice_id
    assert again.cached and again.profile == second.profile
    assert a == {first.profile.voice_id: "session"} and b == {second.profile.voice_id: "session"}


def test_asking_for_another_scope_of_ones_own_clip_adds_a_voice(make_voices):
    async def main():
        voices = make_voices()
        session_one = await voices.register(event(), A)
        persistent = await voices.register(event(scope="persistent"), A)
        seen = await names(voices, A)
        await voices.close()
        return session_one, persistent, seen

    session_one, persistent, seen = asyncio.run(main())
    assert persistent.cached and persistent.profile.voice_id != session_one.profile.voice_id
    assert seen == {
        session_one.profile.voice_id: "session",
        persistent.profile.voice_id: "persistent",
    }


def test_another_tenant_never_sees_a_persistent_voice(make_voices):
    async def main():
        voices = make_voices()
        alice = await voices.register(event(name="alice", scope="persistent"), ACME)
        calls = voices.encoder.calls
        outcome = {
            "shared in tenant": await voices.find("alice", ACME2),
            "find": await voices.find("alice", OTHER),
            "keyless find": await voices.find("alice", A),
            "list": await names(voices, OTHER),
            "delete": await voices.delete("alice", OTHER),
        }
        other = await voices.register(event(), OTHER)  # the same clip: no cache hit
        outcome["analysed again"] = voices.encoder.calls - calls
        with pytest.raises(RegistrationError) as taken:
            await voices.register(event(name="alice"), OTHER)
        outcome["acme list"] = await names(voices, ACME2)
        await voices.close()
        return alice, other, outcome, taken.value

    alice, other, outcome, taken = asyncio.run(main())
    assert outcome["shared in tenant"] == alice.profile
    assert outcome["find"] is None and outcome["keyless find"] is None
    assert outcome["list"] == {} and outcome["delete"] is False
    assert not other.cached and outcome["analysed again"] == 1
    assert (other.profile.tenant, other.profile.voice_id != "alice") == ("other", True)
    # A name another tenant uses: duplicate_id, saying no more than that it is taken.
    assert (taken.code, taken.message) == ("duplicate_id", "voice name alice is taken")
    assert outcome["acme list"] == {"alice": "persistent"}


def test_a_tenants_sessions_share_its_persistent_voices(make_voices):
    async def main():
        voices = make_voices()
        first = await voices.register(event(scope="persistent"), ACME)
        again = await voices.register(event(scope="persistent"), ACME2)
        deleted = await voices.delete(first.profile.voice_id, ACME2)
        await voices.close()
        return first, again, deleted

    first, again, deleted = asyncio.run(main())
    assert again.cached and again.profile == first.profile and deleted


def test_a_name_another_session_uses_is_refused_and_ones_own_is_replaced(make_voices):
    async def main():
        voices = make_voices()
        await voices.register(event(name="bob"), A)
        with pytest.raises(RegistrationError) as refused:
            await voices.register(event(name="bob"), B)
        other_clip = synthetic_clip(f0=150.0)
        replaced = await voices.register(event(audio=other_clip, name="bob"), A)
        await voices.close()
        return refused.value, replaced

    refused, replaced = asyncio.run(main())
    assert refused.code == "duplicate_id"
    assert not replaced.cached and replaced.profile.voice_id == "bob"


def test_the_upload_cache_is_bounded_by_entries_and_by_age(make_voices, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(voices_module, "monotonic", lambda: now[0])

    async def main():
        voices = make_voices(upload_cache_entries=2, upload_cache_age_s=60.0)
        for n, f0 in enumerate((110.0, 130.0, 150.0)):
            await voices.register(event(f"r{n}", synthetic_clip(f0)), A)
        entries = len(voices.by_upload)
        now[0] += 61.0
        await voices.register(event("late", synthetic_clip(170.0)), A)
        left = len(voices.by_upload)
        await voices.close()
        return entries, left

    assert asyncio.run(main()) == (2, 1)  # the oldest went first; then all but the newest aged out


def test_the_upload_cache_needs_room_and_time():
    with pytest.raises(ValueError, match="upload cache"):
        Voices(MemoryVoiceStore(), StubEncoder(), max_reference_bytes=1, upload_cache_entries=0)
