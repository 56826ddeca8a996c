"""``voxlive bench page``: the demo page in Chromium against a running server.

What a listener at the browser page gets, measured in the page itself: first sound
after Speak (from the click to the AudioWorklet's first non-silent output sample),
underruns over a danmaku run, and the page's weight. Needs Playwright (a dev
dependency) and a Chromium; nothing is downloaded.
"""

from __future__ import annotations

import shutil
import statistics
import time
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["PageBenchError", "bench_page", "format_page_report"]

PAGE_FILES = (
    "/",
    "/style.css",
    "/app.js",
    "/voxlive.js",
    "/player.js",
    "/player-worklet.js",
    "/live.js",
    "/danmaku.js",
    "/mouth.js",
    "/wav.js",
)
"""What the demo page loads, but the vendored msgpack build (weighed apart)."""
CODEC = "/vendor/msgpack.min.js"
SHORT = "Hi there!"

_ENTRY = """() => { const e = [...window.voxliveDemo.live.entries.values()].at(-1);
  return e.finishedAt ? { first: e.firstSoundMs, server: e.done.first_audio_ms,
    status: e.done.status, underruns: e.underruns } : null; }"""
_DANMAKU = """([count, intervalMs]) => {
  const d = window.voxliveDemo.danmaku;
  const comments = d.comments;
  let i = 0;
  const add = () => {
    const [text, emotion] = comments[i % comments.length];
    d.add({ text, emotion });
    if (++i < count) setTimeout(add, intervalMs);
  };
  add();
}"""
_DANMAKU_DONE = """(count) => { const d = window.voxliveDemo.danmaku;
  return d.spoken.length + d.dropped.length >= count; }"""
_DANMAKU_REPORT = """() => { const d = window.voxliveDemo.danmaku;
  const p = window.voxliveDemo.live.player;
  const why = {};
  for (const c of d.dropped) why[c.why] = (why[c.why] ?? 0) + 1;
  return { spoken: d.spoken.length, dropped: d.dropped.length, dropped_why: why,
    underruns: p.underruns, heard_s: p.played / p.sampleRate,
    first_sound_ms: d.spoken.map((c) => c.entry.firstSoundMs) }; }"""


class PageBenchError(RuntimeError):
    """The page cannot be measured: no Playwright, no Chromium, or no server."""


def bench_page(
    url: str,
    *,
    chromium: str | None = None,
    repeats: int = 10,
    comments: int = 60,
    interval_s: float = 1.0,
    text: str = SHORT,
) -> dict[str, Any]:
    """Measure the page of the server at ``url`` (``http://host:port``).

    Raises:
        PageBenchError: see the class.
        ValueError: bad arguments.
    """
    if repeats < 1 or comments < 0 or interval_s <= 0:
        raise ValueError("--repeats must be ≥ 1, --comments ≥ 0, --interval > 0")
    base = _http_base(url)
    weights = {path: len(_get(base + path)) for path in (*PAGE_FILES, CODEC)}
    executable = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise PageBenchError("no Chromium found: install one or pass --chromium PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise PageBenchError("voxlive bench page needs Playwright: pip install playwright") from exc
    report: dict[str, Any] = {
        "url": base,
        "page_bytes": sum(weights[p] for p in PAGE_FILES),
        "codec_bytes": weights[CODEC],
        "files": weights,
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.wait_for_selector("#status[data-state=connected]", timeout=15000)
            report["sample_rate"] = page.evaluate("() => window.voxliveDemo.live.player.sampleRate")
            page.fill("#text", text)
            # Every click synthesizes: the server's cache would replay the repeats.
            page.evaluate("() => { window.voxliveDemo.extra = { cache: false }; }")
            runs = []
            for _ in range(repeats):
                page.click("#speak")
                page.wait_for_function(_ENTRY, timeout=60000)
                runs.append(page.evaluate(_ENTRY))
                page.wait_for_timeout(300)
            report["first_sound"] = _first_sound(runs, text)
            if comments:
                started = time.monotonic()
                page.evaluate(_DANMAKU, [comments, interval_s * 1000])
                page.wait_for_function(
                    _DANMAKU_DONE, arg=comments, timeout=(comments * interval_s + 300) * 1000
                )
                danmaku = page.evaluate(_DANMAKU_REPORT)
                danmaku |= {
                    "comments": comments,
                    "interval_s": interval_s,
                    "wall_s": round(time.monotonic() - started, 1),
                    "first_sound_ms": _summary(danmaku["first_sound_ms"]),
                }
                report["danmaku"] = danmaku
        finally:
            browser.close()
    return report


def _first_sound(runs: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The first run apart (the page's first audio), the others summarized."""
    warm = runs[1:] or runs
    return {
        "text": text,
        "first_run_ms": runs[0]["first"],
        "first_run_server_first_audio_ms": runs[0]["server"],
        "page_ms": _summary([r["first"] for r in warm]),
        "server_first_audio_ms": _summary([r["server"] for r in warm]),
        "underruns": sum(r["underruns"] for r in runs),
        "statuses": sorted({r["status"] for r in runs}),
    }


def _summary(values: list[float | None]) -> dict[str, float | int | None]:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"n": 0, "median": None, "p95": None, "max": None}
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return {"n": len(xs), "median": round(statistics.median(xs), 1), "p95": p95, "max": xs[-1]}


def _http_base(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url must be http(s):// or ws(s)://host:port, not {url!r}")
    return f"{scheme}://{parts.netloc}"


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own server)
            body: bytes = response.read()
            return body
    except OSError as exc:
        raise PageBenchError(f"cannot fetch {url}: {exc}") from exc


def format_page_report(r: dict[str, Any]) -> str:
    """The report as a few lines for people."""
    fs = r["first_sound"]
    lines = [
        f"page: {r['page_bytes'] / 1000:.1f} kB without the codec "
        f"(+ {r['codec_bytes'] / 1000:.1f} kB msgpack), {r['sample_rate']} Hz",
        f"first sound after Speak ({fs['text']!r}): first run {fs['first_run_ms']} ms "
        f"(server first audio {fs['first_run_server_first_audio_ms']:.0f} ms); then "
        f"median {fs['page_ms']['median']} ms, p95 {fs['page_ms']['p95']} ms "
        f"(server first audio median {fs['server_first_audio_ms']['median']} ms), "
        f"underruns {fs['underruns']}",
    ]
    if d := r.get("danmaku"):
        lines.append(
            f"danmaku: {d['comments']} comments every {d['interval_s']} s → spoken {d['spoken']}, "
            f"dropped {d['dropped']} {d['dropped_why'] or ''}, underruns {d['underruns']}, "
            f"{d['heard_s']:.0f} s heard in {d['wall_s']} s"
        )
    return "\n".join(lines)
