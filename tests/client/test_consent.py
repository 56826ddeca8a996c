"""The client's ``Consent`` (SPEC.md §4.6, v1.7): sent with a registration, listed back."""

from __future__ import annotations

import dataclasses

import pytest

from voxlive.client import Client, ClientError, Consent

from ..fakes import FakeEngine
from ..server.harness import run, run_server, url
from ..server.test_voices_ownership import CLIP, StubEncoder

CONSENT = Consent(True, "Anna Li", "self (own voice)", "2024-05-01T12:30:00Z", "My voice.")


def test_consent_is_a_small_frozen_dataclass() -> None:
    assert dataclasses.is_dataclass(Consent)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONSENT.by = "someone else"  # type: ignore[misc]
    assert Consent(True, "Anna", "signed form", "2024-05-01").statement is None


def test_a_consent_goes_with_the_clip_and_comes_back_in_the_listing() -> None:
    async def main():
        server = run_server(FakeEngine(), StubEncoder(), require_consent=True)
        async with server as app, Client.connect(url(app)) as c:
            required = c.welcome.capabilities.consent_required
            with pytest.raises(ClientError) as refused:
                await c.register_voice(CLIP, name="anna")
            ready = await c.register_voice(CLIP, name="anna", consent=CONSENT)
            listed = await c.list_voices()
            return required, refused.value, ready, listed

    required, refused, ready, listed = run(main())
    assert required is True
    assert refused.code == "consent_required"
    assert ready.voice == "anna"
    assert [(v.voice, v.consent) for v in listed] == [("anna", CONSENT)]


def test_a_consent_the_server_would_refuse_fails_before_anything_is_sent() -> None:
    async def main():
        async with run_server(FakeEngine(), StubEncoder()) as app, Client.connect(url(app)) as c:
            with pytest.raises(ValueError, match="consent.at must be an ISO 8601"):
                await c.register_voice(CLIP, consent=Consent(True, "Anna", "form", "tomorrow"))
            with pytest.raises(ValueError, match="consent.by must not be blank"):
                await c.register_voice(CLIP, consent=Consent(True, "", "form", "2024-05-01"))
            return await c.list_voices(), c.closed

    listed, closed = run(main())
    assert listed == [] and not closed
