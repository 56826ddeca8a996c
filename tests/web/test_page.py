"""The demo page and the overlay in real Chromium, against a real server.

Each test loads the page from ``voxlive serve``'s own port, with the server's Content
Security Policy in force, and fails on any console error. The tiny voice speaks
(noise with real timings): these tests are about playback, order and what the page
shows, not about how speech sounds.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from voxlive.engine.visemes import VISEMES
from voxlive.server.app import App

from ..server.harness import run, run_server
from .browser import browser, open_page, screenshot

pytestmark = pytest.mark.tiny_voice

LONG = (
    "The old library at the end of the street opens early in the morning. Inside, the "
    "shelves reach all the way to the ceiling, and the air smells of paper and dust."
)

ENTRIES = """() => [...window.voxliveDemo.live.entries.values()].map((e) => ({
  id: e.utterance.id, text: e.text, status: e.done?.status ?? null, sent: e.utterance.samples,
  played: e.played ?? null, firstSoundMs: e.firstSoundMs, underruns: e.underruns,
  finished: e.finishedAt != null, stream: e.utterance.stream,
}))"""

ALL_FINISHED = """() => { const es = [...window.voxliveDemo.live.entries.values()];
  return es.length > 0 && es.every((e) => e.finishedAt != null); }"""


def page_url(app: App, path: str = "/") -> str:
    return f"http://127.0.0.1:{app.port}{path}"


async def connected(page: Any) -> None:
    await page.wait_for_selector("#status[data-state=connected]", timeout=15000)


def frame_samples(rate: float) -> int:
    return round(rate * 0.040)  # the session's frame_ms (40, the default)


def test_the_page_speaks_and_plays_every_sample_the_server_sent(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            assert "en" in await page.text_content("#caps")
            await page.fill("#text", "Thanks for the follow, see you tomorrow!")
            await page.fill("#emotion", "happy")
            await page.click("#speak")
            await page.wait_for_function(ALL_FINISHED, timeout=30000)
            [entry] = await page.evaluate(ENTRIES)
            rate = await page.evaluate("() => window.voxliveDemo.live.player.sampleRate")
            row = await page.text_content("#log tbody tr")
            await screenshot(page, "demo-page")
            return entry, rate, row, console.errors

    entry, rate, row, errors = run(main())
    assert errors == []
    assert entry["status"] == "completed"
    assert entry["sent"] > rate  # over a second of audio, at the page's own rate
    assert abs(entry["played"] - entry["sent"]) <= frame_samples(rate)
    assert entry["underruns"] == 0
    assert entry["firstSoundMs"] is not None and entry["firstSoundMs"] > 0
    assert "completed" in row and str(round(entry["firstSoundMs"])) in row


def test_stop_silences_the_page_within_one_frame(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            await page.fill("#text", LONG)
            await page.click("#speak")
            # Half a second into the sound, press Stop.
            await page.wait_for_function(
                "() => { const p = window.voxliveDemo.live.player;"
                " return p.played > p.sampleRate / 2; }",
                timeout=30000,
            )
            await page.click("#stop")
            await page.wait_for_function(ALL_FINISHED, timeout=10000)
            await page.wait_for_timeout(500)  # anything still queued would play now
            before, heard, after = await page.evaluate(
                "() => { const p = window.voxliveDemo.live.player;"
                " return [p.stopPressed.played, p.stopHeard.played, p.played]; }"
            )
            [entry] = await page.evaluate(ENTRIES)
            rate = await page.evaluate("() => window.voxliveDemo.live.player.sampleRate")
            row = await page.get_attribute("#log tbody tr", "data-status")
            return before, heard, after, entry, rate, row, console.errors

    before, heard, after, entry, rate, row, errors = run(main())
    assert errors == []
    # From the click to the audio thread, then the fade: within one frame. (The page's
    # count at the click lags the audio thread by up to 4 render quanta, 512 samples.)
    assert after - before <= frame_samples(rate) + 512
    assert after - heard <= round(0.005 * rate) + 128  # the 5 ms fade, to a render quantum
    assert entry["played"] < entry["sent"] - rate  # seconds of it were never heard
    # Cancelled by the server while it was still speaking, or stopped after it finished.
    assert row in ("cancelled", "stopped") and entry["status"] in ("cancelled", "completed")


def test_danmaku_speaks_comments_in_order_and_shows_a_stale_one_dropped(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            await page.evaluate(
                """() => { const d = window.voxliveDemo.danmaku;
                d.add({ text: "First comment, hello!", emotion: "happy" });
                d.add({ text: "Second one: what a play.", emotion: "surprised" });
                d.add({ text: "This one waited too long.", emotion: "sad", staleMs: 1 });
                d.add({ text: "Third, good night everyone.", emotion: "calm" }); }"""
            )
            await page.wait_for_function(
                "() => { const d = window.voxliveDemo.danmaku;"
                " return d.spoken.length + d.dropped.length === 4; }",
                timeout=60000,
            )
            heard = await page.evaluate(
                """() => window.voxliveDemo.danmaku.spoken
                .map((c) => [c.text, c.entry.firstSoundMs + c.entry.clickedAt])"""
            )
            dropped = await page.evaluate(
                "() => [...document.querySelectorAll('.comment.dropped')].map((e) => e.textContent)"
            )
            counts = await page.text_content("#danmaku-counts")
            await screenshot(page, "demo-danmaku")
            return heard, dropped, counts, console.errors

    heard, dropped, counts, errors = run(main())
    assert errors == []
    assert [t for t, _ in heard] == [
        "First comment, hello!",
        "Second one: what a play.",
        "Third, good night everyone.",
    ]
    starts = [at for _, at in heard]
    assert starts == sorted(starts)  # heard in that order, not just settled in it
    assert len(dropped) == 1 and "This one waited too long." in dropped[0]
    assert counts == "spoken 3 · dropped 1"


def test_an_unknown_emotion_is_reported_inline(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            await page.fill("#emotion", "grumpy")
            await page.click("#speak")
            await page.wait_for_selector("#speak-error:not([hidden])", timeout=10000)
            text = await page.text_content("#speak-error")
            code = await page.get_attribute("#speak-error", "data-code")
            await page.wait_for_function(ALL_FINISHED, timeout=10000)
            [entry] = await page.evaluate(ENTRIES)
            row = await page.text_content("#log tbody tr")
            await screenshot(page, "demo-error")
            # A known synonym in another case is accepted and clears the error.
            await page.fill("#emotion", "Furious")
            await page.click("#speak")
            await page.wait_for_function(
                "() => [...window.voxliveDemo.live.entries.values()]"
                ".at(-1).done?.status === 'completed'",
                timeout=30000,
            )
            hidden = await page.get_attribute("#speak-error", "hidden")
            return text, code, entry, row, hidden, console.errors

    text, code, entry, row, hidden, errors = run(main())
    assert errors == []
    assert code == "unsupported" and "grumpy" in text
    assert entry["status"] == "rejected" and "rejected · unsupported" in row
    assert hidden is not None


def test_visemes_arrive_before_the_audio_they_describe_and_cover_it(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            got = await page.evaluate(
                """async () => {
                  const live = window.voxliveDemo.live;
                  const events = [];
                  const entry = live.speak("Map the five ships. She said hello!", {});
                  const u = entry.utterance;
                  u.addEventListener("marks", (e) => events.push(["marks", e.detail]));
                  u.addEventListener("audio", (e) => events.push(
                    ["audio", { offset: e.detail.offset, n: e.detail.samples.length }]));
                  await entry.finished;
                  return { events, sent: u.samples, changes: window.voxliveDemo.mouth.changes };
                }"""
            )
            return got, console.errors

    got, errors = run(main())
    assert errors == []
    marks = [m for kind, m in got["events"] if kind == "marks"]
    assert len(marks) == 2  # one per sentence
    seen_until = 0  # samples of audio received so far
    covered: list[tuple[int, int]] = []
    for kind, item in got["events"]:
        if kind == "audio":
            seen_until = item["offset"] + item["n"]
            continue
        visemes = item["visemes"]
        assert visemes, item
        assert visemes[0]["start"] == item["offset"]
        assert seen_until <= item["offset"]  # no audio of this sentence came before it
        for a, b in zip(visemes, visemes[1:]):
            assert a["end"] == b["start"] and a["start"] < a["end"]  # contiguous
        assert {v["v"] for v in visemes} <= set(VISEMES)
        covered.append((visemes[0]["start"], visemes[-1]["end"]))
        for word in item["words"]:
            assert visemes[0]["start"] <= word["start"] and word["end"] <= visemes[-1]["end"]
    # Together the sentences' tracks span the utterance's speech: no stretch of a second.
    ends = [0] + [e for _, e in covered]
    starts = [s for s, _ in covered] + [got["sent"]]
    assert all(s - e < 0.5 * 44100 for e, s in zip(ends, starts))
    assert got["changes"] > 5  # the page's mouth moved with them


def test_the_overlay_is_transparent_has_no_controls_and_speaks_its_comments(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            url = page_url(app, "/overlay?say=Hello%20chat!|happy&say=Bye%20now.|calm&mouth=1")
            page, console = await open_page(b, url)
            await page.wait_for_function(
                "() => window.voxliveOverlay.danmaku.spoken.length === 2", timeout=60000
            )
            controls = await page.evaluate(
                "() => document.querySelectorAll('button, input, select, textarea, a').length"
            )
            background = await page.evaluate(
                "() => [document.documentElement, document.body]"
                ".map((e) => getComputedStyle(e).backgroundColor)"
            )
            png = await page.screenshot(omit_background=True)
            await screenshot(page, "overlay", omit_background=True)
            errors = await page.evaluate("() => window.voxliveOverlay.errors")
            return controls, background, png, errors + console.errors

    controls, background, png, errors = run(main())
    assert errors == []
    assert controls == 0
    assert background == ["rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]
    alpha = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[..., 3]
    assert (alpha == 0).mean() > 0.9  # transparent but for the comments and the mouth
    assert alpha.max() == 255  # ... which are drawn


def test_the_client_speaks_json_when_asked_and_msgpack_by_default(server_voice):
    async def main():
        async with run_server(server_voice) as app, browser() as b:
            page, console = await open_page(b, page_url(app))
            await connected(page)
            got = await page.evaluate(
                """async (url) => {
                  const { connect } = await import("/voxlive.js");
                  const out = {};
                  for (const encoding of ["json", "msgpack"]) {
                    const vox = await connect(url, { encoding, format: "s16le" });
                    const u = vox.speak("Good game.", { timestamps: true });
                    const done = await u.done;
                    const wrong = vox.speak("x", { emotion: "grumpy" });
                    const refused = await wrong.done;
                    const open = vox.stream({ emotion: "calm" }).append("Never ended, ");
                    open.cancel();
                    const cancelled = await open.done;
                    out[encoding] = { binary: vox._binary, status: done.status,
                      samples: done.samples, got: u.samples, rate: vox.audio.sample_rate,
                      refused: refused.status,
                      code: wrong.errors[0]?.code, cancelled: cancelled.status };
                    vox.close();
                  }
                  return out;
                }""",
                f"ws://127.0.0.1:{app.port}/",
            )
            return got, console.errors

    got, errors = run(main())
    assert errors == []
    assert got["json"]["binary"] is False and got["msgpack"]["binary"] is True
    for r in got.values():
        assert r["status"] == "completed" and r["samples"] == r["got"] > 0
        assert r["rate"] == 22050  # the voice's own rate: none was asked
        assert (r["refused"], r["code"]) == ("rejected", "unsupported")
        assert r["cancelled"] == "cancelled"
