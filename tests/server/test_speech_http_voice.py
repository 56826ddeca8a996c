"""The HTTP speech API on the real voice: every format, through the official ``openai``
client, is understood by the Whisper judge and carries the watermark. Slow."""

from __future__ import annotations

import numpy as np
import pytest

from tests.judge import transcribe, wer
from voxlive.engine.watermark import detect, load_perthnet
from voxlive.server.speech import FORMATS

from .test_speech_http import client_of, decode, serving

pytestmark = pytest.mark.slow

TEXT = "Welcome back to the stream, everyone. Tonight we try the hardest level."


def test_every_format_is_heard_right_and_marked(real_server_voice, whisper):
    with serving(real_server_voice, watermark=True) as app:
        client = client_of(app)
        got = {
            fmt: client.audio.speech.create(
                model="tts-1", voice="alloy", input=TEXT, response_format=fmt
            ).content
            for fmt in FORMATS
        }
    net = load_perthnet()
    for fmt, data in got.items():
        audio, rate = decode(data, fmt)
        assert rate == 24000
        assert wer([TEXT], [transcribe(whisper, audio.astype(np.float32), rate)]) <= 0.1, fmt
        assert detect(net, audio, rate) > 0.7, fmt
