"""Built-in voices on the wire (SPEC.md §4.4, v1.4): listed in welcome, chosen per utterance,
Chinese and English runs of one text spoken by their own voices."""

from __future__ import annotations

from voxlive.engine.multivoice import MultiVoiceEngine
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import AudioSpec, Error, Hello, Speak, SpeakOptions, Welcome
from voxlive.protocol.types import UtteranceId

from ..fakes import FakeEngine, FakeSpeaker
from .harness import collect, open_session, run, run_server, url


def bilingual() -> tuple[MultiVoiceEngine, FakeEngine, FakeEngine]:
    en = FakeEngine(sample_rate=22050, name="en", samples_per_char=200)
    zh = FakeEngine(sample_rate=24000, language="zh-CN", name="zh", samples_per_char=2400)
    return MultiVoiceEngine([en, zh], default="en"), en, zh


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(UtteranceId(uid), text, SpeakOptions(**options)))


def test_welcome_lists_each_builtin_voice_with_language_rate_and_license():
    engine, _, _ = bilingual()

    async def main():
        from websockets.asyncio.client import connect

        async with run_server(engine, FakeSpeaker()) as app:
            async with connect(url(app)) as ws:
                await ws.send(encode_client(Hello(version=1, audio=AudioSpec())))
                return decode_server(await ws.recv())

    welcome = run(main())
    assert isinstance(welcome, Welcome)
    caps = welcome.capabilities
    assert caps.voices == ("en", "zh")
    assert [(v.voice, v.language, v.sample_rate) for v in caps.builtin_voices] == [
        ("en", "en-US", 22050),
        ("zh", "zh-CN", 24000),
    ]
    assert all(v.license for v in caps.builtin_voices)
    assert caps.default_sample_rate == 22050


def test_chinese_inside_english_is_spoken_not_dropped():
    engine, en, zh = bilingual()

    async def main():
        async with run_server(engine, FakeSpeaker()) as app:
            ws = await open_session(app)
            await ws.send(speak("u", "Thank you 谢谢 for the gift!"))
            return await collect(ws, {"u"}, timeout=10)

    _, frames, done = run(main())
    assert done["u"].status == "completed"
    assert en.begun == ["Thank you", "for the gift!"] and zh.begun == ["谢谢"]
    # Every run's audio arrived: the English tones plus the Chinese tone, resampled.
    expected = (len("Thank you") + len("for the gift!")) * 200 + round(2 * 2400 * 22050 / 24000)
    assert abs(done["u"].samples - expected) < 400


def test_a_voice_is_chosen_by_name_or_by_language_and_an_unknown_language_is_refused():
    engine, en, zh = bilingual()

    async def main():
        async with run_server(engine, FakeSpeaker()) as app:
            ws = await open_session(app)
            await ws.send(speak("by-name", "666", voice="zh"))
            await ws.send(speak("by-lang", "777", lang="zh"))
            await ws.send(speak("default", "888"))
            await ws.send(speak("bad", "hello", lang="fr"))
            return await collect(ws, {"by-name", "by-lang", "default"}, timeout=10)

    messages, _, done = run(main())
    assert all(d.status == "completed" for d in done.values())
    assert sorted(zh.begun) == ["666", "777"] and en.begun == ["888"]
    (refused,) = [m for m in messages if isinstance(m, Error)]
    assert refused.code == "unsupported" and "fr" in refused.message and "zh" in refused.message


def test_what_the_front_end_dropped_is_reported_in_done():
    engine, _, _ = bilingual()

    async def main():
        async with run_server(engine, FakeSpeaker()) as app:
            ws = await open_session(app)
            await ws.send(speak("u", "Hello \U0001f389 there."))
            await ws.send(speak("clean", "Hello there."))
            return await collect(ws, {"u", "clean"}, timeout=10)

    _, _, done = run(main())
    assert done["u"].status == "completed"
    assert done["u"].warnings == ("dropped emoji '\U0001f389'",)
    assert done["clean"].warnings == ()
