"""The server with both real voices: Chinese and mixed comments are spoken (SPEC.md §4.4.2)."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.multivoice import MultiVoiceEngine
from voxlive.engine.vits import VitsEngine
from voxlive.protocol.codec import encode_client
from voxlive.protocol.messages import Marks, Speak, SpeakOptions, Started
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
