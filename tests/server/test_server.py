"""The WebSocket server end to end: real engine, real sockets, raw protocol messages."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from voxlive.bench.server_metrics import parse_metrics
from voxlive.engine.pcm import pcm16
from voxlive.engine.visemes import VISEMES
from voxlive.engine.voice import SynthesisParams
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    AudioFrame,
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
from voxlive.protocol.types import CloseCode

from .harness import collect, open_session, run, run_server

TEXTS = [
    "Thanks for the follow!",
    "The dragon sleeps in the cave beyond the mountains.",
    "Could you tell me which way the station is?",
    "Good game, everyone.",
    "Keep the chat friendly, please.",
]
LONG = (
    "The old library at the end of the street opens early in the morning. "
    "Inside, the shelves reach all the way to the ceiling, and the air smells of paper. "
    "Every visitor gets a small map, because it is very easy to get lost among the books. "
    "At noon the bell rings, and the reading room fills with students and travelers."
)


def pcm_of(frames: list[AudioFrame]) -> np.ndarray:
    return np.frombuffer(b"".join(f.pcm for f in frames), "<i2")


def same_audio(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal length and ≥ 40 dB SNR: batching changes float rounding, never content."""
    if len(got) != len(want):
        return False
    noise = np.sum((got.astype(np.float64) - want) ** 2)
    return bool(10 * np.log10(np.sum(want.astype(np.float64) ** 2) / max(noise, 1e-9)) >= 40)


def engine_pcm(voice, text: str, seed: int) -> np.ndarray:
    """What the engine itself says for this text and seed, as 16-bit PCM."""
    requests, _ = voice.requests(text, SynthesisParams(seed=seed))
    (audio,) = voice.synthesize_groups([requests])
    return pcm16(audio)


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(id=uid, text=text, options=SpeakOptions(**options)))


@pytest.mark.tiny_voice  # isolation, not sound: each seed gives the tiny voice other audio
def test_twenty_sessions_by_five_utterances_get_exactly_their_own_audio(server_voice, tiny_voice):
    async def session(app, s: int):
        ws = await open_session(app)
        ids = {f"s{s}-u{k}" for k in range(5)}
        for k in range(5):  # all five in flight at once
            await ws.send(speak(f"s{s}-u{k}", TEXTS[k], seed=100 * s + k))
        messages, frames, done = await collect(ws, ids, timeout=240)
        await ws.close()
        return messages, frames, done

    async def main():
        async with run_server(server_voice) as app:
            return await asyncio.gather(*(session(app, s) for s in range(20)))

    results = run(main())
    for s, (messages, frames, done) in enumerate(results):
        streams = {m.id: m.stream for m in messages if isinstance(m, Started)}
        assert len(set(streams.values())) == 5
        for k in range(5):
            uid = f"s{s}-u{k}"
            assert done[uid].status == "completed"
            mine = frames[streams[uid]]
            assert [f.seq for f in mine] == list(range(len(mine)))
            offsets = np.cumsum([0] + [len(f.pcm) // 2 for f in mine[:-1]])
            assert [f.offset for f in mine] == offsets.tolist()
            assert mine[-1].last and not any(f.last for f in mine[:-1])
            got, want = pcm_of(mine), engine_pcm(tiny_voice, TEXTS[k], 100 * s + k)
            assert len(got) == done[uid].samples
            assert same_audio(got, want)


@pytest.mark.tiny_voice
def test_cancel_mid_utterance_stops_frames_within_one_chunk(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(speak("long", LONG, seed=1))
            frames, after = [], 0
            cancelled = False
            async with asyncio.timeout(60):
                while True:
                    msg = decode_server(await ws.recv())
                    if isinstance(msg, AudioFrame):
                        frames.append(msg)
                        after += len(msg.pcm) // 2 if cancelled else 0
                        if not cancelled:
                            await ws.send(encode_client(Cancel(id="long")))
                            cancelled = True
                    elif isinstance(msg, Done):
                        metrics = await asyncio.to_thread(_metrics, app.port)
                        return frames, after, msg, metrics

    frames, after, done, metrics = run(main())
    assert done.status == "cancelled"
    assert done.samples == sum(len(f.pcm) // 2 for f in frames)
    # The server's own counters (``/metrics``) saw the same utterance and audio.
    assert metrics['utterances_total{status="cancelled"}'] == 1
    assert 'utterances_total{status="completed"}' not in metrics
    assert metrics["audio_seconds_total"] == pytest.approx(done.samples / 22050, abs=1e-4)
    assert metrics["engine_sentences_begun_total"] >= 1 and metrics["engine_steps_total"] >= 1
    assert metrics["process_cpu_seconds_total"] > 0
    assert frames[-1].last and frames[-1].cancelled
    # At most the chunk in progress (≤ 152 latent frames × 256 samples) follows the cancel.
    assert after <= 152 * 256
    assert done.samples < 10 * 22050  # far less than the whole text
    tail = np.frombuffer(frames[-1].pcm, "<i2")
    assert len(tail) == 0 or abs(int(tail[-1])) <= 64  # faded out, no click


@pytest.mark.tiny_voice
def test_streamed_text_is_spoken_completely_and_in_order(server_voice):
    pieces = ["Hello the", "re, how are", " you today? I am fi", "ne, thanks", " for asking."]
    whole = "".join(pieces)

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(
                encode_client(Append(id="st", text=pieces[0], options=SpeakOptions(seed=5)))
            )
            for piece in pieces[1:]:
                await asyncio.sleep(0.05)  # text arrives as an LLM writes it
                await ws.send(encode_client(Append(id="st", text=piece)))
            await ws.send(encode_client(End(id="st")))
            await ws.send(speak("whole", whole, seed=5))
            return await collect(ws, {"st", "whole"})

    messages, frames, done = run(main())
    streams = {m.id: m.stream for m in messages if isinstance(m, Started)}
    streamed, spoken = pcm_of(frames[streams["st"]]), pcm_of(frames[streams["whole"]])
    assert done["st"].status == "completed"
    assert same_audio(streamed, spoken)


@pytest.mark.tiny_voice
def test_timestamps_mark_every_word_inside_the_audio(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(speak("t", "Welcome back to the stream.", timestamps=True, seed=2))
            return await collect(ws, {"t"})

    messages, _, done = run(main())
    marks = [m for m in messages if type(m).__name__ == "Marks"]
    assert len(marks) == 1
    words = [w.text.lower() for w in marks[0].words]
    assert words == ["welcome", "back", "to", "the", "stream"]
    ends = [w.end for w in marks[0].words]
    assert ends == sorted(ends) and 0 < ends[-1] <= done["t"].samples


@pytest.mark.tiny_voice
@pytest.mark.parametrize("rate", [None, 16000], ids=["voice-rate", "16k"])
def test_timestamps_carry_a_contiguous_viseme_track_ahead_of_its_audio(server_voice, rate):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app, AudioSpec(sample_rate=rate))
            text = "Map five, she said. Judge the church!"
            await ws.send(speak("v", text, timestamps=True, seed=rate or 1))
            received = []  # every message and frame, in arrival order
            async with asyncio.timeout(60):
                while True:
                    received.append(decode_server(await ws.recv()))
                    if isinstance(received[-1], Done):
                        return received

    received = run(main())
    done = received[-1]
    assert isinstance(done, Done) and done.status == "completed"
    marks = [m for m in received if isinstance(m, Marks)]
    assert len(marks) == 2
    for m in marks:
        visemes = m.visemes
        assert visemes[0].start == m.offset  # SPEC.md §5.3: from the sentence's first sample
        assert all(a.end == b.start and a.v != b.v for a, b in zip(visemes, visemes[1:]))
        assert all(v.end > v.start for v in visemes) and {v.v for v in visemes} <= set(VISEMES)
        assert all(m.offset <= p.start and p.end <= visemes[-1].end for p in m.phonemes)
        # Sent before the audio it describes: no earlier frame reaches the sentence.
        earlier = received[: received.index(m)]
        assert all(
            f.offset + len(f.pcm) // 2 <= m.offset for f in earlier if isinstance(f, AudioFrame)
        )
    # One sentence's track ends where the next one's starts, the last with the audio
    # (resampled, the audio's length may round the other way by a sample).
    assert marks[1].offset == marks[0].visemes[-1].end
    assert abs(marks[1].visemes[-1].end - done.samples) <= (0 if rate is None else 1)
    assert "PP" in {v.v for v in marks[0].visemes} and "CH" in {v.v for v in marks[1].visemes}


@pytest.mark.tiny_voice
def test_resampled_float_output_has_the_asked_rate_and_format(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            spec = AudioSpec(sample_rate=16000, format="f32le", frame_ms=20)
            ws = await open_session(app, spec)
            await ws.send(speak("r", TEXTS[1], seed=3))
            return await collect(ws, {"r"})

    _, frames, done = run(main())
    (mine,) = frames.values()
    assert all(len(f.pcm) == 320 * 4 for f in mine[:-1])  # 20 ms at 16 kHz, 4 bytes each
    audio = np.frombuffer(b"".join(f.pcm for f in mine), "<f4")
    assert len(audio) == done["r"].samples
    assert 1.5 < len(audio) / 16000 < 5 and np.abs(audio).max() <= 1.0


@pytest.mark.tiny_voice
def test_expired_deadline_drops_the_utterance_with_status_expired(server_voice):
    async def main():
        async with run_server(server_voice, max_active_items=1) as app:
            ws = await open_session(app)
            await ws.send(speak("busy", LONG))
            await ws.send(speak("late", "Hello!", deadline_ms=1))
            return await collect(ws, {"busy", "late"}, timeout=120)

    messages, _, done = run(main())
    assert done["late"].status == "expired" and done["late"].stream is None
    assert any(isinstance(m, Error) and m.code == "expired" and m.id == "late" for m in messages)
    assert done["busy"].status == "completed"


@pytest.mark.tiny_voice
def test_full_queue_answers_overloaded_with_a_retry_hint(server_voice):
    async def main():
        async with run_server(server_voice, max_active_items=1, max_queued_items=2) as app:
            ws = await open_session(app)
            await ws.send(speak("a", LONG))  # four sentences: more than the queue holds
            return await collect(ws, {"a"})

    messages, _, done = run(main())
    (error,) = [m for m in messages if isinstance(m, Error)]
    assert error.code == "overloaded" and error.retryable and error.retry_after_ms > 0
    assert done["a"].status == "failed"


@pytest.mark.tiny_voice
def test_realtime_utterances_start_before_queued_bulk_work(server_voice):
    async def main():
        async with run_server(server_voice, max_active_items=1) as app:
            ws = await open_session(app)
            for k in range(4):  # seeds of their own: four syntheses, not one and three repeats
                await ws.send(speak(f"bulk{k}", TEXTS[1], priority="bulk", seed=k))
            await ws.send(speak("npc", "Watch out!", priority="realtime"))
            ids = {f"bulk{k}" for k in range(4)} | {"npc"}
            return await collect(ws, ids, timeout=120)

    messages, _, _ = run(main())
    order = [m.id for m in messages if isinstance(m, Started)]
    assert order.index("npc") <= 1  # at most the bulk item already running goes first


@pytest.mark.tiny_voice
def test_a_chatty_session_cannot_starve_another(server_voice):
    async def main():
        async with run_server(server_voice, max_active_items=1) as app:
            chatty, quiet = await open_session(app), await open_session(app)
            for k in range(8):
                await chatty.send(speak(f"c{k}", TEXTS[k % 5]))
            await asyncio.sleep(0.05)
            await quiet.send(speak("q", "Hi there!"))
            q = await collect(quiet, {"q"}, timeout=120)
            c = await collect(chatty, {f"c{k}" for k in range(8)}, timeout=120)
            return q, c

    (qm, _, _), (cm, _, cdone) = run(main())
    # The quiet session's utterance started before the chatty one's last few.
    finished_chatty = [d for d in cdone.values() if d.status == "completed"]
    assert len(finished_chatty) == 8
    q_started = next(m for m in qm if isinstance(m, Started))
    assert q_started.queue_ms < max(m.queue_ms for m in cm if isinstance(m, Started))


@pytest.mark.tiny_voice
def test_one_failing_utterance_fails_alone(server_voice, monkeypatch):
    real_begin = server_voice.begin
    (bad,) = server_voice.frontend.process(TEXTS[1]).sentences

    def flaky_begin(requests, schedule=None, tags=None):
        if any(list(r.ids) == bad.ids for r in requests):
            raise RuntimeError("injected engine failure")
        return real_begin(requests, schedule, tags)

    monkeypatch.setattr(server_voice, "begin", flaky_begin)

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(speak("good1", TEXTS[0]))
            await ws.send(speak("bad", TEXTS[1]))
            await ws.send(speak("good2", TEXTS[3]))
            return await collect(ws, {"good1", "bad", "good2"})

    messages, _, done = run(main())
    assert done["bad"].status == "failed"
    assert done["good1"].status == done["good2"].status == "completed"
    (error,) = [m for m in messages if isinstance(m, Error)]
    assert error.id == "bad" and error.code == "internal" and "injected" not in error.message


@pytest.mark.tiny_voice
def test_unspeakable_text_gets_its_error_code(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(speak("zh", "太棒了主播加油"))
            return await collect(ws, {"zh"})

    messages, _, done = run(main())
    assert done["zh"].status == "failed"
    assert [m.code for m in messages if isinstance(m, Error)] == ["unsupported_language"]


@pytest.mark.tiny_voice
def test_shutdown_finishes_in_flight_work_then_closes_with_1012(server_voice):
    async def main():
        stop_at = None
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(speak("last", TEXTS[1]))
            first = await ws.recv()  # started: the utterance is in flight
            stop_at = time.monotonic()
        # run_server's exit has set stop and awaited the shutdown.
        received = [first]
        try:
            async with asyncio.timeout(10):
                while True:
                    received.append(await ws.recv())
        except ConnectionClosed:
            pass
        return [decode_server(m) for m in received], ws.close_code, stop_at

    messages, code, _ = run(main())
    assert code == CloseCode.SERVICE_RESTART
    dones = [m for m in messages if isinstance(m, Done)]
    assert [d.status for d in dones] == ["completed"]


@pytest.mark.tiny_voice
def test_scrapes_and_sessions_leave_no_info_lines_in_the_log(server_voice, caplog):
    caplog.set_level(logging.INFO)

    async def main():
        async with run_server(server_voice) as app:
            for _ in range(3):
                await asyncio.to_thread(_metrics, app.port)
            ws = await open_session(app)
            await ws.close()

    run(main())
    by_logger = {(r.name, r.levelname) for r in caplog.records}
    assert ("voxlive.server.app", "INFO") in by_logger  # "listening on ..." still there
    assert not [r for r in caplog.records if r.name.startswith("websockets")]
    assert not [r for r in caplog.records if r.name == "voxlive.server.app.sockets"]


@pytest.mark.tiny_voice
def test_health_and_readiness_answer_plain_http(server_voice):
    def get(port: int, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    async def main():
        async with run_server(server_voice) as app:
            health = await asyncio.to_thread(get, app.port, "/healthz")
            ready = await asyncio.to_thread(get, app.port, "/readyz")
            app.draining = True
            draining = await asyncio.to_thread(get, app.port, "/readyz")
            app.draining = False
            return health, ready, draining

    assert run(main()) == (200, 200, 503)


@pytest.mark.tiny_voice
@pytest.mark.parametrize("token", ["wrong", None])
def test_a_bad_token_is_refused_with_4003(server_voice, token):
    async def main():
        async with run_server(server_voice, token="sesame") as app:
            from websockets.asyncio.client import connect

            from voxlive.protocol.messages import Hello

            from .harness import url

            ws = await connect(url(app))
            await ws.send(encode_client(Hello(version=1, token=token)))
            msgs = []
            try:
                async with asyncio.timeout(10):
                    while True:
                        msgs.append(decode_server(await ws.recv()))
            except ConnectionClosed:
                pass
            return msgs, ws.close_code

    msgs, code = run(main())
    assert code == CloseCode.AUTH_FAILED
    assert [m.code for m in msgs if isinstance(m, Error)] == ["auth_failed"]


@pytest.mark.tiny_voice
def test_a_client_that_stops_reading_is_closed_and_others_keep_their_latency(server_voice):
    """The batcher never waits on a socket: a stalled reader only fills its own buffer."""
    from websockets.asyncio.client import connect

    from voxlive.protocol.messages import Hello

    from .harness import url

    async def fast_first_audio(ws, n: int, tag: str) -> list[float]:
        latencies = []
        for k in range(n):
            t0 = time.monotonic()
            await ws.send(speak(f"{tag}{k}", TEXTS[k % 5]))
            first = None
            async with asyncio.timeout(60):
                while True:
                    msg = decode_server(await ws.recv())
                    if first is None and isinstance(msg, AudioFrame):
                        first = time.monotonic() - t0
                    if isinstance(msg, Done):
                        assert msg.status == "completed"
                        break
            latencies.append(first)
        return latencies

    async def main():
        overrides = {"send_buffer_bytes": 128 * 1024, "slow_consumer_timeout_s": 1.0}
        async with run_server(server_voice, **overrides) as app:
            fast = await open_session(app)
            baseline = await fast_first_audio(fast, 4, "base")
            # A client whose application stops calling recv() after hello: websockets
            # then stops reading the socket, and the kernel buffers fill up.
            slow = await connect(url(app), max_queue=1)
            spec = AudioSpec(sample_rate=48000, format="f32le")  # 192 kB per audio second
            await slow.send(encode_client(Hello(version=1, audio=spec)))
            await slow.recv()
            for k in range(6):
                await slow.send(speak(f"flood{k}", LONG))
            with_slow = await fast_first_audio(fast, 4, "busy")
            # Wait for the server to notice (its timeout, once the kernel's socket buffers
            # and our 128 KiB are full), then read how the slow one ended. Reading earlier
            # would drain the backlog and make it a client that merely lagged.
            async with asyncio.timeout(60):
                while len(app.connections) > 1 and not any(c.closing for c in app.connections):
                    await asyncio.sleep(0.05)
            try:
                async with asyncio.timeout(20):
                    while True:
                        await slow.recv()
            except ConnectionClosed:
                pass
            return baseline, with_slow, slow.close_code

    baseline, with_slow, code = run(main())
    assert code == CloseCode.SLOW_CONSUMER
    # The engine is shared fairly, so the flood costs some latency, but nothing stalls.
    assert np.median(with_slow) < 3 * np.median(baseline) + 0.3


@pytest.mark.tiny_voice
def test_streamed_sentences_keep_their_order_with_several_front_end_threads(server_voice):
    pieces = ["One. ", "Two is here. ", "😀 ", "Three, and more. ", "Four."]

    async def main():
        async with run_server(server_voice, frontend_threads=3) as app:
            ws = await open_session(app)
            await ws.send(
                encode_client(Append(id="st", text=pieces[0], options=SpeakOptions(seed=9)))
            )
            for piece in pieces[1:]:
                await ws.send(encode_client(Append(id="st", text=piece)))
            await ws.send(encode_client(End(id="st")))
            await ws.send(speak("whole", "One. Two is here. Three, and more. Four.", seed=9))
            return await collect(ws, {"st", "whole"})

    messages, frames, done = run(main())
    assert done["st"].status == "completed"
    assert not [m for m in messages if isinstance(m, Error)]
    streams = {m.id: m.stream for m in messages if isinstance(m, Started)}
    assert same_audio(pcm_of(frames[streams["st"]]), pcm_of(frames[streams["whole"]]))


@pytest.mark.tiny_voice
def test_a_stream_with_nothing_speakable_fails_with_warnings_and_no_error(server_voice):
    """SPEC.md §4.7: accepted text with nothing to say is not an error (empty_text is only
    ever the refusal of an empty message, which opens nothing); its done says why."""

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            await ws.send(encode_client(Append(id="e", text="😀 🎉", options=SpeakOptions())))
            await ws.send(encode_client(End(id="e")))
            return await collect(ws, {"e"})

    messages, _, done = run(main())
    assert done["e"].status == "failed" and done["e"].stream is None
    assert not [m for m in messages if isinstance(m, Error)]
    assert "nothing was spoken" in done["e"].warnings[-1]
    assert any("emoji" in w for w in done["e"].warnings)


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return parse_metrics(r.read().decode())
