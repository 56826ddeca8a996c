"""Voice requests of the client (register, list, delete) and ``voxlive client --voice-file``."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from voxlive.cli.parser import main as cli_main
from voxlive.client import Client, ClientError
from voxlive.engine.voice import SynthesisParams

from ..server.harness import run, run_server, url

RATE = 22050


@pytest.fixture(scope="module")
def reference(voice) -> bytes:
    """~6 s of real speech as a 16-bit WAV (~270 KB: six 48 KiB chunks)."""
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "She sells sea shells by the sea shore.",
    ]
    pause = np.zeros(RATE // 2, np.float32)
    parts = [pause] + [
        x for s in voice.synthesize_texts(texts, SynthesisParams(seed=1)) for x in (s, pause)
    ]
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts), RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.slow
def test_client_registers_lists_and_deletes_voices(server_voice, reference, tmp_path) -> None:
    path = tmp_path / "ref.wav"
    path.write_bytes(reference)

    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            assert c.welcome.capabilities.voice_registration
            ready = await c.register_voice(path, name="carol", scope="persistent")
            again = await c.register_voice(reference, name="carol", scope="persistent")
            voices = await c.list_voices()
            deleted = await c.delete_voice("carol")
            missing = await c.delete_voice("carol")
            return ready, again, voices, deleted, missing, await c.list_voices()

    ready, again, voices, deleted, missing, after = run(main())
    assert (ready.voice, ready.cached, again.cached) == ("carol", False, True)
    assert ready.summary["usable_s"] > 3
    assert [(v.voice, v.scope) for v in voices] == [("carol", "persistent")]
    assert (deleted, missing, after) == (True, False, [])


@pytest.mark.tiny_voice
def test_a_refused_clip_raises_client_error_with_its_code(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            with pytest.raises(ClientError) as info:
                await c.register_voice(b"definitely not audio" * 50)
            with pytest.raises(ValueError, match="too_large"):
                await c.register_voice(b"\0" * (c.welcome.limits.max_reference_bytes + 1))
            result = await c.synthesize("Still here.")  # the connection stays usable
            return info.value, result

    error, result = run(main())
    assert error.code == "unsupported_format" and result.ok


@pytest.mark.slow
def test_speaking_in_a_registered_voice_completes(server_voice, reference):
    async def main():
        async with run_server(server_voice) as app, Client.connect(url(app)) as c:
            ready = await c.register_voice(reference)
            return ready, await c.synthesize("Hello there.", voice=ready.voice)

    ready, result = run(main())
    assert "similarity" in ready.summary
    assert result.ok and result.num_samples > 0.5 * result.sample_rate


@pytest.mark.slow
def test_cli_voice_file_registers_then_speaks_in_that_voice(
    server_voice, reference, tmp_path, capsys
) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(reference)
    out = tmp_path / "out.wav"

    async def main():
        async with run_server(server_voice) as app:
            argv = ["client", "--url", url(app), "Hello.", "-o", str(out), "--voice-file", str(ref)]
            return await asyncio.to_thread(cli_main, argv)

    assert run(main()) == 0
    assert "registered voice v-" in capsys.readouterr().err
    assert out.exists() and out.stat().st_size > 10_000


@pytest.mark.tiny_voice
def test_cli_reports_a_refused_voice_file_and_exits_2(server_voice, tmp_path, capsys) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(b"not audio" * 100)

    async def main():
        async with run_server(server_voice) as app:
            argv = ["client", "--url", url(app), "Hi.", "-o", str(tmp_path / "o.wav")]
            return await asyncio.to_thread(cli_main, [*argv, "--voice-file", str(ref)])

    assert run(main()) == 2
    assert "voice registration refused: unsupported_format" in capsys.readouterr().err
