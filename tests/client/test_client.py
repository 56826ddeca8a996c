"""The asyncio client and ``voxlive client``, against a real server on the real voice."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import numpy as np
import pytest
import soundfile
from websockets.asyncio.server import serve

from voxlive.cli.parser import main as cli_main
from voxlive.client import Client, ClientError, Result
from voxlive.protocol.codec import decode_client, encode_audio_frame, encode_server
from voxlive.protocol.messages import (
    AudioFrame,
    AudioSpec,
    Capabilities,
    Done,
    Error,
    Limits,
    Marks,
    Speak,
    Started,
    Viseme,
    Welcome,
)
from voxlive.protocol.types import StreamId, UtteranceId

from ..server.harness import run, run_server, url

LSB = 1 / 32768


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- whole texts ------------------------------------------------------------------------


@pytest.mark.tiny_voice
def test_synthesize_returns_the_audio_that_done_counts(server_voice, tmp_path) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            return c.sample_rate, await c.synthesize("Welcome back to the stream, friends.", seed=3)

    rate, result = run(main())
    assert result.ok and result.errors == [] and result.started is not None
    samples = result.samples()
    assert samples.dtype == np.float32
    assert len(samples) == result.done.samples == result.num_samples
    assert result.duration_s > 0.5 and result.sample_rate == rate == 22050
    assert np.abs(samples).max() > 0.05
    path = tmp_path / "out.wav"
    result.save_wav(path)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        22050,
        1,
        "PCM_16",
        len(samples),
    )


@pytest.mark.tiny_voice
def test_concurrent_utterances_each_get_their_own_audio(server_voice) -> None:
    texts = [
        "Hi there.",
        "Thanks for the follow!",
        "Good game, everyone.",
        "Let me read the next question from the chat.",
        "Yes!",
        "The dragon sleeps in the cave.",
        "Don't forget to drink some water.",
        "See you tomorrow.",
    ]

    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            solo = [await c.synthesize(t, seed=5) for t in texts]
            together = await asyncio.gather(*(c.synthesize(t, seed=5) for t in texts))
            return solo, together

    solo, together = run(main())
    assert len({r.num_samples for r in solo}) == len(texts)  # lengths differ by text
    assert len({r.id for r in together}) == len(texts)
    for alone, mixed in zip(solo, together, strict=True):
        assert mixed.ok and mixed.num_samples == alone.num_samples == mixed.done.samples
        # Mixed-up audio would differ by far more; batching alone moves a few samples
        # by up to 3 LSB on this CPU (reported to the server owners), so allow 4.
        assert np.abs(mixed.samples() - alone.samples()).max() <= 4 * LSB


@pytest.mark.tiny_voice
def test_thirty_two_utterances_share_one_connection(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            utterances = [c.speak(f"Number {n}.", id=f"n{n}") for n in range(32)]
            assert len(c.inflight) == 32
            return await asyncio.gather(*(u.collect() for u in utterances)), c.inflight

    results, left = run(main())
    assert [r.id for r in results] == [f"n{n}" for n in range(32)]
    assert all(r.ok and r.num_samples == r.done.samples > 0 for r in results)
    assert left == frozenset()


@pytest.mark.tiny_voice
def test_events_come_in_protocol_order(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            return [e async for e in c.speak("Hello chat!", timestamps=True)]

    events = run(main())
    assert isinstance(events[0], Started) and isinstance(events[-1], Done)
    frames = [e for e in events if isinstance(e, AudioFrame)]
    assert [f.seq for f in frames] == list(range(len(frames))) and frames[-1].last
    assert events[-1].status == "completed"


@pytest.mark.tiny_voice
def test_results_and_events_expose_the_viseme_track(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            result = await c.synthesize("Map five. She said!", timestamps=True, seed=5)
            events = [e async for e in c.speak("Map five.", timestamps=True, seed=5)]
            return result, events

    result, events = run(main())
    assert len(result.marks) == 2
    assert result.visemes == result.marks[0].visemes + result.marks[1].visemes
    assert result.words == result.marks[0].words + result.marks[1].words
    assert [w.text for w in result.words] == ["Map", "five", "She", "said"]
    assert result.phonemes == result.marks[0].phonemes + result.marks[1].phonemes
    visemes = result.visemes
    assert visemes[0].start == 0 and visemes[-1].end == result.num_samples
    assert all(a.end == b.start for a, b in zip(visemes, visemes[1:]))
    assert "PP" in {v.v for v in visemes} and "CH" in {v.v for v in visemes}
    for v in visemes:
        assert result.viseme_at(v.start) == result.viseme_at(v.end - 1) == v.v
    assert result.viseme_at(-1) == result.viseme_at(result.num_samples) == "sil"
    # Streaming: the Marks event (visemes and all) comes before the audio it describes.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Marks") < kinds.index("AudioFrame")
    [marks] = [e for e in events if isinstance(e, Marks)]
    assert marks.visemes == result.marks[0].visemes  # same text and seed


def test_a_result_without_marks_has_no_visemes_and_shows_silence() -> None:
    done = Done(UtteranceId("u"), StreamId(1), "completed", 100)
    result = Result(UtteranceId("u"), b"\0\0" * 100, 22050, "s16le", done)
    assert result.visemes == () and result.words == () and result.phonemes == ()
    assert result.viseme_at(50) == "sil"
    marks = Marks(UtteranceId("u"), StreamId(1), 10, visemes=(Viseme("PP", 10, 20),))
    result = Result(UtteranceId("u"), b"\0\0" * 100, 22050, "s16le", done, marks=[marks])
    assert [result.viseme_at(n) for n in (9, 10, 19, 20)] == ["sil", "PP", "PP", "sil"]


# --- streamed text, cancel, errors ------------------------------------------------------------


@pytest.mark.tiny_voice
def test_streamed_text_gives_as_much_audio_as_the_joined_text(server_voice) -> None:
    pieces = ["Hello ", "there, ", "my friend. ", "How are ", "you ", "today?"]

    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            whole = await c.synthesize("".join(pieces), seed=1)
            stream = await c.open_stream(seed=1)
            for piece in pieces:
                await stream.append(piece)
            await stream.end()
            return whole, await stream.collect()

    whole, streamed = run(main())
    assert whole.ok and streamed.ok
    assert abs(streamed.num_samples - whole.num_samples) <= 0.1 * whole.num_samples


@pytest.mark.tiny_voice
def test_cancel_ends_the_utterance_with_done_cancelled(server_voice) -> None:
    text = "This is a long sentence that keeps going for quite a while, so we can stop it early."

    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            utterance = c.speak(text)
            async for event in utterance:
                if isinstance(event, AudioFrame):
                    break  # barge in once audio flows
            await c.cancel(utterance.id)
            cut = await utterance.collect()
            early = c.speak(text)
            await early.cancel()  # most likely before it started
            early_result = await early.collect()
            unopened = await c.open_stream()
            await c.cancel()  # nothing was sent for it: it ends at once
            return cut, early_result, await unopened.collect(), c.inflight

    cut, early, unopened, left = run(main())
    assert cut.done.status == "cancelled" and cut.done.samples < 22050 * 2
    assert early.done.status == "cancelled"
    assert unopened.done.status == "cancelled"
    assert left == frozenset()


@pytest.mark.tiny_voice
def test_unsupported_language_is_an_error_then_done_failed(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            events = [e async for e in c.speak("太棒了主播加油")]
            rejected = await c.synthesize("Hi.", emotion="bored")  # no done from the server
            return events, rejected

    events, rejected = run(main())
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.code for e in errors] == ["unsupported_language"]
    assert isinstance(events[-1], Done) and events[-1].status == "failed"
    assert [e.code for e in rejected.errors] == ["unsupported"]
    assert rejected.done.status == "failed" and not rejected.ok


@pytest.mark.tiny_voice
def test_local_misuse_raises_before_sending(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            with pytest.raises(ValueError, match="empty_text"):
                c.speak("   ")
            with pytest.raises(ValueError, match="id"):
                c.speak("Hi.", id="no spaces allowed")
            stream = await c.open_stream(id="s1")
            with pytest.raises(ValueError, match="in flight"):
                c.speak("Hi.", id="s1")
            await stream.end()
            with pytest.raises(RuntimeError, match="ended"):
                await stream.append("more")
            return await stream.collect()

    assert run(main()).done.status == "completed"


@pytest.mark.tiny_voice
def test_a_stream_that_failed_takes_no_more_text(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            stream = await c.open_stream()
            await stream.append("太棒了主播加油")
            await stream.flush()
            events = [e async for e in stream]
            with pytest.raises(RuntimeError, match="done"):
                await stream.append("Hello?")  # would open a new utterance on the server
            return events

    events = run(main())
    assert [e.code for e in events if isinstance(e, Error)] == ["unsupported_language"]
    assert events[-1].status == "failed"


# --- connection trouble -----------------------------------------------------------------------


def test_connecting_to_a_closed_port_raises_client_error_quickly() -> None:
    async def main():
        await Client.connect(f"ws://127.0.0.1:{free_port()}", open_timeout_s=5)

    t0 = time.monotonic()
    with pytest.raises(ClientError) as caught:
        run(main())
    assert caught.value.code == "connect_failed"
    assert time.monotonic() - t0 < 3


@pytest.mark.tiny_voice
def test_a_rejected_token_raises_client_error_with_the_close_code(server_voice) -> None:
    async def main():
        async with run_server(server_voice, token="secret") as app:
            with pytest.raises(ClientError) as caught:
                await Client.connect(url(app), token="wrong")
            async with Client.connect(url(app), token="secret") as c:
                assert c.welcome.session
            return caught.value

    error = run(main())
    assert (error.code, error.close_code) == ("auth_failed", 4003)


@pytest.mark.tiny_voice
def test_server_shutdown_fails_later_calls_with_1012(server_voice) -> None:
    async def main():
        async with run_server(server_voice, graceful_shutdown_s=0) as app:
            c = await Client.connect(url(app))
        await asyncio.wait_for(c.wait_closed(), 10)
        with pytest.raises(ClientError) as caught:
            await c.synthesize("Anyone there?")
        await c.close()
        return c, caught.value

    c, error = run(main())
    assert c.closed and error.close_code == 1012


@contextlib.asynccontextmanager
async def fake_server(script):
    """A server that answers hello, then runs ``script(ws, speak)`` on the first speak."""

    async def handler(ws):
        decode_client(await ws.recv(), Limits())
        welcome = Welcome(1, "fake", AudioSpec(22050), Limits(), Capabilities())
        await ws.send(encode_server(welcome, binary=True))
        speak = decode_client(await ws.recv(), Limits())
        assert isinstance(speak, Speak)
        await script(ws, speak)

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


def test_a_dropped_connection_raises_in_every_waiting_iterator() -> None:
    async def drop(ws, speak):
        await ws.close(1011, "boom")

    async def main():
        async with fake_server(drop) as address, Client.connect(address) as c:
            first, second = c.speak("One."), c.speak("Two.")
            outcomes = await asyncio.gather(
                first.collect(), second.collect(), return_exceptions=True
            )
            return outcomes

    outcomes = run(main())
    assert all(isinstance(o, ClientError) and o.close_code == 1011 for o in outcomes)


def test_audio_out_of_order_is_a_protocol_violation() -> None:
    async def skip_a_frame(ws, speak):
        stream = StreamId(7)
        await ws.send(encode_server(Started(speak.id, stream, 0.0), binary=True))
        for seq in (0, 2):
            frame = AudioFrame(stream, seq, seq * 10, b"\0\0" * 10)
            await ws.send(encode_audio_frame(frame))
        await ws.wait_closed()

    async def main():
        async with fake_server(skip_a_frame) as address, Client.connect(address) as c:
            events = []
            with pytest.raises(ClientError) as caught:
                async for event in c.speak("Hello."):
                    events.append(event)
            return events, caught.value

    events, error = run(main())
    assert [type(e) for e in events] == [Started, AudioFrame]
    assert error.code == "protocol_violation"


# --- voxlive client ------------------------------------------------------------------------


@pytest.mark.tiny_voice
def test_cli_writes_a_wav(server_voice, tmp_path) -> None:
    out = tmp_path / "out.wav"

    async def main():
        async with run_server(server_voice) as app:
            args = ["client", "--url", url(app), "Hello there, chat.", "-o", str(out)]
            return await asyncio.to_thread(cli_main, [*args, "--seed", "2", "--speed", "1.2"])

    assert run(main()) == 0
    info = soundfile.info(str(out))
    assert (info.samplerate, info.subtype) == (22050, "PCM_16") and info.frames > 11025


@pytest.mark.tiny_voice
def test_cli_file_writes_one_wav_per_line_and_reports_bad_lines(
    server_voice, tmp_path, capsys
) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("Hello there.\n\n   \nA much longer second line, with a pause.\nBye!\n")
    bad.write_text("First line.\n太棒了主播加油\nThird line.\n")

    async def main():
        async with run_server(server_voice) as app:
            codes = []
            for lines, outdir in ((good, tmp_path / "good"), (bad, tmp_path / "bad")):
                argv = ["client", "--url", url(app), "-f", str(lines), "-o", str(outdir)]
                codes.append(await asyncio.to_thread(cli_main, argv))
            return codes

    assert run(main()) == [0, 1]
    assert sorted(p.name for p in (tmp_path / "good").iterdir()) == [
        "0001.wav",
        "0002.wav",
        "0003.wav",
    ]
    frames = [soundfile.info(str(tmp_path / "good" / f"000{n}.wav")).frames for n in (1, 2, 3)]
    assert frames[1] > frames[0] > 0 and frames[1] > frames[2] > 0
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["0001.wav", "0003.wav"]
    assert "line 2: unsupported_language" in capsys.readouterr().err


@pytest.mark.tiny_voice
def test_cli_exits_2_on_an_unspeakable_text_or_no_server(server_voice, tmp_path, capsys) -> None:
    out = tmp_path / "out.wav"

    async def main():
        async with run_server(server_voice) as app:
            argv = ["client", "--url", url(app), "太棒了主播加油", "-o", str(out)]
            return await asyncio.to_thread(cli_main, argv)

    assert run(main()) == 2
    assert "unsupported_language" in capsys.readouterr().err
    assert not out.exists()
    argv = ["client", "--url", f"ws://127.0.0.1:{free_port()}", "Hi.", "-o", str(out)]
    assert cli_main(argv) == 2
    assert "cannot connect" in capsys.readouterr().err


@pytest.mark.tiny_voice
def test_a_stream_the_server_fails_frees_its_id_for_a_new_stream(server_voice):
    """SPEC.md §4.3 (v1.1): the client sends end for a stream the server ended early."""

    async def main():
        async with run_server(server_voice) as app:
            async with Client.connect(url(app)) as c:
                bad = await c.open_stream(id="s")
                await bad.append("太棒了主播加油。")
                await bad.flush()
                first = await bad.collect()
                good = await c.open_stream(id="s")  # the same id, right away
                await good.append("Hello there, friend.")
                await good.end()
                return first, await good.collect()

    first, second = run(main())
    assert first.done.status == "failed"
    assert second.done.status == "completed" and second.num_samples > 0


@pytest.mark.slow
def test_emotion_options_reach_the_server_and_the_applied_emotion_comes_back(server_voice):
    text = "I can't believe we finally beat the final boss."

    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            caps = c.welcome.capabilities
            plain, sad = await asyncio.gather(
                c.synthesize(text, seed=3),
                c.synthesize(text, emotion="伤心", intensity=1.0, volume=-3.0, seed=3),
            )
            return caps, plain, sad

    caps, plain, sad = run(main())
    assert "sad" in caps.emotions and caps.emotion_aliases["伤心"] == "sad"
    assert (sad.emotion, sad.intensity) == ("sad", 1.0) and plain.emotion == "neutral"
    # Sad is slower and quieter than the same text, same seed, said plainly.
    assert sad.num_samples > 1.1 * plain.num_samples
    rms = [float(np.sqrt(np.mean(r.samples() ** 2))) for r in (plain, sad)]
    assert rms[1] < 0.6 * rms[0]


def test_warnings_about_the_text_reach_the_result_and_the_command_line(capsys, tmp_path) -> None:
    from ..fakes import FakeEngine, FakeSpeaker

    async def go():
        async with run_server(FakeEngine(), FakeSpeaker()) as app:
            async with Client.connect(url(app)) as c:
                result = await c.synthesize("Party time \U0001f389!")
            code = await asyncio.to_thread(
                cli_main, ["client", "--url", url(app), "Yay \U0001f389", "-o", str(out)]
            )
            return result, code

    out = tmp_path / "yay.wav"
    result, code = run(go())
    assert result.ok and result.warnings == ("dropped emoji '\U0001f389'",)
    assert code == 0 and "warning: dropped emoji" in capsys.readouterr().err
