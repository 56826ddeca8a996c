"""The cache of repeated lines (``server/cache.py``), over the fake engine and a real redis."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from voxlive.bench.server_metrics import read_metrics
from voxlive.engine.interface import SentenceMarks, Timed
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.controls import DEFAULT_SEED
from voxlive.protocol.messages import (
    Append,
    AudioFrame,
    Cancel,
    End,
    Error,
    Marks,
    Speak,
    SpeakOptions,
    Started,
)
from voxlive.protocol.types import UtteranceId
from voxlive.server.cache import AudioCache, CachedAudio, Recording

from ..fakes import FakeEngine, FakeSpeaker
from .harness import collect, open_session, run, run_server, url
from .redis_server import redis_server

LINE = "Thanks for the follow. See you soon!"


def fake_server(engine: FakeEngine, **overrides):
    return run_server(engine, FakeSpeaker(), **overrides)


def speak(uid: str, text: str = LINE, **options) -> bytes | str:
    return encode_client(Speak(UtteranceId(uid), text, SpeakOptions(**options)))


async def say(app, text: str = LINE, uid: str = "u", **options):
    """One utterance on a session of its own: (pcm bytes, marks, done)."""
    ws = await open_session(app)
    await ws.send(speak(uid, text, timestamps=True, **options))
    messages, frames, done = await collect(ws, {uid}, timeout=20)
    await ws.close()
    pcm = b"".join(f.pcm for fs in frames.values() for f in fs)
    marks = [(m.offset, m.words, m.phonemes, m.visemes) for m in messages if isinstance(m, Marks)]
    return pcm, marks, done[uid]


def test_a_line_said_again_is_replayed_with_the_same_audio_and_marks():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            first = await say(app)
            begun = list(engine.begun)
            second = await say(app)
            return first, begun, second, app.audio_cache.figures()

    (pcm1, marks1, done1), begun, (pcm2, marks2, done2), figures = run(main())
    assert begun == ["Thanks for the follow.", "See you soon!"]
    assert engine.begun == begun  # the repeat never reached the engine
    assert done1.status == done2.status == "completed"
    assert pcm2 == pcm1 and len(pcm1) > 0
    assert marks2 == marks1 and len(marks1) == 2
    assert done2.samples == done1.samples
    assert figures["voxlive_cache_hits_total"] == 1
    assert figures["voxlive_cache_misses_total"] == 1
    assert figures["voxlive_cache_entries"] == 1


def test_an_unset_seed_is_the_fixed_default_and_a_given_one_is_kept():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            await say(app, "One.")
            await say(app, "Two.", seed=42)

    run(main())
    assert [p.controls.seed for p in engine.performances] == [DEFAULT_SEED, 42]


@pytest.mark.parametrize(
    "change",
    [
        {"text": "Thanks for the follow. See you later!"},
        {"emotion": "happy"},
        {"emotion": "sad", "intensity": 0.2},
        {"speed": 1.5},
        {"pitch": 2.0},
        {"volume": -3.0},
        {"seed": 7},
        {"cache": False},
    ],
)
def test_a_line_with_any_option_changed_or_cache_false_is_synthesized_again(change):
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            base = {"emotion": "sad", "intensity": 0.5}
            await say(app, **base)
            n = len(engine.begun)
            options = base | change
            await say(app, options.pop("text", LINE), **options)
            return n, app.audio_cache.figures()

    n, figures = run(main())
    assert len(engine.begun) > n
    assert figures["voxlive_cache_hits_total"] == 0
    # cache: false neither asks the cache nor fills it
    assert figures["voxlive_cache_misses_total"] == (1 if "cache" in change else 2)


def test_identical_requests_at_once_make_one_synthesis():
    engine = FakeEngine(step_delay_s=0.02)

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app)
            ids = {f"u{i}" for i in range(5)}
            for uid in sorted(ids):
                await ws.send(speak(uid))
            other = asyncio.create_task(say(app, uid="x"))  # another session, same line
            _, frames, done = await collect(ws, ids, timeout=20)
            pcm_x, _, done_x = await other
            await ws.close()
            return frames, done, pcm_x, done_x, app.audio_cache.figures()

    frames, done, pcm_x, done_x, figures = run(main())
    assert engine.begun == ["Thanks for the follow.", "See you soon!"]
    assert all(d.status == "completed" for d in done.values()) and done_x.status == "completed"
    audio = {b"".join(f.pcm for f in fs) for fs in frames.values()}
    assert audio == {pcm_x}
    assert figures["voxlive_cache_misses_total"] == 1
    assert figures["voxlive_cache_hits_total"] == 5


def test_the_cache_stays_within_its_byte_cap_dropping_the_least_recent():
    engine = FakeEngine()  # "Line N." is 7 chars: 2800 float32 samples, 11 200 bytes
    cap = 30_000

    async def main():
        async with fake_server(engine, cache_bytes=cap) as app:
            cache = app.audio_cache
            peak = 0
            for n in range(4):
                await say(app, f"Line {n}.")
                peak = max(peak, cache.bytes)
            figures = cache.figures()
            served = await read_metrics(url(app))
            before = len(engine.begun)
            await say(app, "Line 3.")  # kept
            kept = len(engine.begun) == before
            await say(app, "Line 0.")  # dropped
            return peak, figures, served, kept, len(engine.begun) > before

    peak, figures, served, kept, dropped = run(main())
    assert peak <= cap
    assert figures["voxlive_cache_entries"] == 2
    assert figures["voxlive_cache_evictions_total"] == 2
    assert kept and dropped
    assert served is not None
    for name in ("hits_total", "misses_total", "evictions_total", "bytes", "entries"):
        assert served[f"voxlive_cache_{name}"] == figures[f"voxlive_cache_{name}"]


def test_cache_bytes_zero_turns_the_cache_off():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine, cache_bytes=0) as app:
            await say(app)
            await say(app)
            return app.audio_cache, await read_metrics(url(app))

    cache, served = run(main())
    assert cache is None and len(engine.begun) == 4
    assert served is not None and "voxlive_cache_hits_total" not in served


def test_failed_and_cancelled_utterances_are_not_kept():
    engine = FakeEngine(step_delay_s=0.02, chunk_samples=1024)

    async def main():
        async with fake_server(engine) as app:
            _, _, failed = await say(app, "This will FAIL.")
            ws = await open_session(app)
            await ws.send(speak("c", "A long line that we cancel half way through it."))
            async with asyncio.timeout(10):
                while not isinstance(decode_server(await ws.recv()), AudioFrame):
                    pass
            await ws.send(encode_client(Cancel(UtteranceId("c"))))
            _, _, done = await collect(ws, {"c"})
            await ws.close()
            n = len(engine.begun)
            _, _, again = await say(app, "A long line that we cancel half way through it.")
            _, _, failed_again = await say(app, "This will FAIL.")
            return failed, done["c"], n, again, failed_again, app.audio_cache.figures()

    failed, cancelled, n, again, failed_again, figures = run(main())
    assert failed.status == failed_again.status == "failed"
    assert cancelled.status == "cancelled" and again.status == "completed"
    assert len(engine.begun) == n + 1  # the cancelled line was synthesized again
    assert figures["voxlive_cache_hits_total"] == 0
    assert figures["voxlive_cache_entries"] == 1  # only the completed repeat


def test_streamed_utterances_are_neither_served_nor_kept():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            await say(app)
            ws = await open_session(app)
            await ws.send(encode_client(Append(UtteranceId("s"), LINE, SpeakOptions())))
            await ws.send(encode_client(End(UtteranceId("s"))))
            _, _, done = await collect(ws, {"s"})
            await ws.close()
            return done["s"], app.audio_cache.figures()

    done, figures = run(main())
    assert done.status == "completed" and len(engine.begun) == 4
    assert figures["voxlive_cache_hits_total"] == 0
    assert figures["voxlive_cache_misses_total"] == 1


def test_a_hit_still_meets_the_rate_limit():
    engine = FakeEngine()
    limits = {"utterances_per_s_per_ip": 0.01, "utterance_burst_per_ip": 2}

    async def main():
        async with fake_server(engine, **limits) as app:
            ws = await open_session(app)
            await ws.send(speak("a"))
            await collect(ws, {"a"})
            await ws.send(speak("b"))
            _, _, done = await collect(ws, {"b"})
            await ws.send(speak("c"))
            async with asyncio.timeout(10):
                refusal = decode_server(await ws.recv())
            await ws.close()
            return done["b"], refusal

    hit, refusal = run(main())
    assert hit.status == "completed" and len(engine.begun) == 2
    assert isinstance(refusal, Error) and refusal.code == "rate_limited"


def test_a_hit_starts_much_sooner_than_a_miss_and_says_so_in_its_log_line(caplog):
    engine = FakeEngine(step_delay_s=0.05)

    async def main():
        async with fake_server(engine) as app:
            _, _, miss = await say(app)
            _, _, hit = await say(app)
            return miss, hit

    with caplog.at_level(logging.INFO, logger="voxlive.server.utterances"):
        miss, hit = run(main())
    assert miss.first_audio_ms is not None and hit.first_audio_ms is not None
    assert hit.first_audio_ms < miss.first_audio_ms / 3
    caches = [r.cache for r in caplog.records if r.name == "voxlive.server.utterances"]
    assert caches == ["miss", "hit"]
    assert caplog.records[-1].getMessage().endswith("cache hit")


def test_two_servers_share_the_cache_in_redis(tmp_path):
    first, second = FakeEngine(), FakeEngine()

    async def main(redis_url: str):
        import redis.asyncio as aioredis

        async with (
            fake_server(first, redis_url=redis_url) as a,
            fake_server(second, redis_url=redis_url) as b,
        ):
            pcm_a, marks_a, _ = await say(a)
            client = aioredis.Redis.from_url(redis_url)
            async with asyncio.timeout(5):
                while not await client.keys("voxlive:audio:*"):
                    await asyncio.sleep(0.01)
            ttl = await client.pttl((await client.keys("voxlive:audio:*"))[0])
            await client.aclose()
            pcm_b, marks_b, done_b = await say(b)
            return pcm_a, marks_a, pcm_b, marks_b, done_b, ttl, b.audio_cache.figures()

    with redis_server(tmp_path) as server:
        pcm_a, marks_a, pcm_b, marks_b, done_b, ttl, figures = run(main(server.url))
    assert len(first.begun) == 2 and second.begun == []
    assert done_b.status == "completed"
    assert pcm_b == pcm_a and marks_b == marks_a
    assert 0 < ttl <= 24 * 3600 * 1000
    assert figures["voxlive_cache_hits_total"] == 1


def test_a_started_message_and_frames_come_for_a_hit_as_for_a_miss():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            out = []
            for uid in ("m", "h"):
                ws = await open_session(app)
                await ws.send(speak(uid, emotion="happy"))
                messages, frames, _ = await collect(ws, {uid})
                await ws.close()
                started = [m for m in messages if isinstance(m, Started)]
                (stream,) = frames.values()
                out.append((started, [(f.seq, f.offset, f.last, f.pcm) for f in stream]))
            return out

    (started_m, frames_m), (started_h, frames_h) = run(main())
    assert len(started_m) == len(started_h) == 1
    assert started_h[0].emotion == started_m[0].emotion == "happy"
    assert frames_h == frames_m


# -- the cache alone -------------------------------------------------------------------


def stored(n: int = 5000) -> CachedAudio:
    samples = np.linspace(-0.5, 0.5, n, dtype=np.float32)
    words = (Timed("hi", 0, 100), Timed("there", 100, 2000))
    marks = (SentenceMarks(0, words, ()), SentenceMarks(2500, (Timed("x", 2500, n),), ()))
    return CachedAudio(samples, marks, (0, 2400), 2, ("dropped emoji",))


def test_kept_audio_round_trips_through_its_stored_bytes():
    audio = stored()
    back = CachedAudio.from_bytes(audio.to_bytes())
    assert np.array_equal(back.samples, audio.samples) and back.samples.dtype == np.float32
    assert back.marks == audio.marks
    assert (back.sentences, back.warnings) == (2, ("dropped emoji",))
    with pytest.raises(ValueError):
        CachedAudio.from_bytes(b"\x93junk")


def test_replayed_chunks_carry_every_sample_and_each_mark_where_its_sentence_starts():
    audio = stored(20000)
    chunks = audio.chunks()
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), audio.samples)
    starts = np.cumsum([0] + [len(c.samples) for c in chunks[:-1]])
    assert [(s, c.marks) for s, c in zip(starts, chunks, strict=True) if c.marks] == [
        (0, audio.marks[0]),
        (2400, audio.marks[1]),
    ]
    assert chunks[-1].end and not any(c.end for c in chunks[:-1])


def test_a_recording_copies_what_it_keeps():
    from voxlive.engine.interface import FinalChunk

    buffer = np.ones(10, np.float32)
    recording = Recording()
    recording.add(FinalChunk(buffer, 0, True))
    buffer[:] = 0
    assert recording.audio(1, []).samples.tolist() == [1.0] * 10


def test_an_utterance_larger_than_the_cache_is_not_kept():
    async def main():
        cache = AudioCache(1000, watermark_all=False, engine="e")
        key = cache.key(" hi ", "builtin:en", registered=False, **CONTROLS)
        flight = await cache.lookup(key)
        assert not isinstance(flight, CachedAudio)
        flight.complete(stored())
        return cache.figures(), key.text

    figures, text = run(main())
    assert figures["voxlive_cache_entries"] == 0 and text == "hi"


CONTROLS = {
    "emotion": "neutral",
    "intensity": 0.7,
    "speed": 1.0,
    "pitch_st": 0.0,
    "volume_db": 0.0,
    "seed": 0,
}


def test_keys_differ_by_voice_watermark_and_engine_and_ignore_surrounding_space():
    cache = AudioCache(1000, watermark_all=False, engine="e")
    marked = AudioCache(1000, watermark_all=True, engine="e")
    other = AudioCache(1000, watermark_all=False, engine="f")

    def digest(c, text="hi", voice="builtin:en", registered=False):
        return c.key(text, voice, registered=registered, **CONTROLS).digest()

    assert digest(cache) == digest(cache, "  hi\n")
    assert digest(cache) != digest(cache, voice="builtin:zh")
    assert digest(cache, voice="registered:v1:a", registered=True) != digest(
        cache, voice="registered:v1:b", registered=True
    )
    assert digest(cache) != digest(marked)
    assert digest(cache) != digest(other)
