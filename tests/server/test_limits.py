"""Limits on sessions, utterances and voice registrations (server/limits.py) and blocked
words (server/textfilter.py): the pieces on an injected clock, then each limit through a
real server with the code it documents (SPEC.md §6, §7)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    Append,
    Done,
    End,
    Error,
    Hello,
    Speak,
    SpeakOptions,
    VoiceRegister,
    Welcome,
)
from voxlive.protocol.types import CloseCode, UtteranceId
from voxlive.server.config import Config, ConfigError
from voxlive.server.limits import (
    Quotas,
    RateLimiter,
    SessionCounts,
    TokenBucket,
    WindowLimiter,
    client_ip,
    parse_networks,
    retry_after_ms,
    take_all,
)
from voxlive.server.textfilter import TextFilter

from .harness import collect, open_session, run, run_server, url


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- token buckets, windows, counts (no server) -------------------------------------------


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(rate_per_s=5.0, burst=10, now=0.0)
    for _ in range(10):
        assert bucket.wait_s(0.0) == 0.0
        bucket.take(0.0)
    assert bucket.wait_s(0.0) == pytest.approx(0.2)
    assert bucket.wait_s(0.1) == pytest.approx(0.1)
    assert bucket.wait_s(0.2) == 0.0
    bucket.take(0.2)
    assert bucket.wait_s(0.2) == pytest.approx(0.2)
    assert bucket.full(10.0)  # never more than the burst
    assert bucket.tokens == 10.0


def test_a_rate_limiter_keeps_one_bucket_per_subject_and_forgets_full_ones() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1.0, burst=2, clock=clock)
    for subject in ("a", "a", "b"):
        assert limiter.wait_s(subject) == 0.0
        limiter.take(subject)
    assert limiter.wait_s("a") == pytest.approx(1.0)
    assert limiter.wait_s("b") == 0.0
    assert len(limiter) == 2
    clock.now += 5.0  # both refilled: nothing worth keeping
    limiter.take("c")
    assert len(limiter) == 1


def test_a_rate_of_zero_is_no_limit() -> None:
    limiter = RateLimiter(rate_per_s=0.0, burst=1, clock=Clock())
    for _ in range(100):
        assert limiter.wait_s("a") == 0.0
        limiter.take("a")
    assert len(limiter) == 0


def test_take_all_takes_from_every_bucket_or_from_none() -> None:
    clock = Clock()
    ip = RateLimiter(rate_per_s=1.0, burst=5, clock=clock)
    key = RateLimiter(rate_per_s=0.5, burst=1, clock=clock)
    assert take_all([(ip, "1.2.3.4"), (key, "k")]) == 0.0
    assert take_all([(ip, "1.2.3.4"), (key, "k")]) == pytest.approx(2.0)
    assert ip.wait_s("1.2.3.4") == 0.0 and ip._buckets["1.2.3.4"].tokens == 4.0
    clock.now += 2.0
    assert take_all([(ip, "1.2.3.4"), (key, "k")]) == 0.0


def test_quotas_apply_the_address_and_the_key_and_count_registrations_per_hour() -> None:
    clock = Clock()
    config = Config(
        utterances_per_s_per_ip=1.0,
        utterance_burst_per_ip=2,
        utterances_per_s_per_key=1.0,
        utterance_burst_per_key=1,
        registrations_per_hour=2,
    )
    quotas = Quotas(config, clock)
    assert quotas.utterance("10.0.0.1", "key1") == 0.0
    assert quotas.utterance("10.0.0.1", "key1") == pytest.approx(1.0)  # the key's burst is 1
    assert quotas.utterance("10.0.0.1", None) == 0.0  # the address had 2
    assert quotas.utterance("10.0.0.1", None) == pytest.approx(1.0)
    assert quotas.registration("10.0.0.1", None) == 0.0
    assert quotas.registration("10.0.0.1", "key1") == 0.0  # a key counts apart
    clock.now += 600
    assert quotas.registration("10.0.0.1", None) == 0.0
    assert quotas.registration("10.0.0.1", None) == pytest.approx(3000.0)
    clock.now += 3000
    assert quotas.registration("10.0.0.1", None) == 0.0


def test_a_window_allows_count_events_in_any_window_and_forgets_old_ones() -> None:
    clock = Clock()
    window = WindowLimiter(count=3, window_s=3600.0, clock=clock)
    for step in (0, 100, 200):
        clock.now += step
        assert window.take("k") == 0.0
    assert window.take("k") == pytest.approx(3600.0 - 300.0)
    clock.now += 3300.0
    assert window.take("k") == 0.0  # the first event left the window
    assert WindowLimiter(0, 3600.0, clock).take("k") == 0.0  # 0: no limit


def test_session_counts_refuse_over_the_total_and_per_address() -> None:
    counts = SessionCounts(max_total=3, max_per_ip=2)
    assert counts.open("a") is None and counts.open("a") is None
    assert counts.open("a") == "too many sessions from this address"
    assert counts.open("b") is None
    assert counts.open("c") == "server at capacity"
    counts.close("a")
    assert counts.open("c") is None
    assert (counts.total, counts.of("a"), counts.of("c")) == (3, 1, 1)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "want"),
    [
        ("203.0.113.9", None, "", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "", "203.0.113.9"),  # no proxy is trusted
        ("203.0.113.9", "198.51.100.1", "10.0.0.0/8", "203.0.113.9"),  # not from a proxy
        ("10.0.0.2", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "10.0.0.0/8", "198.51.100.1"),
        ("10.0.0.2", "junk, 198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, junk", "10.0.0.0/8", "10.0.0.2"),
        ("::ffff:10.0.0.2", "2001:db8::1", "10.0.0.2", "2001:db8::1"),
        (None, None, "", "unknown"),
    ],
)
def test_the_client_address_is_the_peer_or_forwarded_by_a_trusted_proxy(
    peer, forwarded, trusted, want
) -> None:
    assert client_ip(peer, forwarded, parse_networks(trusted)) == want


def test_bad_networks_and_origins_are_config_errors_that_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies: '10.0.0.0/33'") as caught:
        Config(trusted_proxies="127.0.0.1, 10.0.0.0/33")
    assert caught.value.name == "trusted_proxies"
    with pytest.raises(ConfigError) as caught:
        Config(allowed_origins="https://a.example/path")
    assert caught.value.name == "allowed_origins"
    with pytest.raises(ConfigError, match="utterances_per_s_per_ip must be a number ≥ 0"):
        Config(utterances_per_s_per_ip=-1.0)
    with pytest.raises(ConfigError, match="handshake_timeout_s must be > 0"):
        Config(handshake_timeout_s=0)
    assert Config(registrations_per_hour=0, idle_timeout_s=0).registrations_per_hour == 0


def test_retry_after_rounds_up_to_whole_milliseconds() -> None:
    assert [retry_after_ms(s) for s in (0.0001, 0.2, 0.2004, 3.0)] == [1, 200, 201, 3000]


# -- blocked words (no server) ----------------------------------------------------------

WORDS = ["darn", "坏蛋", "bad word"]


@pytest.mark.parametrize(
    "text",
    [
        "Well, darn it.",
        "DARN",
        "d a r n",
        "d.a.r.n!",
        "d_a-r n",
        "ｄａｒｎ",  # full width
        "d\u200ba\u200br\u200bn",  # zero-width spaces
        "你这个坏蛋！",
        "你這個壞蛋",  # Traditional
        "坏 蛋",
        "that is a bad   word",
        "badword",
        "坏蛋darn",
    ],
)
def test_a_blocked_phrase_is_found_in_its_disguises(text) -> None:
    assert TextFilter(WORDS).blocked(text)


@pytest.mark.parametrize(
    "text", ["darning socks", "adarn", "Darnell", "bad words", "好人", "d  a    rn"]
)
def test_words_that_only_contain_a_blocked_one_are_not_blocked(text) -> None:
    assert not TextFilter(WORDS).blocked(text)


def test_a_phrase_at_the_end_of_streamed_text_waits_for_the_next_append() -> None:
    words = TextFilter(WORDS)
    assert not words.blocked("oh da", final=False)
    check = words.stream()
    assert not check.feed("oh da")
    assert not check.feed("rn")  # "darn" so far, but "darning" may follow
    assert not check.feed("ing socks, ")
    assert check.feed("oh darn.")
    check = words.stream()
    assert not check.feed("so da") and not check.feed("rn")
    assert check.feed("", final=True)  # end: "darn" is a word
    check = words.stream()
    assert not check.feed("你这个坏")
    assert check.feed("蛋")  # Chinese needs no word boundary


def test_the_words_file_skips_comments_and_blank_lines(tmp_path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# a comment\n\ndarn\n  坏蛋  \n!!!\n", encoding="utf-8")
    words = TextFilter.load(path)
    assert words.phrases == 2  # "!!!" has no letter
    assert words.blocked("坏蛋") and not words.blocked("a comment")


# -- through a real server ------------------------------------------------------------


def speak(uid: str, text: str, **options: Any) -> bytes:
    return encode_client(Speak(id=UtteranceId(uid), text=text, options=SpeakOptions(**options)))


async def until_closed(ws: ClientConnection, timeout: float = 10.0) -> list[Any]:
    messages: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                messages.append(decode_server(await ws.recv()))
    except ConnectionClosed:
        pass
    return messages


async def until_error(ws: ClientConnection, timeout: float = 30.0) -> tuple[Error, list[Any]]:
    """Read up to the first error; returns it and what came before."""
    before: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            message = decode_server(await ws.recv())
            if isinstance(message, Error):
                return message, before
            before.append(message)


@pytest.mark.tiny_voice
def test_a_session_over_max_sessions_is_closed_with_1013_and_a_freed_slot_is_reused(
    server_voice,
):
    async def main():
        async with run_server(server_voice, max_sessions=2) as app:
            first, second = await open_session(app), await open_session(app)
            third = await connect(url(app))
            await until_closed(third)
            await first.close()
            async with asyncio.timeout(10):
                while app.quotas.sessions.total > 1:  # the server has counted the close
                    await asyncio.sleep(0.01)
            fourth = await open_session(app)
            await second.close()
            await fourth.close()
            return third.close_code, third.close_reason

    assert run(main()) == (CloseCode.TRY_AGAIN_LATER, "server at capacity")


@pytest.mark.tiny_voice
def test_sessions_per_address_are_limited_and_a_trusted_proxy_names_the_address(server_voice):
    def forwarded(ip: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": ip}}

    async def main():
        overrides = {"max_sessions_per_ip": 1, "trusted_proxies": "127.0.0.1"}
        async with run_server(server_voice, **overrides) as app:
            a = await open_session(app, **forwarded("198.51.100.1"))
            b = await open_session(app, **forwarded("198.51.100.2"))  # another client
            again = await connect(url(app), **forwarded("198.51.100.1"))
            await until_closed(again)
            await a.close()
            await b.close()
        async with run_server(server_voice, max_sessions_per_ip=1) as app:
            a = await open_session(app, **forwarded("198.51.100.1"))
            spoofed = await connect(url(app), **forwarded("198.51.100.2"))  # not believed
            await until_closed(spoofed)
            await a.close()
        return (again.close_code, again.close_reason), (spoofed.close_code)

    (code, reason), spoofed = run(main())
    assert (code, reason) == (CloseCode.TRY_AGAIN_LATER, "too many sessions from this address")
    assert spoofed == CloseCode.TRY_AGAIN_LATER


@pytest.mark.tiny_voice
def test_a_connection_without_hello_is_closed_with_1008_after_the_handshake_timeout(
    server_voice,
):
    async def main():
        async with run_server(server_voice, handshake_timeout_s=0.3) as app:
            quiet = await connect(url(app))
            greeted = await open_session(app)
            messages = await until_closed(quiet)
            await greeted.send(speak("ok", "Still here."))
            _, _, done = await collect(greeted, {"ok"})
            await greeted.close()
            return messages, quiet.close_code, quiet.close_reason, done["ok"].status

    messages, code, reason, status = run(main())
    assert messages == [] and code == CloseCode.POLICY_VIOLATION
    assert reason == "no hello within 0.3 s"
    assert status == "completed"  # a session that said hello in time stays


@pytest.mark.tiny_voice
def test_an_idle_session_is_closed_with_1000_but_not_while_an_utterance_is_in_flight(
    server_voice,
):
    idle_s = 0.3

    async def main():
        async with run_server(server_voice, idle_timeout_s=idle_s) as app:
            ws = await open_session(app)
            # A streamed utterance waiting for its end is in flight: the session is busy.
            await ws.send(encode_client(Append(UtteranceId("s"), "Hello ", SpeakOptions())))
            await asyncio.sleep(4 * idle_s)
            await ws.send(encode_client(End(UtteranceId("s"))))
            _, _, done = await collect(ws, {"s"})
            loop = asyncio.get_running_loop()
            done_at = loop.time()
            rest = await until_closed(ws)
            return done["s"].status, rest, ws.close_code, ws.close_reason, loop.time() - done_at

    status, rest, code, reason, after_s = run(main())
    assert status == "completed"
    assert [m for m in rest if not hasattr(m, "pcm")] == []
    assert (code, reason) == (CloseCode.NORMAL, "idle for 0.3 s")
    assert after_s >= idle_s * 0.5


@pytest.mark.tiny_voice
def test_utterances_over_the_address_rate_are_refused_with_a_retry_hint_and_no_done(
    server_voice,
):
    async def main():
        limits = {"utterances_per_s_per_ip": 0.2, "utterance_burst_per_ip": 2}
        async with run_server(server_voice, **limits) as app:
            ws = await open_session(app)
            for uid in ("a", "b", "c"):
                await ws.send(speak(uid, "Thanks for the follow!"))
            error, _ = await until_error(ws)
            await ws.send(speak("c", "Again?"))  # "c" never opened: no duplicate_id
            again, _ = await until_error(ws)
            messages, _, done = await collect(ws, {"a", "b"})
            await ws.close()
            return error, again, messages, done

    error, again, messages, done = run(main())
    assert (error.code, error.id, error.retryable) == ("rate_limited", "c", True)
    assert 4000 < error.retry_after_ms <= 5000  # a token every 5 s
    assert (again.code, again.id) == ("rate_limited", "c")
    assert {d.status for d in done.values()} == {"completed"}
    assert not [m for m in messages if isinstance(m, Done) and m.id == "c"]


@pytest.mark.tiny_voice
def test_an_api_key_has_its_own_rate(server_voice, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("key-aaaaaaaaaaaaaaaa tenant-a\n", encoding="utf-8")

    async def main():
        limits = {"utterances_per_s_per_key": 0.1, "utterance_burst_per_key": 1}
        async with run_server(server_voice, keys_file=str(keys), **limits) as app:
            ws = await connect(url(app))
            await ws.send(encode_client(Hello(version=1, token="key-aaaaaaaaaaaaaaaa")))
            assert isinstance(decode_server(await ws.recv()), Welcome)
            await ws.send(speak("a", "One."))
            await ws.send(speak("b", "Two."))
            error, _ = await until_error(ws)
            await collect(ws, {"a"})
            await ws.close()
            return error

    error = run(main())
    assert (error.code, error.id, error.retryable) == ("rate_limited", "b", True)
    assert 9000 < error.retry_after_ms <= 10000


def silence_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    sf.write(out, np.zeros(int(seconds * rate), np.float32), rate, format="WAV")
    return out.getvalue()


@pytest.mark.tiny_voice
def test_voice_registrations_over_the_hourly_limit_are_refused_with_rate_limited(server_voice):
    async def register(ws: ClientConnection, rid: str) -> Error:
        await ws.send(encode_client(VoiceRegister(UtteranceId(rid), silence_wav())))
        error, _ = await until_error(ws)
        return error

    async def main():
        async with run_server(server_voice, registrations_per_hour=1) as app:
            ws = await open_session(app)
            first = await register(ws, "r1")  # silence: refused, and still counted
            second = await register(ws, "r2")
            other = await open_session(app)  # the address counts, not the session
            third = await register(other, "r3")
            await ws.close()
            await other.close()
            return first, second, third

    first, second, third = run(main())
    assert first.code != "rate_limited"
    for error, rid in ((second, "r2"), (third, "r3")):
        assert (error.code, error.id, error.retryable) == ("rate_limited", rid, True)
        assert 3_500_000 < error.retry_after_ms <= 3_600_000


@pytest.mark.tiny_voice
def test_blocked_words_refuse_speak_in_every_form_and_fail_a_streamed_utterance(
    server_voice, tmp_path
):
    words = tmp_path / "words.txt"
    words.write_text("darn\n坏蛋\n", encoding="utf-8")
    refused = {
        "en": "Well, darn it.",
        "zh": "你这个坏蛋",
        "zh-hant": "你這個壞蛋",
        "spaced": "D a r N it",
        "wide": "ｄａｒｎ",
    }

    async def main():
        async with run_server(server_voice, blocked_words_file=str(words)) as app:
            ws = await open_session(app)
            errors = []
            for uid, text in refused.items():
                await ws.send(speak(uid, text))
                errors.append((await until_error(ws))[0])
            await ws.send(speak("fine", "I was darning socks."))
            # Streamed: the phrase comes in a later append.
            await ws.send(encode_client(Append(UtteranceId("s"), "Oh da", SpeakOptions())))
            await ws.send(encode_client(Append(UtteranceId("s"), "rn, it broke.")))
            messages, _, done = await collect(ws, {"fine", "s"})
            await ws.close()
            return errors, messages, done

    errors, messages, done = run(main())
    assert [(e.code, e.id, e.retryable) for e in errors] == [
        ("text_rejected", uid, False) for uid in refused
    ]
    assert all("darn" not in e.message and "坏" not in e.message for e in errors)
    assert done["fine"].status == "completed"
    assert done["s"].status == "failed"
    assert [(m.code, m.id) for m in messages if isinstance(m, Error)] == [("text_rejected", "s")]
    assert not set(refused) & {m.id for m in messages if isinstance(m, Done)}
