"""Shared fixtures: the real bundled voice, loaded once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def voice():
    from engine.voice import Voice

    return Voice.load()
