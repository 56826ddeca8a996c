"""``voxlive client --voice FILE``: the same flag as ``voxlive say`` for a reference clip."""

from __future__ import annotations

import asyncio

import numpy as np
import soundfile as sf  # type: ignore[import-untyped]

from voxlive.cli.parser import main
from voxlive.engine.voice import SynthesisParams

from ..server.harness import run, run_server, url


def test_client_voice_registers_the_clip_then_speaks_in_its_voice(
    server_voice, tmp_path, capsys
) -> None:
    texts = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the shore."]
    rate = server_voice.sample_rate
    pause = np.zeros(rate // 2, np.float32)
    speech = server_voice.synthesize_texts(texts, SynthesisParams(seed=1))
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), np.concatenate([pause, *(x for s in speech for x in (s, pause))]), rate)
    out = tmp_path / "out.wav"

    async def speak() -> int:
        async with run_server(server_voice) as app:
            argv = ["client", "--url", url(app), "Hello.", "-o", str(out), "--voice", str(ref)]
            return await asyncio.to_thread(main, argv)

    assert run(speak()) == 0
    assert "registered voice v-" in capsys.readouterr().err
    assert out.exists() and out.stat().st_size > 10_000
