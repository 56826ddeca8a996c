"""Real Chromium for the browser tests, driven by Playwright (no browser download).

The browser is the system's (Debian's ``chromium``; ``.ci/run`` installs it), or the
one ``VOXLIVE_CHROMIUM`` names. Screenshots go to ``artifacts/`` at the repository's
top (or ``VOXLIVE_ARTIFACTS``), for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

ARTIFACTS = Path(os.environ.get("VOXLIVE_ARTIFACTS", Path(__file__).parents[2] / "artifacts"))


def chromium() -> str:
    """The Chromium executable; a test fails (not skips) without one."""
    path = os.environ.get("VOXLIVE_CHROMIUM") or shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("no Chromium: install Debian's chromium (.ci/run does) or set VOXLIVE_CHROMIUM")
    return path


@contextlib.asynccontextmanager
async def browser(*args: str) -> AsyncIterator[Browser]:
    """Headless Chromium with sound allowed without a click (as in an OBS browser source)."""
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=chromium(),
            args=["--autoplay-policy=no-user-gesture-required", *args],
        )
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Console:
    """What a page said on its console, and its uncaught exceptions."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "favicon" not in message.text:
            self.errors.append(f"{message.text} @ {message.location.get('url')}")

    def on_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")


async def open_page(b: Browser, url: str, **context: Any) -> tuple[Page, Console]:
    """A fresh page at ``url`` (the server's CSP enforced), recording console errors."""
    page = await b.new_page(viewport={"width": 1280, "height": 900}, **context)
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_error)
    await page.goto(url)
    return page, console


async def screenshot(page: Page, name: str, **options: Any) -> Path:
    """Write a screenshot artifact; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), **options)
    return path
