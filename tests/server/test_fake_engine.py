"""The server over a fake engine (no model): fast checks of the I/O layer's own work.

Ordering, resampling, marks, cancel, failures and the canonical emotion echo,
with real sockets and the real protocol, in well under a second each.
"""

from __future__ import annotations

import asyncio

import numpy as np

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
from voxlive.protocol.types import UtteranceId

from ..fakes import FakeEngine, FakeSpeaker, tone
from .harness import collect, open_session, run, run_server


def fake_server(engine: FakeEngine, **overrides):
    """A server over the fake engine (and a fake speaker encoder)."""
    return run_server(engine, FakeSpeaker(), **overrides)


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(UtteranceId(uid), text, SpeakOptions(**options)))


def pcm_of(frames: list[AudioFrame], fmt: str = "<i2") -> np.ndarray:
    audio = np.frombuffer(b"".join(f.pcm for f in frames), fmt)
    return audio.astype(np.float32) / 32767 if fmt == "<i2" else audio


def tones(engine: FakeEngine, texts: list[str]) -> np.ndarray:
    rate, per_char = engine.sample_rate, engine.samples_per_char
    return np.concatenate([tone(i, len(t) * per_char, rate) for i, t in enumerate(texts)])


def test_sentences_are_sent_in_order_at_the_engines_rate_by_default():
    engine = FakeEngine(sample_rate=24000)

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app)
            await ws.send(speak("u", "First one here. Second. Third and last."))
            return await collect(ws, {"u"}, timeout=10)

    messages, frames, done = run(main())
    (mine,) = frames.values()
    got = pcm_of(mine)
    want = tones(engine, ["First one here.", "Second.", "Third and last."])
    assert done["u"].status == "completed" and len(got) == len(want) == done["u"].samples
    assert np.max(np.abs(got - want)) <= 1 / 32767
    assert [f.seq for f in mine] == list(range(len(mine))) and mine[-1].last


def test_a_24_khz_engine_is_resampled_to_the_sessions_rate():
    engine = FakeEngine(sample_rate=24000)

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app, AudioSpec(sample_rate=16000, format="f32le", frame_ms=20))
            await ws.send(speak("u", "A single sentence to resample."))
            return await collect(ws, {"u"}, timeout=10)

    _, frames, done = run(main())
    (mine,) = frames.values()
    assert all(len(f.pcm) == 320 * 4 for f in mine[:-1])  # 20 ms at 16 kHz
    got = pcm_of(mine, "<f4")
    n_in = len("A single sentence to resample.") * engine.samples_per_char
    assert abs(len(got) - n_in * 16000 / 24000) <= 2 and len(got) == done["u"].samples
    # The tone keeps its pitch: its spectrum peaks at 200 Hz at the new rate too.
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * 16000 / len(got) - 200) < 5


def test_marks_are_scaled_to_the_output_rate():
    engine = FakeEngine(sample_rate=24000)

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app, AudioSpec(sample_rate=48000))
            await ws.send(speak("u", "Two words.", timestamps=True))
            return await collect(ws, {"u"}, timeout=10)

    messages, _, done = run(main())
    (marks,) = [m for m in messages if isinstance(m, Marks)]
    n = len("Two words.") * engine.samples_per_char
    assert [w.text for w in marks.words] == ["Two", "words"]
    assert marks.words[-1].end == 2 * (n // 2) * 2 and marks.words[0].start == 0


def test_started_echoes_the_canonical_emotion_of_a_synonym():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app)
            await ws.send(speak("u", "Hi there.", emotion="GLAD", intensity=0.5))
            return await collect(ws, {"u"}, timeout=10)

    messages, _, _ = run(main())
    (started,) = [m for m in messages if isinstance(m, Started)]
    assert (started.emotion, started.intensity) == ("happy", 0.5)
    assert engine.performances[0].controls.emotion == "happy"


def test_one_failing_utterance_fails_alone():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app)
            for uid, text in (("good1", "Fine."), ("bad", "FAIL now."), ("good2", "Fine too.")):
                await ws.send(speak(uid, text))
            return await collect(ws, {"good1", "bad", "good2"}, timeout=10)

    messages, _, done = run(main())
    assert done["bad"].status == "failed"
    assert done["good1"].status == done["good2"].status == "completed"
    (error,) = [m for m in messages if isinstance(m, Error)]
    assert error.id == "bad" and error.code == "internal" and "injected" not in error.message


def test_cancel_ends_the_stream_with_a_faded_last_frame():
    engine = FakeEngine(samples_per_char=2000, step_delay_s=0.02)

    async def main():
        async with fake_server(engine) as app:
            ws = await open_session(app)
            await ws.send(speak("u", "A long sentence that keeps going and going for a while."))
            frames = []
            async with asyncio.timeout(10):
                while True:
                    msg = decode_server(await ws.recv())
                    if isinstance(msg, AudioFrame):
                        if not frames:
                            await ws.send(encode_client(Cancel(UtteranceId("u"))))
                        frames.append(msg)
                    elif isinstance(msg, Done):
                        return frames, msg

    frames, done = run(main())
    assert done.status == "cancelled" and frames[-1].last and frames[-1].cancelled
    assert done.samples == sum(len(f.pcm) // 2 for f in frames)
    assert done.samples < len("A long sentence") * 2000


def test_streamed_text_equals_the_same_text_spoken_whole():
    engine = FakeEngine()
    pieces = ["Hello the", "re, how are", " you today? I am fi", "ne, thanks", " for asking."]

    async def main():
        async with fake_server(engine, frontend_threads=3) as app:
            ws = await open_session(app)
            first = Append(UtteranceId("st"), pieces[0], SpeakOptions())
            await ws.send(encode_client(first))
            for piece in pieces[1:]:
                await ws.send(encode_client(Append(UtteranceId("st"), piece)))
            await ws.send(encode_client(End(UtteranceId("st"))))
            await ws.send(speak("whole", "".join(pieces)))
            return await collect(ws, {"st", "whole"}, timeout=10)

    messages, frames, done = run(main())
    streams = {m.id: m.stream for m in messages if isinstance(m, Started)}
    assert done["st"].status == "completed"
    assert np.array_equal(pcm_of(frames[streams["st"]]), pcm_of(frames[streams["whole"]]))


def test_an_expired_deadline_fails_the_utterance_with_expired():
    engine = FakeEngine(samples_per_char=2000, step_delay_s=0.02)

    async def main():
        async with fake_server(engine, max_active_items=1) as app:
            ws = await open_session(app)
            await ws.send(speak("busy", "Something long enough to keep the engine busy."))
            await ws.send(speak("late", "Hello!", deadline_ms=1))
            return await collect(ws, {"busy", "late"}, timeout=20)

    messages, _, done = run(main())
    assert done["late"].status == "expired" and done["late"].stream is None
    assert any(isinstance(m, Error) and m.code == "expired" for m in messages)
    assert done["busy"].status == "completed"


def test_a_server_given_an_engine_leaves_closing_it_to_its_owner():
    engine = FakeEngine()

    async def main():
        async with fake_server(engine):
            pass

    run(main())
    assert not engine.closed
