"""Defects found by a client written from SPEC.md alone, each checked on a real server.

Most run over the fake engine (``tests/fakes.py``) with a stand-in speaker encoder, so
they take well under a second; the ones about what the real engine refuses use the
tiny random-weight voice. Protocol 1.6 (SPEC.md §12) came out of them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from voxlive.engine.emotion import prosody
from voxlive.engine.interface import Text, TextError
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    AudioFrame,
    Cancel,
    Done,
    End,
    Error,
    Flush,
    Speak,
    SpeakOptions,
    Started,
    VoiceReady,
    VoiceRegister,
)
from voxlive.protocol.types import ERROR_CODES, UtteranceId

from ..fakes import FakeEngine
from .harness import collect, open_session, run, run_server
from .redis_server import redis_server
from .test_voices import chunks, listed, register
from .test_voices_ownership import CLIP, StubEncoder

SPEC = (Path(__file__).parents[2] / "protocol" / "SPEC.md").read_text("utf-8")


def fake_server(engine: FakeEngine | None = None, **overrides):
    return run_server(engine or FakeEngine(), StubEncoder(), **overrides)


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(UtteranceId(uid), text, SpeakOptions(**options)))


async def until_done(ws, uid: str, timeout: float = 10.0) -> list[object]:
    """Every control message up to and including the ``done`` of ``uid``."""
    seen: list[object] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = decode_server(await ws.recv())
            if isinstance(msg, AudioFrame):
                continue
            seen.append(msg)
            if isinstance(msg, Done) and msg.id == uid:
                return seen


# --- 1. a persistent voice changes owner -------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_persistent_voice_keeps_its_owner_when_another_session_uploads_its_clip(store, tmp_path):
    async def main(redis_url: str | None):
        async with fake_server(redis_url=redis_url) as app:
            a, b = await open_session(app), await open_session(app)
            kept = await register(a, "r", CLIP, scope="persistent")
            copy = await register(b, "r", CLIP)  # session scope, no name
            assert isinstance(kept, VoiceReady) and isinstance(copy, VoiceReady)
            before = await listed(a), await listed(b)
            await b.close()
            async with asyncio.timeout(5):  # B's session voices go when it closes
                while any(p.voice_id == copy.voice for p in await app.voices.store.list()):
                    await asyncio.sleep(0.02)
            c = await open_session(app)
            after = await listed(a, "l2"), await listed(c)
            return kept, copy, before, after

    if store == "memory":
        kept, copy, before, after = run(main(None))
    else:
        with redis_server(tmp_path) as redis:
            kept, copy, before, after = run(main(redis.url))
    assert copy.cached and copy.voice != kept.voice
    assert before == ({kept.voice: "persistent"}, {kept.voice: "persistent", copy.voice: "session"})
    assert after == ({kept.voice: "persistent"}, {kept.voice: "persistent"})


# --- 2. a message over the transport's limit ----------------------------------------------


def test_an_oversize_message_gets_message_too_big_until_the_transport_limit_then_only_1009():
    limit = 1024
    transport = 4 * limit + 1024  # SPEC.md §2.4

    async def send_and_read(app, size: int) -> tuple[list[object], int | None]:
        ws = await open_session(app)
        await ws.send(b"\x81" + b"x" * (size - 1))
        got: list[object] = []
        try:
            async with asyncio.timeout(10):
                while True:
                    got.append(decode_server(await ws.recv()))
        except ConnectionClosed as exc:
            return got, None if exc.rcvd is None else exc.rcvd.code

    async def main():
        async with fake_server(max_message_bytes=limit) as app:
            return [await send_and_read(app, n) for n in (limit + 1, transport, transport + 1)]

    (over, over_code), (at_cap, cap_code), (beyond, beyond_code) = run(main())
    for answered in (over, at_cap):
        assert [(e.code, e.id, e.about) for e in answered] == [("message_too_big", None, None)]
    assert over_code == cap_code == beyond_code == 1009
    assert beyond == []  # never read, so never answered


# --- 3. options each in range, out of range together -------------------------------------


@pytest.mark.tiny_voice
def test_options_whose_composition_leaves_a_range_are_spoken_at_its_limit(server_voice):
    items = {
        "fast": SpeakOptions(emotion="angry", intensity=1.0, speed=4.0, seed=1),
        "slow": SpeakOptions(emotion="sad", intensity=1.0, speed=0.25, seed=1),
        "loud": SpeakOptions(emotion="angry", intensity=1.0, pitch=12.0, volume=12.0, seed=1),
    }

    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app)
            for uid, options in items.items():
                await ws.send(encode_client(Speak(UtteranceId(uid), "Hi there.", options)))
            return await collect(ws, set(items), timeout=60)

    messages, _, done = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    assert {d.status for d in done.values()} == {"completed"}
    assert done["fast"].warnings == (
        "speaking rate limited to 4× (speed 4 with emotion angry at intensity 1 asks for 4.32×)",
    )
    assert done["slow"].warnings[0].startswith("speaking rate limited to 0.25× (speed 0.25")
    assert [w.split(" (")[0] for w in done["loud"].warnings] == [
        "pitch limited to +12 semitones",
        "loudness limited to +12 dB",
    ]
    assert not any("scale" in w for d in done.values() for w in d.warnings)  # no internals


def test_the_composed_controls_are_held_to_the_option_ranges():
    fast, slow = prosody("angry", 1.0, speed=4.0), prosody("sad", 1.0, speed=0.25)
    assert (1 / fast.length_scale, 1 / slow.length_scale) == (4.0, 0.25)
    high = prosody("excited", 1.0, pitch_st=12.0, volume_db=12.0)
    low = prosody("sad", 1.0, pitch_st=-12.0, volume_db=-30.0)
    assert (high.f0_shift_st, high.gain_db, low.f0_shift_st, low.gain_db) == (12, 12, -12, -30)
    # The rest of the emotion stays whole, and nothing in range is touched or noted.
    assert high.f0_range == prosody("excited", 1.0).f0_range
    assert prosody("angry", 1.0, speed=3.5).limited == ()


# --- 4. text with nothing speakable --------------------------------------------------------


def test_text_with_nothing_speakable_ends_failed_with_warnings_and_no_error():
    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            await ws.send(speak("spoken", "\U0001f389"))
            await ws.send(encode_client(Append(UtteranceId("streamed"), "\U0001f389", None)))
            await ws.send(encode_client(End(UtteranceId("streamed"))))
            mixed = UtteranceId("mixed")
            await ws.send(encode_client(Append(mixed, "Hi there. ", SpeakOptions())))
            await ws.send(encode_client(Append(mixed, "\U0001f389")))
            await ws.send(encode_client(Flush(mixed)))
            await ws.send(encode_client(End(mixed)))
            return await collect(ws, {"spoken", "streamed", "mixed"}, timeout=10)

    messages, _, done = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    for uid in ("spoken", "streamed"):
        assert (done[uid].status, done[uid].stream, done[uid].samples) == ("failed", None, 0)
        assert "dropped emoji" in done[uid].warnings[0]
        assert done[uid].warnings[-1] == "nothing was spoken: the text held nothing speakable"
    assert done["mixed"].status == "completed"
    assert any("dropped emoji" in w for w in done["mixed"].warnings)


def test_empty_text_is_refused_and_opens_nothing():
    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            await ws.send(speak("empty", ""))
            await ws.send(speak("blank", "  \n"))
            await ws.send(encode_client(Append(UtteranceId("piece"), "", SpeakOptions())))
            await ws.send(speak("probe", "Probe."))
            return await until_done(ws, "probe")

    seen = run(main())
    errors = [(m.code, m.id) for m in seen if isinstance(m, Error)]
    assert errors == [("empty_text", "empty"), ("empty_text", "blank"), ("empty_text", "piece")]
    assert [m.id for m in seen if isinstance(m, Done)] == ["probe"]


# --- 5. too_many_inflight is worth retrying --------------------------------------------------


def test_too_many_inflight_is_retryable_with_a_hint_and_the_retry_succeeds():
    async def main():
        async with fake_server(max_inflight=1) as app:
            ws = await open_session(app)
            await ws.send(encode_client(Append(UtteranceId("open"), "Hi", SpeakOptions())))
            await ws.send(speak("more", "Hello."))
            refused = decode_server(await ws.recv())
            await ws.send(encode_client(Cancel(UtteranceId("open"))))
            await until_done(ws, "open")
            await ws.send(speak("more", "Hello."))
            return refused, await until_done(ws, "more")

    refused, retried = run(main())
    assert refused == Error(
        "too_many_inflight",
        "1 utterances are already in flight",
        UtteranceId("more"),
        retryable=True,
        retry_after_ms=500,
        about="utterance",
    )
    assert retried[-1].status == "completed"


# --- 6e. started reports no intensity without an emotion -----------------------------------


def test_started_reports_an_intensity_only_when_an_emotion_was_asked():
    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            await ws.send(speak("plain", "Hi."))
            await ws.send(speak("happy", "Hi.", emotion="happy", intensity=None))
            await ws.send(speak("sad", "Hi.", emotion="sad", intensity=0.4))
            messages, _, _ = await collect(ws, {"plain", "happy", "sad"}, timeout=10)
            return {m.id: (m.emotion, m.intensity) for m in messages if isinstance(m, Started)}

    assert run(main()) == {"plain": ("neutral", None), "happy": ("happy", 0.7), "sad": ("sad", 0.4)}


# --- 6a, 6b. SPEC.md §6's "done follows" column, checked against the server ------------------


def done_follows_column() -> dict[str, str]:
    """``code`` → the "done follows" cell of SPEC.md §6's table."""
    section = SPEC.split("## 6. Error codes")[1].split("## 7. Close codes")[0]
    rows = re.findall(r"^\| `([a-z_]+)` \|.*\| ([^|]+) \|$", section, re.MULTILINE)
    return {code: cell.strip() for code, cell in rows}


def test_every_error_code_has_a_row_saying_whether_a_done_follows():
    column = done_follows_column()
    assert sorted(column) == sorted(ERROR_CODES)
    assert {cell.split(" (")[0] for cell in column.values()} <= {"yes", "no", "only if opened"}


class ShortVoiceEngine(FakeEngine):
    """A fake engine whose voice takes at most 150 characters at once (the real one: 5000)."""

    def prepare(self, text: str, voice: str | None = None) -> Text:
        if len(text) > 150:
            raise TextError("text_too_long", "this voice takes 150 characters at once")
        return super().prepare(text, voice)


@dataclass
class Case:
    """Messages that make the server send ``code`` about ``id``; then ``cleanup``."""

    code: str
    id: str | None
    messages: list[bytes | str]
    cleanup: list[bytes | str] = field(default_factory=list)
    setup: Callable[[object], Awaitable[dict[str, str]]] | None = None


def raw(id: str, **fields) -> str:
    import json

    return json.dumps({"type": "speak", "id": id, "text": "Hi.", **fields})


async def registered_voice(ws) -> dict[str, str]:
    ready = await register(ws, "reg", CLIP)
    assert isinstance(ready, VoiceReady)
    return {"voice": ready.voice}


def cases() -> list[Case]:
    open_two = [encode_client(Append(UtteranceId(u), "Hi", SpeakOptions())) for u in "ab"]
    busy = "One sentence long enough to keep the engine busy for a while, " * 2  # one job
    too_big = b"\x00" * 300_001
    return [
        Case("invalid_message", "x", [raw("x", sped=2)]),
        Case("unknown_type", None, ['{"type": "nope"}']),
        # The stream "a" stays open: a done for it would be its own, not the refusal's.
        Case("duplicate_id", "a", [*open_two[:1], speak("a", "Hi.")]),
        Case("unknown_id", "zz", [encode_client(Flush(UtteranceId("zz")))]),
        Case("too_many_inflight", "t", [*open_two, speak("t", "Hi.")], [encode_client(Cancel())]),
        Case("text_too_long", "long", [speak("long", "x" * 201)]),
        Case("text_too_long", "voice", [speak("voice", "y" * 160)]),
        Case("empty_text", "e", [speak("e", "")]),
        Case("unsupported", "bored", [speak("bored", "Hi.", emotion="bored")]),
        Case("unsupported", "reg1", [], setup=registered_voice),
        Case("unsupported_language", "zh", [speak("zh", "你好")]),
        Case("overloaded", "many", [speak("many", "One. Two. Three.")]),
        Case("expired", "late", [speak("busy", busy), speak("late", "Hi!", deadline_ms=1)]),
        Case("internal", "boom", [speak("boom", "FAIL here.")]),
        Case("unknown_voice", "who", [speak("who", "Hi.", voice="nobody")]),
        Case(
            "unsupported_format",
            "bad",
            [encode_client(VoiceRegister(UtteranceId("bad"), b"?" * 999))],
        ),
        Case("too_large", "big", [encode_client(c) for c in chunks("big", too_big)]),
    ]


def test_the_done_follows_column_of_spec_section_6_is_what_the_server_does():
    engine = ShortVoiceEngine(step_delay_s=0.02)
    settings = dict(max_inflight=2, max_text_chars=200, max_queued_items=2)
    settings |= dict(max_active_items=1, max_reference_bytes=300_000)

    async def observe(app, case: Case) -> tuple[Error, bool]:
        ws = await open_session(app)
        messages = case.messages
        if case.setup is not None:
            options = await case.setup(ws)
            messages = [speak(case.id, "Hi.", **options)]
        for message in messages:
            await ws.send(message)
        async with asyncio.timeout(10):
            while not (
                isinstance(error := decode_server(await ws.recv()), Error)
                and error.code == case.code
            ):
                pass
        for message in case.cleanup:
            await ws.send(message)
        await ws.send(speak("probe", "Probe."))
        after = await until_done(ws, "probe")
        await ws.close()
        return error, any(isinstance(m, Done) and m.id == case.id for m in after)

    async def main():
        async with fake_server(engine, **settings) as app:
            return [(case, *await observe(app, case)) for case in cases()]

    observed: dict[str, set[bool]] = {}
    for case, error, followed in run(main()):
        assert error.id == case.id, (case.code, error)
        request = case.code in {"unsupported_format", "too_large"}
        wanted = None if case.id is None else "request" if request else "utterance"
        assert error.about == wanted, (case.code, error)
        observed.setdefault(case.code, set()).add(followed)
    column = done_follows_column()
    meaning = {"yes": {True}, "no": {False}, "only if opened": {True, False}}
    assert {code: meaning[column[code].split(" (")[0]] for code in observed} == observed
