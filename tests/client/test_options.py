"""Speak options on the wire, the ``started`` echo (SPEC.md §5.2), ``voxlive client`` flags.

Offline: the client talks to an in-memory stand-in for its WebSocket, so no server (and
no port) is involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import pytest

from voxlive.cli.client import options_from_args
from voxlive.cli.parser import build_parser
from voxlive.cli.parser import main as cli_main
from voxlive.client import Client, Result
from voxlive.protocol.codec import decode_client, encode_audio_frame, encode_server
from voxlive.protocol.messages import (
    Append,
    AudioFrame,
    AudioSpec,
    Capabilities,
    ClientMessage,
    Done,
    End,
    Limits,
    Speak,
    SpeakOptions,
    Started,
    Welcome,
)
from voxlive.protocol.types import StreamId, UtteranceId

WELCOME = Welcome(
    1,
    "fake",
    AudioSpec(22050),
    Limits(),
    Capabilities(
        emotions=("neutral", "happy", "angry"),
        emotion_aliases={"开心": "happy", "furious": "angry"},
        pitch=True,
        volume=True,
    ),
)

Reply = Callable[[ClientMessage], Iterable[bytes]]
T = TypeVar("T")


class FakeSocket:
    """Stands in for the client's WebSocket: records what is sent, answers with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        self.sent: list[ClientMessage] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._reply = reply
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def send(self, data: bytes | str) -> None:
        message = decode_client(data, WELCOME.limits)
        self.sent.append(message)
        for answer in self._reply(message):
            self._incoming.put_nowait(answer)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self._incoming.put_nowait(None)

    def __aiter__(self) -> FakeSocket:
        return self

    async def __anext__(self) -> bytes:
        data = await self._incoming.get()
        if data is None:
            raise StopAsyncIteration
        return data


def speaks(**echo: object) -> Reply:
    """A server that speaks each ``speak`` (or stream, at its ``end``) as 4 samples.

    Its ``started`` carries ``echo`` (``emotion``, ``intensity``).
    """
    streams = iter(range(1, 1000))

    def reply(message: ClientMessage) -> Iterable[bytes]:
        if not isinstance(message, Speak | End):
            return []
        stream = StreamId(next(streams))
        started = Started(message.id, stream, 1.0, **echo)  # type: ignore[arg-type]
        return [
            encode_server(started, binary=True),
            encode_audio_frame(AudioFrame(stream, 0, 0, b"\1\0" * 4, last=True)),
            encode_server(Done(message.id, stream, "completed", 4, 0.2), binary=True),
        ]

    return reply


def talk(reply: Reply, script: Callable[[Client], Awaitable[T]]) -> tuple[T, list[ClientMessage]]:
    """Run ``script(client)`` against a ``FakeSocket``; return its result and what was sent."""

    async def main() -> tuple[T, list[ClientMessage]]:
        ws = FakeSocket(reply)
        client = Client(ws, WELCOME)  # type: ignore[arg-type]  # duck-typed WebSocket
        try:
            return await script(client), ws.sent
        finally:
            await client.close()

    return asyncio.run(main())


# --- options reach the wire ---------------------------------------------------------------


def test_speak_sends_emotion_intensity_speed_pitch_and_volume() -> None:
    async def script(c: Client) -> Result:
        return await c.synthesize(
            "We won!", id="w", emotion="开心", intensity=0.9, speed=1.2, pitch=-2.5, volume=3.0
        )

    result, sent = talk(speaks(emotion="happy", intensity=0.9), script)
    options = SpeakOptions(emotion="开心", intensity=0.9, speed=1.2, pitch=-2.5, volume=3.0)
    assert sent == [Speak(UtteranceId("w"), "We won!", options)]
    assert isinstance(result, Result) and result.ok


def test_open_stream_sends_its_options_with_the_first_append_only() -> None:
    async def script(c: Client) -> Result:
        stream = await c.open_stream(id="s", emotion="Furious", intensity=0.3, volume=-6.0)
        await stream.append("Enough ")
        await stream.append("is enough.")
        await stream.end()
        return await stream.collect()

    _, sent = talk(speaks(), script)
    s = UtteranceId("s")
    options = SpeakOptions(emotion="Furious", intensity=0.3, volume=-6.0)
    assert sent == [Append(s, "Enough ", options), Append(s, "is enough."), End(s)]


# --- the started echo ---------------------------------------------------------------------


def test_the_utterance_and_result_expose_what_the_server_applied() -> None:
    async def script(c: Client) -> tuple[object, ...]:
        utterance = c.speak("Hi!", emotion="开心")
        before = (utterance.emotion, utterance.intensity)
        result = await utterance.collect()
        return before, (utterance.emotion, utterance.intensity), result

    (before, after, result), _ = talk(speaks(emotion="happy", intensity=0.7), script)
    assert before == (None, None)
    assert after == ("happy", 0.7)
    assert isinstance(result, Result)
    assert (result.emotion, result.intensity) == ("happy", 0.7)
    assert result.started == Started(UtteranceId("u1"), StreamId(1), 1.0, "happy", 0.7)


def test_a_server_that_does_not_echo_leaves_emotion_and_intensity_none() -> None:
    async def script(c: Client) -> tuple[object, ...]:
        utterance = c.speak("Hi!", emotion="happy")
        result = await utterance.collect()
        return utterance.emotion, utterance.intensity, result

    (emotion, intensity, result), _ = talk(speaks(), script)
    assert (emotion, intensity) == (None, None)
    assert isinstance(result, Result) and (result.emotion, result.intensity) == (None, None)


def test_a_result_that_never_started_has_no_emotion() -> None:
    result = Result(UtteranceId("x"), b"", 22050, "s16le", Done(UtteranceId("x"), None, "failed"))
    assert (result.emotion, result.intensity) == (None, None)


# --- voxlive client flags -----------------------------------------------------------------


def client_args(*flags: str):
    return build_parser().parse_args(["client", "Hi.", "-o", "out.wav", *flags])


def test_flags_default_to_neutral_delivery_without_an_emotion() -> None:
    options = options_from_args(client_args(), 0)
    # No --intensity: left unset, so the server's default applies (started reports it).
    assert options == {"speed": 1.0, "pitch": 0.0, "volume": 0.0, "seed": None}
    assert "emotion" not in options


def test_flags_become_speak_options() -> None:
    args = client_args(
        "--emotion", "开心", "--intensity", "1", "--pitch", "-12", "--volume", "12", "--seed", "4"
    )
    options = options_from_args(args, 3)
    assert options == {
        "speed": 1.0,
        "intensity": 1.0,
        "pitch": -12.0,
        "volume": 12.0,
        "seed": 7,
        "emotion": "开心",
    }
    SpeakOptions(**options)  # every key is a speak option


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--intensity", "1.5"], "--intensity must be in [0, 1], got 1.5"),
        (["--intensity", "-0.1"], "--intensity must be in [0, 1]"),
        (["--intensity", "nan"], "--intensity must be in [0, 1], got nan"),
        (["--pitch", "12.5"], "--pitch must be in [-12, 12] semitones, got 12.5"),
        (["--pitch", "-13"], "--pitch must be in [-12, 12] semitones"),
        (["--volume", "-31"], "--volume must be in [-30, 12] dB, got -31.0"),
        (["--volume", "inf"], "--volume must be in [-30, 12] dB"),
        (["--speed", "5"], "--speed must be in [0.25, 4]"),
        (["--emotion", " "], "--emotion must name an emotion"),
    ],
)
def test_flags_out_of_range_are_refused_with_the_flag_named(flags, message) -> None:
    with pytest.raises(ValueError) as caught:
        options_from_args(client_args(*flags), 0)
    assert message in str(caught.value)


def test_cli_refuses_a_bad_flag_before_connecting(tmp_path, capsys) -> None:
    out = tmp_path / "out.wav"
    # Port 9 (discard) is never a voxlive server: a connection attempt would fail later.
    argv = ["client", "--url", "ws://127.0.0.1:9", "Hi.", "-o", str(out), "--pitch", "20"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "--pitch must be in [-12, 12] semitones, got 20.0" in err
    assert "cannot connect" not in err and not out.exists()
