"""Gateways and workers on Redis Streams, in one process (fast lane): real redis-server on a
free port, the tiny voice, real WebSocket clients; the same audio as ``--role all``.

The real-process tests (SIGKILL a worker, restart Redis, ``--workers N``) are in
``test_scaleout_chaos.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxlive.engine.voice import Voice
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    AudioSpec,
    Cancel,
    Done,
    End,
    Error,
    Marks,
    Speak,
    SpeakOptions,
    Started,
)
from voxlive.protocol.types import UtteranceId
from voxlive.server.app import App
from voxlive.server.gateway import RemoteBatcher

from .harness import collect, open_session, run, run_server
from .redis_server import RedisServer, redis_server

TEXTS = [
    "The first sentence is short. The second one follows it closely.",
    "Another line for the chat, with a pause, and then an end.",
    "One more? Yes, one more. And that is all.",
]


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    with redis_server(tmp_path) as server:
        yield server


@contextlib.asynccontextmanager
async def cluster(
    voice: Voice, redis: RedisServer, gateways: int = 1, workers: int = 1, **overrides: Any
) -> AsyncIterator[tuple[list[App], list[App]]]:
    """Workers and gateways sharing ``redis``, each an App in this loop."""
    async with contextlib.AsyncExitStack() as stack:
        worker_apps = [
            await stack.enter_async_context(
                run_server(voice, role="worker", redis_url=redis.url, **overrides)
            )
            for _ in range(workers)
        ]
        gateway_apps = [
            await stack.enter_async_context(
                run_server(voice, role="gateway", redis_url=redis.url, **overrides)
            )
            for _ in range(gateways)
        ]
        yield gateway_apps, worker_apps


async def speak_all(app: App, texts: list[str], **options: Any) -> dict[str, Any]:
    """Speak every text on one session; returns id → (float32 samples, done, marks, errors)."""
    ws = await open_session(app, AudioSpec(format="f32le"))
    try:
        ids = {f"u{i}" for i in range(len(texts))}
        for i, text in enumerate(texts):
            await ws.send(
                encode_client(Speak(UtteranceId(f"u{i}"), text, SpeakOptions(seed=7, **options)))
            )
        messages, frames, done = await collect(ws, ids)
    finally:
        await ws.close()
    out: dict[str, Any] = {}
    for uid, d in done.items():
        stream = d.stream
        pcm = b"".join(bytes(f.pcm) for f in frames.get(stream, [])) if stream is not None else b""
        marks = [m for m in messages if isinstance(m, Marks) and m.id == uid]
        errors = [m for m in messages if isinstance(m, Error) and m.id == uid]
        out[uid] = (np.frombuffer(pcm, np.float32), d, marks, errors)
    return out


def test_a_gateway_and_a_worker_speak_as_role_all_does(
    tiny_server_voice: Voice, redis: RedisServer
) -> None:
    async def main() -> None:
        async with run_server(tiny_server_voice) as alone:
            expected = await speak_all(alone, TEXTS, timestamps=True)
        async with cluster(tiny_server_voice, redis) as (gateways, _):
            got = await speak_all(gateways[0], TEXTS, timestamps=True)
        for uid, (pcm, done, marks, errors) in expected.items():
            g_pcm, g_done, g_marks, g_errors = got[uid]
            assert not errors and not g_errors
            assert g_done.status == done.status == "completed"
            assert len(g_pcm) == len(pcm) > 0
            np.testing.assert_allclose(g_pcm, pcm, atol=1e-4)
            assert [replace(m, stream=0) for m in g_marks] == [replace(m, stream=0) for m in marks]
            assert marks, "the words came with the audio"

    run(main())


def test_streamed_text_speaks_as_role_all(tiny_server_voice: Voice, redis: RedisServer) -> None:
    """An LLM-style stream (appends mid-sentence, then end) through a gateway: the same
    audio and marks as ``--role all``."""
    pieces = ["Hello there, ", "this arrives in pieces. And ", "then it ends", " here."]

    async def stream(app: App) -> tuple[np.ndarray, list[Marks], Done]:
        ws = await open_session(app, AudioSpec(format="f32le"))
        options = SpeakOptions(seed=3, timestamps=True)
        await ws.send(encode_client(Append(UtteranceId("s"), pieces[0], options)))
        for piece in pieces[1:]:
            await asyncio.sleep(0.05)
            await ws.send(encode_client(Append(UtteranceId("s"), piece)))
        await ws.send(encode_client(End(UtteranceId("s"))))
        messages, frames, done = await collect(ws, {"s"})
        await ws.close()
        stream_id = done["s"].stream
        assert stream_id is not None
        pcm = np.frombuffer(b"".join(bytes(f.pcm) for f in frames[stream_id]), np.float32)
        return pcm, [replace(m, stream=0) for m in messages if isinstance(m, Marks)], done["s"]

    async def main() -> None:
        async with run_server(tiny_server_voice) as alone:
            expected, expected_marks, _ = await stream(alone)
        async with cluster(tiny_server_voice, redis) as (gateways, _):
            got, marks, done = await stream(gateways[0])
        assert done.status == "completed"
        assert len(got) == len(expected) > 0 and len(marks) == len(expected_marks) == 2
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert marks == expected_marks

    run(main())


def test_the_http_speech_api_speaks_through_a_gateway(
    tiny_server_voice: Voice, redis: RedisServer
) -> None:
    body = {"model": "tts-1", "voice": "en", "input": TEXTS[0], "response_format": "pcm"}

    async def speech(app: App) -> np.ndarray:
        def post() -> bytes:
            request = urllib.request.Request(
                f"http://127.0.0.1:{app.port}/v1/audio/speech",
                data=json.dumps(body | {"seed": 5}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as r:
                return bytes(r.read())

        data = await asyncio.get_running_loop().run_in_executor(None, post)
        return np.frombuffer(data, np.int16).astype(np.int32)

    async def main() -> None:
        async with run_server(tiny_server_voice) as alone:
            expected = await speech(alone)
        async with cluster(tiny_server_voice, redis) as (gateways, _):
            got = await speech(gateways[0])
        assert len(got) == len(expected) > 0
        assert np.abs(got - expected).max() <= 2  # 16-bit rounding of the same samples

    run(main())


def test_cancel_reaches_the_worker(tiny_server_voice: Voice, redis: RedisServer) -> None:
    long = " ".join(["A long sentence keeps the worker busy for a while."] * 12)

    async def main() -> None:
        async with cluster(tiny_server_voice, redis) as (gateways, workers):
            ws = await open_session(gateways[0])
            await ws.send(encode_client(Speak(UtteranceId("x"), long, SpeakOptions())))
            await asyncio.sleep(0.3)
            await ws.send(encode_client(Cancel(UtteranceId("x"))))
            _, _, done = await collect(ws, {"x"})
            assert done["x"].status == "cancelled"
            worker = workers[0].worker
            assert worker is not None
            async with asyncio.timeout(5):
                while worker.items:
                    await asyncio.sleep(0.05)
            await ws.close()

    run(main())


def test_a_full_work_stream_answers_overloaded(
    tiny_server_voice: Voice, redis: RedisServer
) -> None:
    async def main() -> None:
        async with run_server(
            tiny_server_voice, role="gateway", redis_url=redis.url, work_queue_cap=1
        ) as gateway:  # no worker: the first sentence fills the stream
            ws = await open_session(gateway)
            one = Speak(UtteranceId("waits"), TEXTS[1], SpeakOptions())  # one sentence
            await ws.send(encode_client(one))
            batcher = gateway.batcher
            async with asyncio.timeout(10):
                while not (isinstance(batcher, RemoteBatcher) and batcher.submitted):
                    await asyncio.sleep(0.02)
            waiting = 'voxlive_work_queue_waiting{priority="normal"} 1.0'
            async with asyncio.timeout(10):  # the next depth reading shows it (every 2 s)
                while waiting not in (await http_get(gateway, "/metrics"))[1]:
                    await asyncio.sleep(0.1)
            await ws.send(encode_client(Speak(UtteranceId("full"), TEXTS[2], SpeakOptions())))
            messages, _, done = await collect(ws, {"full"})
            await ws.send(encode_client(Cancel(UtteranceId("waits"))))
            _, _, waited = await collect(ws, {"waits"})
            await ws.close()
        errors = [m for m in messages if isinstance(m, Error)]
        assert done["full"].status == "failed"
        assert [(e.code, e.id) for e in errors] == [("overloaded", "full")]
        assert errors[0].retryable and errors[0].retry_after_ms
        assert waited["waits"].status == "cancelled"  # it was queued, not refused

    run(main())


def test_redis_away_gives_retryable_unavailable_then_recovers(
    tiny_server_voice: Voice, redis: RedisServer
) -> None:
    async def main() -> None:
        async with cluster(tiny_server_voice, redis) as (gateways, workers):
            ws = await open_session(gateways[0])
            redis.stop()
            await ws.send(encode_client(Speak(UtteranceId("a"), TEXTS[0], SpeakOptions())))
            messages, _, done = await collect(ws, {"a"})
            errors = [m for m in messages if isinstance(m, Error)]
            assert done["a"].status == "failed"
            assert [e.code for e in errors] == ["unavailable"]
            assert errors[0].retryable and errors[0].retry_after_ms
            # The gateway stays in its load balancer (it answers for itself); the worker,
            # which can take no work, says it is not ready.
            assert await http_status(gateways[0], "/readyz") == 200
            assert await http_status(workers[0], "/readyz") == 503
            redis.start()
            async with asyncio.timeout(10):  # the same socket works again, no restart
                while True:
                    await ws.send(encode_client(Speak(UtteranceId("b"), TEXTS[1], SpeakOptions())))
                    _, _, done = await collect(ws, {"b"})
                    if done["b"].status == "completed":
                        break
                    await asyncio.sleep(0.2)
            await ws.close()

    run(main())


async def http_status(app: App, path: str) -> int:
    return (await http_get(app, path))[0]


async def http_get(app: App, path: str) -> tuple[int, str]:
    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{app.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return await asyncio.get_running_loop().run_in_executor(None, get)


def test_metrics_show_the_work_streams(tiny_server_voice: Voice, redis: RedisServer) -> None:
    async def main() -> None:
        async with cluster(tiny_server_voice, redis) as (gateways, workers):
            await speak_all(gateways[0], TEXTS[:2])
            _, gateway = await http_get(gateways[0], "/metrics")
            _, worker = await http_get(workers[0], "/metrics")
            status, _ = await http_get(workers[0], "/")
        assert 'voxlive_work_queue_waiting{priority="realtime"} 0.0' in gateway
        assert 'voxlive_work_queue_pending{priority="normal"} 0.0' in worker
        submitted = metric(gateway, "voxlive_work_submitted_total")
        assert submitted == 3 == metric(worker, "voxlive_work_completed_total")  # sentences
        assert status == 404  # a worker serves no page and no sessions

    run(main())


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def test_started_comes_when_a_worker_begins_before_the_audio(
    tiny_server_voice: Voice, redis: RedisServer
) -> None:
    """``started`` (with its ``queue_ms``) when the worker's batcher began the sentence,
    before the first frame, as with ``--role all``; ``done`` reports the same figures."""

    async def main() -> None:
        async with cluster(tiny_server_voice, redis) as (gateways, _):
            ws = await open_session(gateways[0])
            await ws.send(encode_client(Speak(UtteranceId("u"), TEXTS[0], SpeakOptions())))
            seen: list[Any] = []
            async with asyncio.timeout(30):
                while not any(isinstance(m, Done) for m in seen):
                    seen.append(decode_server(await ws.recv()))
            await ws.close()
        kinds = [type(m).__name__ for m in seen]
        assert kinds.index("Started") < kinds.index("AudioFrame")
        started = next(m for m in seen if isinstance(m, Started))
        done = next(m for m in seen if isinstance(m, Done))
        assert done.status == "completed" and done.samples > 0
        assert done.first_audio_ms is not None and 0 <= started.queue_ms <= done.first_audio_ms

    run(main())


class _Sink:
    def __init__(self) -> None:
        self.events: list[str] = []

    def job_started(self, job: Any, queue_s: float) -> None:
        self.events.append(f"started {job.request.index}")

    def job_failed(self, job: Any, status: str, reason: str, retry_after_s: Any = None) -> None:
        self.events.append(f"failed {status}")


class _Listener:
    def __init__(self) -> None:
        self.chunks: list[Any] = []

    def audio(self, chunk: Any) -> None:
        self.chunks.append(chunk)

    def failed(self, reason: str) -> None:
        raise AssertionError(reason)


class _Batcher:
    def completed(self, performance: Any) -> None:
        pass

    def cancelled(self, performance: Any) -> None:
        pass


def test_a_remote_performance_puts_sentences_in_order_and_marks_in_place() -> None:
    """Sentence 1's chunks wait for sentence 0's; chunk 0 of each is its ``started``; marks
    move by the samples before their sentence; the closing chunk follows the last."""
    from voxlive.engine.interface import Controls, Sentence, SentenceMarks, SentenceRequest, Timed
    from voxlive.server.batcher import Job
    from voxlive.server.gateway import RemotePerformance
    from voxlive.server.streams import Result
    from voxlive.server.streams.jobs import chunk_fields, started_fields

    sink, listener = _Sink(), _Listener()
    performance = RemotePerformance(_Batcher(), "g:1", Controls(), listener)  # type: ignore[arg-type]
    sentence = Sentence("a", ["a"], [1], ["a"])
    for i in range(2):
        request = SentenceRequest(performance, i, sentence)
        performance.jobs[i] = Job(request=request, sink=sink, owner=None, session="s")  # type: ignore[arg-type]
    marks = SentenceMarks(0, (Timed("a", 0, 3),), ())

    def result(sentence: int, chunk: int, fields: dict[str, bytes], last: bool = False) -> Result:
        return Result("g:1", sentence, chunk, 1, last, fields)

    ones = np.ones(3, np.float32)
    performance.result(result(1, 0, started_fields()))
    performance.result(result(1, 1, chunk_fields(2 * ones, marks), last=True))
    assert listener.chunks == []  # sentence 1 waits for sentence 0
    performance.result(result(0, 0, started_fields()))
    performance.result(result(0, 1, chunk_fields(ones, marks)))
    performance.result(result(0, 2, chunk_fields(ones, None), last=True))
    performance.end(2)
    assert sink.events == ["started 1", "started 0"]
    samples = [c.samples.tolist() for c in listener.chunks]
    assert samples == [[1.0] * 3, [1.0] * 3, [2.0] * 3, []]
    assert [c.marks.start if c.marks else None for c in listener.chunks] == [0, None, 6, None]
    assert listener.chunks[2].marks.words == (Timed("a", 6, 9),)
    assert listener.chunks[-1].end and performance.finished


@pytest.mark.slow
def test_chinese_and_mixed_text_speak_through_a_gateway_as_role_all(
    server_voice: Voice, mandarin: Any, redis: RedisServer
) -> None:
    """Danmaku through a gateway: a Chinese comment and a mixed one, whose language runs
    are sentences of their own voices on the worker. The Mandarin voice is resampled to
    the utterance's rate sentence by sentence on a worker, across the whole utterance
    with ``--role all``: the first sentence is the same, later ones the same speech up to
    a sample's phase (docs/scale-out.md)."""
    from voxlive.engine.multivoice import MultiVoiceEngine
    from voxlive.engine.vits import VitsEngine

    engine = MultiVoiceEngine([VitsEngine(server_voice), mandarin], default="en")
    texts = {"zh": "感谢老板送的火箭！谢谢大家。", "mixed": "Thank you 谢谢 for the gift!"}

    async def speak(app: App) -> dict[str, tuple[np.ndarray, list[Marks]]]:
        ws = await open_session(app, AudioSpec(format="f32le"))
        for uid, text in texts.items():
            options = SpeakOptions(seed=9, lang="auto", timestamps=True)
            await ws.send(encode_client(Speak(UtteranceId(uid), text, options)))
        messages, frames, done = await collect(ws, set(texts), timeout=120)
        await ws.close()
        out = {}
        for uid, d in done.items():
            assert d.status == "completed" and d.stream is not None, d
            pcm = np.frombuffer(b"".join(bytes(f.pcm) for f in frames[d.stream]), np.float32)
            marks = [replace(m, stream=0) for m in messages if isinstance(m, Marks) and m.id == uid]
            out[uid] = (pcm, marks)
        return out

    async def main() -> None:
        async with run_server(engine) as alone:
            expected = await speak(alone)
        async with cluster(engine, redis) as (gateways, _):  # type: ignore[arg-type]
            got = await speak(gateways[0])
        for uid in texts:
            (pcm, marks), (want, want_marks) = got[uid], expected[uid]
            sentences = len(want_marks)
            assert sentences >= 2 and len(marks) == sentences, uid
            assert abs(len(pcm) - len(want)) < sentences, uid
            first = marks[1].offset  # the first sentence: the same but at the seam, where
            diff = np.abs(pcm[:first] - want[:first])  # the resampler's filter ends
            assert diff.max() < 0.02 and np.mean(diff > 1e-3) < 0.001, (uid, diff.max())
            for m, w in zip(marks, want_marks, strict=True):
                assert [x.text for x in m.words] == [x.text for x in w.words], uid
                assert abs(m.offset - w.offset) < sentences, uid
                for a, b in zip(m.words, w.words, strict=True):
                    assert abs(a.start - b.start) < sentences + 1, (uid, a, b)

    run(main())
