"""``voxlive client --voice FILE --consent-by NAME``: the speaker's consent (SPEC.md §4.6, v1.7)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from voxlive.cli.client import CONSENT_METHOD, consent_from_args
from voxlive.cli.parser import build_parser, main
from voxlive.client import Consent
from voxlive.server.voices import VoiceAdapter

from ..fakes import FakeEngine
from ..server.harness import run, run_server, url
from ..server.test_voices_ownership import CLIP, StubEncoder


def client_args(*flags: str):
    return build_parser().parse_args(["client", "Hi.", "-o", "out.wav", *flags])


def test_the_consent_flags_make_a_granted_consent() -> None:
    args = client_args(
        "--voice",
        "ref.wav",
        "--consent-by",
        "Anna Li",
        "--consent-method",
        "signed form",
        "--consent-at",
        "2024-05-01",
        "--consent-statement",
        "I agree.",
    )
    assert consent_from_args(args) == Consent(
        True, "Anna Li", "signed form", "2024-05-01", "I agree."
    )


def test_the_consent_is_given_now_and_by_a_stated_method_unless_told() -> None:
    consent = consent_from_args(client_args("--voice", "ref.wav", "--consent-by", "Anna"))
    assert consent is not None
    assert (consent.granted, consent.method, consent.statement) == (True, CONSENT_METHOD, None)
    at = datetime.fromisoformat(consent.at)
    assert at.tzinfo is not None and abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_no_consent_flags_send_no_consent() -> None:
    assert consent_from_args(client_args("--voice", "ref.wav")) is None


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--voice", "r.wav", "--consent-method", "form"], "--consent-method needs --consent-by"),
        (["--voice", "r.wav", "--consent-at", "2024-05-01"], "--consent-at needs --consent-by"),
        (["--consent-by", "Anna"], "--consent-by needs --voice"),
        (["--voice", "r.wav", "--consent-by", " "], "--consent-by must not be blank"),
        (
            ["--voice", "r.wav", "--consent-by", "Anna", "--consent-at", "1 May"],
            "--consent-at must be an ISO 8601 date or date-time",
        ),
    ],
)
def test_consent_flags_that_cannot_be_sent_are_usage_errors(flags, says) -> None:
    with pytest.raises(ValueError, match=says):
        consent_from_args(client_args(*flags))


def test_a_bad_consent_flag_exits_2_before_connecting(tmp_path, capsys) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(CLIP)
    argv = ["client", "--url", "ws://127.0.0.1:9", "Hi.", "-o", str(tmp_path / "o.wav")]
    status = main([*argv, "--voice", str(ref), "--consent-by", "Anna", "--consent-at", "now"])
    assert status == 2
    assert "--consent-at must be an ISO 8601" in capsys.readouterr().err


def test_the_client_sends_the_consent_a_server_requires(tmp_path, capsys) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(CLIP)
    audit = tmp_path / "audit.log"

    async def speak(*flags: str) -> int:
        settings = dict(require_consent=True, audit_log=str(audit))
        async with run_server(FakeEngine(), StubEncoder(), **settings) as app:
            app.adapter = VoiceAdapter(None, 22050)  # the fake engine speaks registered voices
            argv = ["client", "--url", url(app), "Hello.", "-o", str(tmp_path / "out.wav")]
            return await asyncio.to_thread(main, [*argv, "--voice", str(ref), *flags])

    assert run(speak()) == 2
    refused = capsys.readouterr().err
    assert "voice registration refused: consent_required: this server registers" in refused
    assert run(speak("--consent-by", "Anna Li", "--consent-method", "signed form")) == 0
    assert "registered voice v-" in capsys.readouterr().err
    events = [json.loads(line) for line in audit.read_text("utf-8").splitlines()]
    assert [e["event"] for e in events] == [
        "voice.refused",
        "voice.registered",
        "voice.used",
    ]
    consent = events[1]["consent"]
    assert (consent["granted"], consent["by"], consent["method"]) == (
        True,
        "Anna Li",
        "signed form",
    )
