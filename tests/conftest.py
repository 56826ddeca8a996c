"""Shared fixtures: the real bundled voice, loaded once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def voice():
    from voxlive.engine.voice import Voice

    return Voice.load()


@pytest.fixture(scope="session")
def server_voice():
    """The server's own voice: the engine thread must not share one with other tests."""
    from voxlive.engine.voice import Voice

    return Voice.load()
