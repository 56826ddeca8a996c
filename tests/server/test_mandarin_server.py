"""The server with both real voices: Chinese and mixed comments are spoken (SPEC.md §4.4.2)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxlive.engine.multivoice import MultiVoiceEngine
from voxlive.engine.visemes import VISEMES
from voxlive.engine.vits import VitsEngine
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import AudioFrame, Done, Marks, Speak, SpeakOptions, Started
from voxlive.protocol.types import UtteranceId

from ..judge_zh import cer, transcribe_zh
from .harness import collect, open_session, run, run_server

pytestmark = pytest.mark.slow


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(UtteranceId(uid), text, SpeakOptions(**options)))


def test_a_chinese_comment_with_an_emotion_synonym_is_spoken(
    server_voice, mandarin, whisper_zh
) -> None:
    engine = MultiVoiceEngine([VitsEngine(server_voice), mandarin], default="en")

    async def main():
        async with run_server(engine) as app:
            ws = await open_session(app)
            await ws.send(
                speak("zh", "感谢老板送的火箭！", emotion="开心", lang="auto", timestamps=True)
            )
            await ws.send(speak("mixed", "Thank you 谢谢 for the gift!", timestamps=True))
            return await collect(ws, {"zh", "mixed"}, timeout=60)

    messages, frames, done = run(main())
    assert all(d.status == "completed" for d in done.values())
    started = {m.id: m for m in messages if isinstance(m, Started)}
    assert started["zh"].emotion == "happy"
    audio = np.frombuffer(b"".join(f.pcm for f in frames[started["zh"].stream]), "<i2") / 32768
    assert cer(["感谢老板送的火箭！"], [transcribe_zh(whisper_zh, audio, 22050)]) <= 0.2
    words = [w.text for m in messages if isinstance(m, Marks) and m.id == "mixed" for w in m.words]
    assert words[:3] == ["Thank", "you", "谢谢"] and len(words) >= 4  # every run has marks


def test_chinese_and_mixed_marks_carry_viseme_tracks_ahead_of_their_audio(
    server_voice, mandarin
) -> None:
    engine = MultiVoiceEngine([VitsEngine(server_voice), mandarin], default="en")

    async def main():
        async with run_server(engine) as app:
            ws = await open_session(app)
            await ws.send(speak("zh", "感谢老板送的火箭！", lang="auto", timestamps=True))
            await ws.send(speak("mixed", "Thank you 谢谢 for the gift!", timestamps=True))
            received = []  # in arrival order
            async with asyncio.timeout(60):
                while sum(isinstance(m, Done) for m in received) < 2:
                    received.append(decode_server(await ws.recv()))
            return received

    received = run(main())
    streams = {m.id: m.stream for m in received if isinstance(m, Started)}
    done = {m.id: m for m in received if isinstance(m, Done)}
    for uid, sentences in (("zh", 1), ("mixed", 3)):
        marks = [m for m in received if isinstance(m, Marks) and m.id == uid]
        assert len(marks) == sentences and done[uid].status == "completed"
        for m in marks:
            v = m.visemes
            assert v[0].start == m.offset and v[-1].end <= done[uid].samples + 1  # resampled
            assert all(a.end == b.start and a.v != b.v for a, b in zip(v, v[1:]))
            assert all(x.end > x.start for x in v) and {x.v for x in v} <= set(VISEMES)
            assert all(m.offset <= p.start and p.end <= v[-1].end for p in m.phonemes)
            earlier = received[: received.index(m)]
            frames = [f for f in earlier if isinstance(f, AudioFrame)]
            assert all(
                f.offset + len(f.pcm) // 2 <= m.offset for f in frames if f.stream == m.stream
            )
        # Runs follow each other on the utterance's timeline (resampling rounds by a sample).
        assert all(abs(b.offset - a.visemes[-1].end) <= 1 for a, b in zip(marks, marks[1:]))
        assert streams[uid] == marks[0].stream
    zh = next(m for m in received if isinstance(m, Marks) and m.id == "zh")
    # 感谢老板 gǎn xiè lǎo bǎn: kk aa nn CH ih E nn aa ou PP aa nn ...
    assert [x.v for x in zh.visemes[:4]] == ["sil", "kk", "aa", "nn"]
    assert "PP" in {x.v for x in zh.visemes} and zh.visemes[-1].v == "sil"
