"""Voice registration through a real server (SPEC.md §4.6): real speech, hostile files, redis.

Reference clips are real speech from the bundled voice, written as WAV/OGG with
soundfile, uploaded over the wire and decoded/embedded by the server.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import struct
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from voxlive.engine import registration
from voxlive.engine.voice import SynthesisParams
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    AudioFrame,
    Done,
    Error,
    Speak,
    SpeakOptions,
    VoiceDelete,
    VoiceDeleted,
    VoiceList,
    VoiceListing,
    VoiceReady,
    VoiceRegister,
)
from voxlive.protocol.types import UtteranceId
from voxlive.server.store import MemoryVoiceStore, Owner
from voxlive.server.voices import Voices

from .harness import open_session, run, run_server, shared_speaker
from .redis_server import redis_server

RATE = 22050
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "Peter Piper picked a peck of pickled peppers.",
]
CHUNK = 48 * 1024


@pytest.fixture(scope="module")
def speech(voice) -> list[np.ndarray]:
    return voice.synthesize_texts(SENTENCES, SynthesisParams(seed=1))


@pytest.fixture(scope="module")
def clip(speech) -> np.ndarray:
    """~7.5 s: the three sentences with 0.5 s of silence around each."""
    pause = np.zeros(RATE // 2, np.float32)
    return np.concatenate([pause] + [x for s in speech for x in (s, pause)])


def encode(x: np.ndarray, rate: int = RATE, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def wav(clip) -> bytes:
    return encode(clip, subtype="PCM_16")  # ~330 KB: needs a chunked upload


def chunks(id: str, data: bytes, size: int = CHUNK, **first) -> list[VoiceRegister]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        VoiceRegister(
            UtteranceId(id), p, seq=n, final=n == len(pieces) - 1, **(first if n == 0 else {})
        )
        for n, p in enumerate(pieces)
    ]


async def request(ws, *messages, id: str):
    """Send ``messages``; return the first non-audio reply carrying ``id``."""
    for message in messages:
        await ws.send(encode_client(message))
    async with asyncio.timeout(30):
        while True:
            reply = decode_server(await ws.recv())
            if not isinstance(reply, AudioFrame) and getattr(reply, "id", None) == id:
                return reply


async def register(ws, id: str, data: bytes, **first) -> VoiceReady | Error:
    return await request(ws, *chunks(id, data, **first), id=id)


async def listed(ws, id: str = "ls") -> dict[str, str]:
    reply = await request(ws, VoiceList(UtteranceId(id)), id=id)
    assert isinstance(reply, VoiceListing)
    return {v.voice: v.scope for v in reply.voices}


@pytest.mark.slow
def test_a_chunked_clip_registers_and_the_same_bytes_come_back_cached(server_voice, wav):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            start = time.perf_counter()
            first = await register(ws, "r1", wav, name="alice")
            first_s = time.perf_counter() - start
            assert isinstance(first, VoiceReady), first
            assert (first.voice, first.cached) == ("alice", False)
            summary = first.summary
            assert 5.0 < summary["usable_s"] < 8.0
            assert summary["snr_db"] > 20 and summary["clipping"] == 0.0
            assert (summary["sample_rate"], summary["source_rate"]) == (16000, RATE)
            start = time.perf_counter()
            again = await register(ws, "r2", wav, name="alice")
            again_s = time.perf_counter() - start
            assert again == VoiceReady(UtteranceId("r2"), "alice", True, summary)
            assert again_s < first_s
            metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{app.port}/metrics")
            assert "voice_cache_hits 1.0\n" in metrics and "voice_cache_misses 1.0\n" in metrics
            await ws.close()

    run(main())


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.mark.slow
def test_the_cached_registration_path_takes_at_most_5_ms(clip, wav):
    async def main():
        voices = Voices(MemoryVoiceStore(), shared_speaker(), max_reference_bytes=10 << 20)
        event = VoiceRegister(UtteranceId("r"), wav, name="bob")
        first = await voices.register(event, Owner("s1"))
        assert not first.cached
        # One cache key: the engine pipeline's content hash (Synthesizer.register's too).
        assert first.profile.content_hash == registration.decode(wav).content_hash
        times = []
        for _ in range(20):
            start = time.perf_counter()
            assert (await voices.register(event, Owner("s1"))).cached
            times.append(time.perf_counter() - start)
        await voices.close()
        return statistics.median(times)

    median_s = run(main())
    print(f"cached registration of {len(wav)} bytes: {median_s * 1000:.2f} ms")
    assert median_s <= 0.005


@pytest.mark.slow
def test_a_re_encoded_copy_of_the_same_audio_is_found_by_content(server_voice, clip):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            first = await register(ws, "a", encode(clip, subtype="PCM_16"))
            copy = await register(ws, "b", encode(clip, subtype="PCM_16") + b"\x00\x00")
            assert isinstance(copy, VoiceReady) and copy.cached
            assert copy.voice == first.voice  # same content, same session, same scope

    run(main())


def nan_wav(clip: np.ndarray) -> bytes:
    x = clip[:RATE].copy()
    x[100] = np.nan
    return encode(x, subtype="FLOAT")


def riff_wav(declared: int, payload: bytes, rate: int = 16000) -> bytes:
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + fmt + struct.pack("<4sI", b"data", declared) + payload
    return struct.pack("<4sI", b"RIFF", len(body)) + body


HOSTILE = {
    "unsupported_format": lambda clip: b"this is not audio at all" * 40,
    "corrupt_audio": lambda clip: riff_wav(64000, b"\x01\x00" * 512),
    "too_long_declared": lambda clip: riff_wav(0xFFFFFFF0, b"\x01\x00" * 512),
    "too_short": lambda clip: encode(clip[RATE // 2 : RATE // 2 + 2 * RATE]),
    "silent": lambda clip: encode(np.zeros(5 * 8000, np.float32), 8000, subtype="PCM_16"),
    "invalid_audio": nan_wav,
    "too_many_channels": lambda clip: encode(np.zeros((1000, 9), np.float32), 16000),
    "bad_sample_rate": lambda clip: riff_wav(2000, b"\x01\x00" * 1000, rate=4000),
}


@pytest.mark.slow
def test_each_hostile_file_gets_its_code_and_the_connection_stays_open(server_voice, clip):
    async def main():
        async with run_server(server_voice, max_reference_bytes=200_000) as app:
            ws = await open_session(app)
            for n, (code, build) in enumerate(HOSTILE.items()):
                reply = await register(ws, f"h{n}", build(clip))
                assert isinstance(reply, Error), (code, reply)
                assert (reply.code, reply.id) == (code, f"h{n}")
            big = await register(ws, "big", encode(clip, subtype="PCM_16"))
            assert isinstance(big, Error) and big.code == "too_large"
            assert await listed(ws) == {}  # still open, nothing registered

    run(main())


@pytest.mark.slow
def test_session_voices_go_with_their_session_and_persistent_ones_stay(server_voice, clip):
    async def main():
        async with run_server(server_voice) as app:
            a = await open_session(app)
            mine = await register(a, "r1", encode(clip[: RATE * 5]), name="mine")
            kept = await register(a, "r2", encode(clip), name="kept", scope="persistent")
            assert isinstance(mine, VoiceReady) and isinstance(kept, VoiceReady)
            assert await listed(a) == {"mine": "session", "kept": "persistent"}
            b = await open_session(app)
            assert await listed(b) == {"kept": "persistent"}
            gone = await request(b, VoiceDelete(UtteranceId("d"), "mine"), id="d")
            assert gone == VoiceDeleted(UtteranceId("d"), "mine", False)  # not b's to delete
            await a.close()
            await asyncio.sleep(0.1)
            assert await listed(b) == {"kept": "persistent"}
            assert [p.voice_id for p in await app.voices.store.list()] == ["kept"]
            deleted = await request(b, VoiceDelete(UtteranceId("d"), "kept"), id="d")
            assert deleted == VoiceDeleted(UtteranceId("d"), "kept", True)
            assert await listed(b) == {}

    run(main())


@pytest.mark.tiny_voice
def test_speaking_an_unknown_voice_fails_with_unknown_voice(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            speak = Speak(UtteranceId("u"), "Hello.", SpeakOptions(voice="nobody"))
            error = await request(ws, speak, id="u")
            assert (error.code, error.id) == ("unknown_voice", "u")
            done = decode_server(await ws.recv())
            assert done == Done(UtteranceId("u"), None, "failed")

    run(main())


@pytest.mark.slow
def test_speaking_a_registered_voice_moves_the_bundled_voice_toward_it(server_voice, clip):
    from voxlive.engine.pitch import yin_median
    from voxlive.engine.transform import VoiceTransform
    from voxlive.engine.world import analyze, apply, synthesize

    # A synthetic speaker with known ground truth: 5 semitones up, formants x 1.12.
    truth = VoiceTransform(f0_shift_st=5.0, formant_scale=1.12)
    other = synthesize(apply(analyze(clip, RATE), truth))
    text = "Welcome back to the stream, everyone."

    async def speak_as(ws, uid: str, voice: str | None) -> tuple[np.ndarray, Done]:
        await ws.send(
            encode_client(Speak(UtteranceId(uid), text, SpeakOptions(voice=voice, seed=3)))
        )
        pcm, done = [], None
        async with asyncio.timeout(60):
            while done is None:
                msg = decode_server(await ws.recv())
                if isinstance(msg, AudioFrame):
                    pcm.append(msg.pcm)
                elif isinstance(msg, Done):
                    done = msg
        return np.frombuffer(b"".join(pcm), "<i2").astype(np.float32) / 32768, done

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            ready = await register(ws, "r", encode(other, subtype="PCM_16"), name="other")
            assert isinstance(ready, VoiceReady), ready
            plain, plain_done = await speak_as(ws, "plain", None)
            moved, moved_done = await speak_as(ws, "moved", ready.voice)
            return ready, plain, plain_done, moved, moved_done

    ready, plain, plain_done, moved, moved_done = run(main())
    assert ready.summary["similarity"] >= ready.summary["similarity_before"] + 0.10
    assert plain_done.status == moved_done.status == "completed"
    assert len(moved) == len(plain)  # the stage keeps timing: marks stay valid
    # End to end the reference says other sentences than the probe, and the WORLD pass
    # that made it adds up to ~0.5 st, so allow 2.5 st around the true 5 (the fit itself
    # is checked to 10 % in tests/engine/test_adapt.py).
    shift = 12 * np.log2(yin_median(moved, RATE) / yin_median(plain, RATE))
    assert abs(shift - 5.0) < 2.5, shift


@pytest.mark.slow
def test_a_persistent_voice_is_shared_by_servers_on_one_redis(server_voice, clip, tmp_path):
    async def main(url: str):
        data = encode(clip)
        async with run_server(server_voice, redis_url=url) as one:
            ws = await open_session(one)
            first = await register(ws, "r", data, name="shared", scope="persistent")
            assert isinstance(first, VoiceReady) and not first.cached
            session_voice = await register(ws, "s", encode(clip[: RATE * 5]))
            assert isinstance(session_voice, VoiceReady)
            async with run_server(server_voice, redis_url=url) as two:
                other = await open_session(two)
                assert await listed(other) == {"shared": "persistent"}
                again = await register(other, "r", data, name="shared", scope="persistent")
                assert again == VoiceReady(UtteranceId("r"), "shared", True, first.summary)
                assert two.voices.cache_misses == 0
            await ws.close()

    with redis_server(tmp_path) as redis:
        run(main(redis.url))
