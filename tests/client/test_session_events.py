"""How the client maps its session's events onto utterances, answers and errors.

Offline, against the in-memory WebSocket stand-in of ``test_options``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest

from voxlive.client import Client, ClientError, Result
from voxlive.protocol.codec import encode_server
from voxlive.protocol.messages import (
    Append,
    ClientMessage,
    Done,
    End,
    Error,
    ServerMessage,
    Speak,
    SpeakOptions,
    VoiceDeleted,
    VoiceList,
)
from voxlive.protocol.types import UtteranceId

from .test_options import talk


def answer(*messages: ServerMessage | bytes) -> Callable[[ClientMessage], Iterable[bytes]]:
    """A server that answers the first message it gets with ``messages``, then nothing."""
    pending: list[list[ServerMessage | bytes]] = [list(messages)]

    def reply(message: ClientMessage) -> Iterable[bytes]:
        if not pending:
            return []
        out = pending.pop()
        encoded = [m if isinstance(m, bytes) else encode_server(m, True) for m in out]
        return [data for data in encoded if isinstance(data, bytes)]  # msgpack: all bytes

    return reply


def test_an_undecodable_message_fails_every_utterance_with_a_protocol_violation() -> None:
    async def script(c: Client) -> tuple[BaseException | Result, bool]:
        outcome: BaseException | Result
        try:
            outcome = await c.speak("Hi.").collect()
        except ClientError as exc:
            outcome = exc
        await c.wait_closed()
        return outcome, c.closed

    (error, closed), _ = talk(answer(b"\xc1"), script)
    assert isinstance(error, ClientError) and closed
    assert (error.code, error.close_code) == ("protocol_violation", 1002)


def test_a_speak_the_server_refuses_ends_failed_without_its_done() -> None:
    async def script(c: Client) -> Result:
        return await c.synthesize("Hi.", id="r")

    refusal = Error("unsupported", "no such emotion", id=UtteranceId("r"))
    result, _ = talk(answer(refusal), script)
    assert result.errors == [refusal]
    assert result.done == Done(UtteranceId("r"), None, "failed")


def test_an_error_naming_nothing_is_kept_in_errors() -> None:
    async def script(c: Client) -> list[Error]:
        await c.cancel()  # nothing in flight: nothing sent
        c.speak("Hi.", id="a")
        while not c.errors:
            await asyncio.sleep(0)
        return list(c.errors)

    busy = Error("overloaded", "busy")
    errors, _ = talk(answer(busy), script)
    assert errors == [busy]


def test_an_answer_of_the_wrong_kind_raises_for_that_request_only() -> None:
    async def script(c: Client) -> tuple[ClientError, bool]:
        with pytest.raises(ClientError) as caught:
            await c.list_voices()
        return caught.value, c.closed

    wrong = VoiceDeleted(UtteranceId("voxlive-req-1"), "v", deleted=True)
    (error, closed), sent = talk(answer(wrong), script)
    assert sent == [VoiceList(UtteranceId("voxlive-req-1"))]
    assert error.code == "protocol_violation" and not closed


def test_a_stream_the_server_ends_early_is_ended_by_the_client() -> None:
    async def script(c: Client) -> Result:
        stream = await c.open_stream(id="s")
        await stream.append("Hi")
        result = await stream.collect()
        with pytest.raises(RuntimeError, match="is done"):
            await stream.append("more")
        return result

    early = Done(UtteranceId("s"), None, "failed")
    result, sent = talk(answer(early), script)
    s = UtteranceId("s")
    assert result.done == early
    assert sent == [Append(s, "Hi", SpeakOptions()), End(s)]


def test_speak_is_sent_with_a_generated_id() -> None:
    async def script(c: Client) -> UtteranceId:
        return c.speak("Hi.").id

    id, sent = talk(lambda message: [], script)
    assert sent == [Speak(id, "Hi.")] and id == "u1"
