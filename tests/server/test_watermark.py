"""The server's audio carries the Perth watermark, and its welcome says so.

A fake engine that speaks espeak-ng's speech (the watermark lives in speech), real
sockets, the real protocol; the audio the client receives is scored by the detector.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.speech import espeak
from voxlive.engine.resample import resample
from voxlive.engine.watermark import detect, load_perthnet
from voxlive.protocol.codec import encode_client
from voxlive.protocol.messages import AudioSpec, Speak, SpeakOptions
from voxlive.protocol.types import UtteranceId

from ..fakes import FakeEngine, FakeSpeaker
from .harness import collect, open_session, run, run_server


@pytest.fixture(scope="module")
def net():
    return load_perthnet()


@pytest.fixture(autouse=True)
def fake_speech(monkeypatch):
    audio, rate = espeak("Thanks for the raid! Tonight we try the hardest level.")
    speech = resample(audio, rate, 22050)

    def talk(index: int, n: int, rate: int, gain: float = 0.3) -> np.ndarray:
        return np.resize(speech[(index * 4099) % 20000 :], n).astype(np.float32)

    monkeypatch.setattr("tests.fakes.tone", talk)


def heard(watermark: bool, sample_rate: int | None = None):
    async def main():
        engine = FakeEngine(samples_per_char=600)
        async with run_server(engine, FakeSpeaker(), watermark=watermark) as app:
            ws = await open_session(app, AudioSpec(sample_rate=sample_rate))
            text = "Thanks for the raid, everyone! Tonight we try the hardest level."
            await ws.send(encode_client(Speak(UtteranceId("u"), text, SpeakOptions())))
            _, frames, done = await collect(ws, {"u"}, timeout=30)
            await ws.close()
            pcm = b"".join(f.pcm for f in frames[done["u"].stream])
            audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32767
            return app.capabilities, audio, done["u"]

    return run(main())


def test_what_a_client_hears_is_marked_by_default(net):
    capabilities, audio, done = heard(watermark=True)
    assert done.status == "completed"
    assert capabilities.watermark is not None and capabilities.watermark.all_output
    assert len(audio) == done.samples
    assert detect(net, audio, 22050) > 0.7


def test_the_mark_survives_the_clients_own_rate(net):
    _, audio, _ = heard(watermark=True, sample_rate=16000)
    assert detect(net, audio, 16000) > 0.7


def test_with_the_watermark_off_the_builtin_voice_is_not_marked(net):
    capabilities, audio, _ = heard(watermark=False)
    assert capabilities.watermark is not None and not capabilities.watermark.all_output
    assert detect(net, audio, 22050) < 0.1
