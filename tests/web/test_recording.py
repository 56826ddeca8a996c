"""Voice registration from the page's microphone, end to end, in real Chromium.

Chromium's fake capture device plays a WAV of espeak-ng speech (another speaker than
the bundled voice) into ``getUserMedia``; the page records it with MediaRecorder
(WebM/Opus), converts it to WAV, uploads it in chunks, and the server's real speaker
encoder analyses it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..server.harness import run, run_server
from .browser import browser, open_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.tiny_voice]

SPEECH = (
    "The weather was calm and bright on the morning we left the harbour. "
    "Everyone on board watched the coast grow smaller, until only the lighthouse remained."
)


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    espeak = shutil.which("espeak-ng")
    assert espeak is not None, "espeak-ng is needed (.ci/run installs it)"
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    subprocess.run([espeak, "-v", "en-gb", "-s", "150", "-w", str(path), SPEECH], check=True)
    return path


def test_a_recorded_voice_registers_is_listed_and_speaks(server_voice, microphone_wav):
    async def main():
        async with (
            run_server(server_voice) as app,
            browser(
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav}",
            ) as b,
        ):
            page, console = await open_page(b, f"http://127.0.0.1:{app.port}/")
            await page.wait_for_selector("#status[data-state=connected]", timeout=15000)
            await page.click("#record")
            await page.wait_for_function(
                "() => /recording [6-9]\\./"
                ".test(document.querySelector('#voice-summary').textContent)",
                timeout=20000,
            )
            await page.click("#record")  # stop
            await page.wait_for_function(
                "() => document.querySelector('#voice-summary')"
                ".textContent.includes('press Register')"
            )
            await page.fill("#voice-name", "mic-voice")
            await page.fill("#voice-speaker", "The espeak-ng speaker")
            await page.check("#voice-consent")
            await page.click("#register")
            await page.wait_for_selector("#voice-summary[data-voice=mic-voice]", timeout=60000)
            summary = await page.text_content("#voice-summary")
            listed = await page.eval_on_selector_all(
                "#voice-list li", "(els) => els.map((e) => e.dataset.voice)"
            )
            picked = await page.input_value("#voice")
            await page.fill("#text", "Now I speak with the recorded voice.")
            await page.click("#speak")
            await page.wait_for_function(
                "() => [...window.voxliveDemo.live.entries.values()].at(-1)?.finishedAt != null",
                timeout=60000,
            )
            status = await page.evaluate(
                "() => [...window.voxliveDemo.live.entries.values()].at(-1).done.status"
            )
            error = await page.is_visible("#voice-error")
            await screenshot(page, "demo-voice-registered")
            await page.click("#voice-list li[data-voice=mic-voice] button")
            await page.wait_for_selector("#voice-list li", state="detached", timeout=10000)
            after = await page.eval_on_selector_all(
                "#voice option", "(els) => els.map((e) => e.value)"
            )
            return summary, listed, picked, status, error, after, console.errors

    summary, listed, picked, status, error, after, errors = run(main())
    assert errors == []
    assert not error
    assert summary.startswith("registered mic-voice") and "s usable" in summary
    assert listed == ["mic-voice"] and picked == "mic-voice"
    assert status == "completed"
    assert "mic-voice" not in after  # deleted: gone from the picker too
