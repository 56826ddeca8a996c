"""The page's voice registration asks for the speaker's consent (SPEC.md §4.6, v1.7).

Real Chromium against a fake-engine server with a stand-in speaker encoder: the clip is
a synthetic WAV picked as a file, and what the page sent is read back from the store.
"""

from __future__ import annotations

from datetime import datetime

from ..fakes import FakeEngine
from ..server.harness import run, run_server
from ..server.test_voices_ownership import CLIP, StubEncoder
from .browser import browser, open_page


def test_the_page_registers_only_with_the_speakers_consent_and_sends_it():
    async def main():
        server = run_server(FakeEngine(), StubEncoder(), require_consent=True)
        async with server as app, browser() as b:
            page, console = await open_page(b, f"http://127.0.0.1:{app.port}/")
            await page.wait_for_selector("#status[data-state=connected]", timeout=15000)
            clip = {"name": "clip.wav", "mimeType": "audio/wav", "buffer": CLIP}
            await page.set_input_files("#voice-file", clip)
            await page.fill("#voice-name", "anna")
            await page.click("#register")  # no name, no tick: refused on the page
            await page.wait_for_selector("#voice-error", state="visible")
            refusal = await page.text_content("#voice-error")
            stored_before = await app.voices.store.list()
            await page.fill("#voice-speaker", "Anna Li")
            await page.click("#register")  # a name but no tick: refused too
            still = await page.text_content("#voice-error")
            await page.check("#voice-consent")
            await page.click("#register")
            await page.wait_for_selector("#voice-summary[data-voice=anna]", timeout=15000)
            listed = await page.text_content("#voice-list li[data-voice=anna]")
            caps = await page.text_content("#caps")
            stored = await app.voices.store.list()
            return refusal, still, stored_before, listed, caps, stored, console.errors

    refusal, still, stored_before, listed, caps, stored, errors = run(main())
    assert errors == []
    assert "the speaker must consent" in refusal and "the speaker must consent" in still
    assert stored_before == []
    assert "registration: yes, with consent" in caps
    (profile,) = stored
    consent = profile.consent
    assert (consent.granted, consent.by, consent.method) == (
        True,
        "Anna Li",
        "confirmed in the voxlive page",
    )
    assert datetime.fromisoformat(consent.at.replace("Z", "+00:00")).tzinfo is not None
    assert "consent: Anna Li" in listed
