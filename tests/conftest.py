"""Shared fixtures: every model the tests use, each loaded at most once per session.

All are lazy: a test run that never asks for Whisper never loads it. The real voice
(``voice``) is for tests about what speech sounds like; ``tiny_voice`` (random weights,
see ``tests/engine/tiny_voice.py``) is for tests about streaming, ordering and protocol
behaviour, and keeps them in the fast lane.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from voxlive.engine.loader import VoiceFiles
    from voxlive.engine.mandarin.engine import MandarinEngine
    from voxlive.engine.speaker import SpeakerEncoder
    from voxlive.engine.voice import Voice


@pytest.fixture(scope="session")
def voice() -> Voice:
    """The real bundled voice."""
    from voxlive.engine.voice import Voice

    return Voice.load()


@pytest.fixture
def server_voice(request: pytest.FixtureRequest) -> Voice:
    """The test server's own voice: the engine thread must not share one with other tests.

    The real voice, or the tiny one for a test marked ``tiny_voice`` (one that checks
    protocol, ordering or flow control, not what the speech sounds like).
    """
    if request.node.get_closest_marker("tiny_voice") is not None:
        return request.getfixturevalue("tiny_server_voice")  # type: ignore[no-any-return]
    return request.getfixturevalue("real_server_voice")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def real_server_voice() -> Voice:
    """The real voice for test servers, apart from ``voice`` (see ``server_voice``)."""
    from voxlive.engine.voice import Voice

    return Voice.load()


@pytest.fixture(scope="session")
def tiny_voice_files(tmp_path_factory: pytest.TempPathFactory) -> VoiceFiles:
    """The tiny random-weight voice, written once per session in Piper's ONNX format."""
    from .engine.tiny_voice import write_tiny_voice

    return write_tiny_voice(Path(tmp_path_factory.mktemp("tiny_voice")))


@pytest.fixture(scope="session")
def tiny_voice(tiny_voice_files: VoiceFiles) -> Voice:
    """The tiny voice, loaded by the real loader (noise at the bundled voice's rate)."""
    from voxlive.engine.voice import Voice

    return Voice.load(tiny_voice_files)


@pytest.fixture(scope="session")
def tiny_server_voice(tiny_voice_files: VoiceFiles) -> Voice:
    """A tiny voice for test servers, apart from ``tiny_voice`` (see ``server_voice``)."""
    from voxlive.engine.voice import Voice

    return Voice.load(tiny_voice_files)


@pytest.fixture(scope="session")
def speaker() -> SpeakerEncoder:
    """The GE2E speaker encoder (the one every test server uses too)."""
    from .server.harness import shared_speaker

    return shared_speaker()


@pytest.fixture(scope="session")
def whisper() -> WhisperModel:
    """The Whisper judge (``tests/judge.py``)."""
    from .judge import load_whisper

    return load_whisper()


@pytest.fixture(scope="session")
def whisper_zh() -> WhisperModel:
    """Multilingual Whisper base, the Chinese judge (``tests/judge_zh.py``)."""
    from .judge_zh import load_whisper_zh

    return load_whisper_zh()


@pytest.fixture(scope="session")
def mandarin() -> MandarinEngine:
    """The Mandarin voice as an engine (its model loads once per process)."""
    from voxlive.engine.mandarin.engine import MandarinEngine

    return MandarinEngine.load()


@pytest.fixture
def shared_voice(voice: Voice, monkeypatch: pytest.MonkeyPatch) -> Iterator[Voice]:
    """In-process commands speak with the session's voice instead of loading their own.

    Only the default load (bundled voice, CPU, float32) is redirected; any other
    device, precision or file still loads for real. The speaker encoder a command
    loads for a reference clip is the session's too.
    """
    from voxlive.engine.speaker import SpeakerEncoder
    from voxlive.engine.voice import Voice

    from .server.harness import shared_speaker

    load_voice = Voice.load.__func__  # type: ignore[attr-defined]
    load_speaker = SpeakerEncoder.load.__func__  # type: ignore[attr-defined]

    def voice_load(cls: type[Voice], *args: Any, **kwargs: Any) -> Voice:
        if _defaults(args, kwargs, ("files", "device", "precision"), (None, "cpu", "float32")):
            return voice
        return load_voice(cls, *args, **kwargs)  # type: ignore[no-any-return]

    def speaker_load(cls: type[SpeakerEncoder], *args: Any, **kwargs: Any) -> SpeakerEncoder:
        if _defaults(args, kwargs, ("path", "device"), (None, "cpu")):
            return shared_speaker()
        return load_speaker(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Voice, "load", classmethod(voice_load))
    monkeypatch.setattr(SpeakerEncoder, "load", classmethod(speaker_load))
    yield voice


def _defaults(
    args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...], values: tuple[Any, ...]
) -> bool:
    """Whether a call's arguments (positional or by name) all equal the defaults."""
    given = dict(zip(names, args)) | kwargs
    return set(given) <= set(names) and all(
        str(given.get(n, v)) == str(v) for n, v in zip(names, values)
    )
