"""Consent for cloned voices and the audit log, through a real server (SPEC.md §4.6, v1.7).

Over the fake engine and a stand-in speaker encoder, with a synthetic clip: fast lane.
The audit log is read back as the file ``--audit-log`` names (or the ``voxlive.audit``
logger's lines), one JSON object a line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from websockets.asyncio.client import connect

from voxlive.cli.parser import build_parser, main
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import (
    AudioFrame,
    Consent,
    Done,
    Error,
    Hello,
    Speak,
    SpeakOptions,
    VoiceDelete,
    VoiceDeleted,
    VoiceList,
    VoiceListing,
    VoiceReady,
    Watermark,
    Welcome,
)
from voxlive.protocol.types import UtteranceId
from voxlive.server.app import App
from voxlive.server.audit import AUDIT_LOGGER
from voxlive.server.config import Config, ConfigError
from voxlive.server.store import VoiceProfile
from voxlive.server.voices import VoiceAdapter

from ..fakes import FakeEngine
from .harness import open_session, run, run_server, url
from .redis_server import redis_server
from .test_store import profile
from .test_voices import register, request
from .test_voices_ownership import CLIP, StubEncoder

CONSENT = Consent(True, "Anna Li", "signed form", "2024-05-01", "I agree to being cloned.")
CONSENT_WIRE = {
    "granted": True,
    "by": "Anna Li",
    "method": "signed form",
    "at": "2024-05-01",
    "statement": "I agree to being cloned.",
}
WHO = {"session", "server", "client", "tenant", "key"}
"""The keys every audit record has besides ``ts`` and ``event``."""


def fake_server(**overrides: Any):
    return run_server(FakeEngine(), StubEncoder(), **overrides)


def audit_records(path: Path) -> list[dict[str, Any]]:
    """Every line of the audit file, parsed (each must be one JSON object)."""
    lines = path.read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) and {"ts", "event"} | WHO <= set(r) for r in records)
    return records


async def voices_listed(ws, id: str = "ls") -> dict[str, Consent | None]:
    reply = await request(ws, VoiceList(UtteranceId(id)), id=id)
    assert isinstance(reply, VoiceListing)
    return {v.voice: v.consent for v in reply.voices}


async def speak_in(ws, uid: str, text: str, voice: str) -> Done:
    """Speak ``text`` in ``voice``; return its ``done`` (an ``error`` on the way fails)."""
    await ws.send(encode_client(Speak(UtteranceId(uid), text, SpeakOptions(voice=voice))))
    async with asyncio.timeout(10):
        while True:
            reply = decode_server(await ws.recv())
            if isinstance(reply, AudioFrame):
                continue
            assert not isinstance(reply, Error), reply
            if isinstance(reply, Done) and reply.id == uid:
                return reply


# --- consent required ----------------------------------------------------------------


def test_without_consent_or_with_granted_false_a_registration_is_refused_stored_nowhere_and_audited(
    tmp_path,
):
    audit = tmp_path / "audit.log"
    denied = Consent(False, "Anna Li", "asked on stream", "2024-05-01T12:00:00Z")

    async def main():
        # One registration an hour: the refused ones must not use it up.
        settings = dict(require_consent=True, audit_log=str(audit), registrations_per_hour=1)
        async with fake_server(**settings) as app:
            ws = await open_session(app)
            missing = await register(ws, "r1", CLIP, name="anna")
            refused = await register(ws, "r2", CLIP, name="anna", consent=denied)
            listed = await voices_listed(ws)
            stored = await app.voices.store.list()
            accepted = await register(ws, "r3", CLIP, name="anna", consent=CONSENT)
            await ws.close()
            return missing, refused, listed, stored, accepted

    missing, refused, listed, stored, accepted = run(main())
    for error, rid in ((missing, "r1"), (refused, "r2")):
        assert isinstance(error, Error), error
        assert (error.code, error.id, error.about, error.retryable) == (
            "consent_required",
            rid,
            "request",
            False,
        )
    assert "consent" in missing.message and "granted false" in refused.message
    assert listed == {} and stored == []
    assert isinstance(accepted, VoiceReady), accepted
    records = audit_records(audit)
    assert [(r["event"], r.get("reason"), r.get("request")) for r in records] == [
        ("voice.refused", "consent_required", "r1"),
        ("voice.refused", "consent_required", "r2"),
        ("voice.registered", None, "r3"),
    ]
    first, second = records[:2]
    assert (first["consent"], first["voice"], first["scope"]) == (None, "anna", "session")
    assert second["consent"] == {
        "granted": False,
        "by": "Anna Li",
        "method": "asked on stream",
        "at": "2024-05-01T12:00:00Z",
        "statement": None,
    }
    assert first["client"] == "127.0.0.1" and first["session"].startswith("s")


def test_an_accepted_consent_is_stored_listed_and_audited_with_the_clips_numbers(tmp_path):
    audit = tmp_path / "audit.log"

    async def main():
        async with fake_server(require_consent=True, audit_log=str(audit)) as app:
            ws = await open_session(app)
            ready = await register(ws, "r1", CLIP, name="anna", scope="persistent", consent=CONSENT)
            listed = await voices_listed(ws)
            await ws.close()
            return ready, listed

    ready, listed = run(main())
    assert isinstance(ready, VoiceReady), ready
    assert listed == {"anna": CONSENT}
    (record,) = audit_records(audit)
    assert (
        set(record)
        == {"ts", "event", "request", "voice", "scope", "cached", "consent"} | {"reference"} | WHO
    )
    assert (record["event"], record["voice"], record["scope"]) == (
        "voice.registered",
        "anna",
        "persistent",
    )
    assert record["consent"] == CONSENT_WIRE and record["cached"] is False
    assert record["reference"]["usable_s"] == ready.summary["usable_s"]
    assert all(isinstance(v, int | float) for v in record["reference"].values())
    assert record["ts"].endswith("Z") and (record["tenant"], record["key"]) == (None, None)


def test_without_the_requirement_consent_is_optional_but_checked_and_stored(tmp_path):
    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            plain = await register(ws, "r1", CLIP, name="plain")
            attested = await register(ws, "r2", CLIP, name="attested", consent=CONSENT)
            bad = await register(
                ws, "r3", CLIP, name="bad", consent=Consent(True, "Anna", "form", "May 1st")
            )
            listed = await voices_listed(ws)
            await ws.close()
            return app.capabilities.consent_required, plain, attested, bad, listed

    required, plain, attested, bad, listed = run(main())
    assert required is False
    assert isinstance(plain, VoiceReady) and isinstance(attested, VoiceReady)
    assert isinstance(bad, Error) and bad.code == "invalid_message"
    assert "consent.at must be an ISO 8601 date or date-time" in bad.message
    assert listed == {"plain": None, "attested": CONSENT}


def test_registering_the_same_clip_again_with_a_consent_records_it():
    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            await register(ws, "r1", CLIP, name="anna")
            again = await register(ws, "r2", CLIP, name="anna", consent=CONSENT)
            later = await register(ws, "r3", CLIP, name="anna")  # keeps the one recorded
            listed = await voices_listed(ws)
            await ws.close()
            return again, later, listed

    again, later, listed = run(main())
    assert isinstance(again, VoiceReady) and again.cached
    assert isinstance(later, VoiceReady) and later.cached
    assert listed == {"anna": CONSENT}


def test_a_persistent_voices_consent_survives_a_redis_restart_and_another_server(tmp_path):
    async def register_on(redis_url: str):
        async with fake_server(redis_url=redis_url) as app:
            ws = await open_session(app)
            ready = await register(ws, "r1", CLIP, name="anna", scope="persistent", consent=CONSENT)
            await ws.close()
            return ready

    async def list_on(redis_url: str):
        async with fake_server(redis_url=redis_url) as app:
            ws = await open_session(app)
            listed = await voices_listed(ws)
            await ws.close()
            return listed

    with redis_server(tmp_path) as redis:
        assert isinstance(run(register_on(redis.url)), VoiceReady)
        redis.stop()
        redis.start()  # same port and data directory: the AOF replays
        assert run(list_on(redis.url)) == {"anna": CONSENT}


def test_a_profiles_consent_round_trips_through_bytes_and_old_profiles_still_load():
    stored = VoiceProfile(**{**_fields(profile("v1")), "consent": CONSENT})
    assert VoiceProfile.from_bytes(stored.to_bytes()) == stored
    old = msgpack.unpackb(profile("v2").to_bytes())
    del old["consent"]  # stored by a server before consents
    assert VoiceProfile.from_bytes(msgpack.packb(old)).consent is None
    broken = msgpack.unpackb(stored.to_bytes())
    broken["consent"]["at"] = "soon"
    with pytest.raises(ValueError, match="profile"):
        VoiceProfile.from_bytes(msgpack.packb(broken))


def _fields(p: VoiceProfile) -> dict[str, Any]:
    return {name: getattr(p, name) for name in VoiceProfile.__dataclass_fields__}


# --- the setting ---------------------------------------------------------------------


def test_require_consent_follows_the_keys_file_unless_it_is_set():
    assert Config().consent_required() is False
    assert Config(keys_file="keys.txt").consent_required() is True
    assert Config(keys_file="keys.txt", require_consent=False).consent_required() is False
    assert Config(require_consent=True).consent_required() is True
    env = {"VOXLIVE_KEYS_FILE": "keys.txt", "VOXLIVE_REQUIRE_CONSENT": "false"}
    assert Config.from_env(env).consent_required() is False
    unset = {"VOXLIVE_KEYS_FILE": "keys.txt", "VOXLIVE_REQUIRE_CONSENT": ""}
    assert Config.from_env(unset).require_consent is None
    assert Config.from_env(unset).consent_required() is True


def serve_args(*flags: str) -> Config:
    return Config.from_args(build_parser().parse_args(["serve", *flags]), env={})


def test_the_serve_flags_set_consent_the_audit_log_and_the_watermark():
    assert serve_args("--require-consent", "true").require_consent is True
    assert serve_args("--require-consent", "off").require_consent is False
    assert serve_args().require_consent is None
    assert serve_args("--audit-log", "/var/log/voxlive-audit.jsonl").audit_log == (
        "/var/log/voxlive-audit.jsonl"
    )
    assert serve_args().audit_log == "-"
    assert serve_args().watermark is True
    assert serve_args("--watermark", "false").watermark is False
    assert serve_args("--no-watermark").watermark is False
    with pytest.raises(ConfigError, match="--require-consent: 'maybe' is not true or false"):
        serve_args("--require-consent", "maybe")
    with pytest.raises(ConfigError, match="audit_log"):
        Config(audit_log=" ")


def test_the_watermark_setting_comes_right_after_warm_up():
    names = [f.name for f in Config.settings()]
    assert names[names.index("warm_up") + 1] == "watermark"


def test_an_audit_log_that_cannot_be_opened_stops_the_start(tmp_path):
    config = Config(port=0, audit_log=str(tmp_path / "no-such-dir" / "audit.log"))
    with pytest.raises(ConfigError, match="audit_log .*audit.log: cannot append to it: No such"):
        App(config, FakeEngine(), StubEncoder())


def test_serve_with_an_audit_log_it_cannot_open_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "no-such-dir" / "audit.log"
    assert main(["serve", "--port", "0", "--audit-log", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"voxlive: error: audit_log {bad}: cannot append to it: No such file or directory\n"
    )


# --- the welcome ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "required", "all_output"),
    [
        ({}, False, False),  # the harness turns the watermark off
        ({"require_consent": True}, True, False),
        ({"keys_file": "KEYS"}, True, False),
        ({"keys_file": "KEYS", "require_consent": False}, False, False),
    ],
)
def test_the_welcome_says_whether_consent_is_required_and_how_audio_is_marked(
    settings, required, all_output, tmp_path
):
    keys = tmp_path / "keys.txt"
    keys.write_text("sk-0123456789abcdef0123456789abcdef studio-b\n", encoding="utf-8")
    settings = {k: str(keys) if v == "KEYS" else v for k, v in settings.items()}
    bearer = {"Authorization": "Bearer sk-0123456789abcdef0123456789abcdef"}

    async def main():
        async with fake_server(**settings) as app:
            async with connect(url(app), additional_headers=bearer) as ws:
                await ws.send(encode_client(Hello(version=1)))
                welcome = decode_server(await ws.recv())
        return welcome

    welcome = run(main())
    assert isinstance(welcome, Welcome)
    assert welcome.capabilities.consent_required is required
    assert welcome.capabilities.watermark == Watermark("perthnet-implicit", all_output)


# --- the audit log -------------------------------------------------------------------


def test_the_audit_counts_uses_per_session_and_writes_them_at_its_end_and_at_deletion(tmp_path):
    audit = tmp_path / "audit.log"
    secret = "Quokkas juggle marmalade at midnight"

    async def main():
        async with fake_server(audit_log=str(audit)) as app:
            app.adapter = VoiceAdapter(None, 22050)  # the fake engine speaks registered voices
            a, b = await open_session(app), await open_session(app)
            ready = await register(a, "r1", CLIP, name="anna", scope="persistent", consent=CONSENT)
            assert isinstance(ready, VoiceReady), ready
            spoken_a = [await speak_in(a, f"a{n}", f"{secret} {n}.", "anna") for n in range(3)]
            spoken_b = [await speak_in(b, "b0", f"{secret}, says b.", "anna")]
            await speak_in(a, "plain", "The built-in voice is not audited.", "en")
            await b.close()
            await _until(lambda: len(app.connections) == 1)
            after_b = [r["event"] for r in audit_records(audit)]
            deleted = await request(a, VoiceDelete(UtteranceId("d1"), "anna"), id="d1")
            after_delete = [r["event"] for r in audit_records(audit)]
            await a.close()
            return spoken_a, spoken_b, after_b, deleted, after_delete

    spoken_a, spoken_b, after_b, deleted, after_delete = run(main())
    assert deleted == VoiceDeleted(UtteranceId("d1"), "anna", True)
    assert after_b == ["voice.registered", "voice.used"]  # b's session ended
    assert after_delete == after_b + ["voice.used", "voice.deleted"]  # a's uses, then the delete
    records = audit_records(audit)
    assert [r["event"] for r in records] == after_delete  # a's end wrote nothing more
    _, used_b, used_a, gone = records
    for used, spoken in ((used_a, spoken_a), (used_b, spoken_b)):
        assert (used["voice"], used["scope"]) == ("anna", "persistent")
        assert used["utterances"] == len(spoken)
        assert used["audio_s"] == pytest.approx(sum(d.audio_ms for d in spoken) / 1000, abs=2e-3)
        assert used["audio_s"] > 0
    assert used_a["session"] == gone["session"] == records[0]["session"] != used_b["session"]
    assert (gone["voice"], gone["scope"]) == ("anna", "persistent")
    text = audit.read_text("utf-8")
    assert "Quokka" not in text and "marmalade" not in text and "built-in voice" not in text


def test_uses_not_written_yet_are_written_when_the_session_ends(tmp_path):
    audit = tmp_path / "audit.log"

    async def main():
        async with fake_server(audit_log=str(audit)) as app:
            app.adapter = VoiceAdapter(None, 22050)
            ws = await open_session(app)
            await register(ws, "r1", CLIP, name="anna", consent=CONSENT)
            spoken = [await speak_in(ws, f"u{n}", "Hello there.", "anna") for n in range(2)]
            await ws.close()
            return spoken

    spoken = run(main())
    registered, used = audit_records(audit)
    assert (used["event"], used["voice"], used["scope"], used["utterances"]) == (
        "voice.used",
        "anna",
        "session",
        2,
    )
    assert used["session"] == registered["session"]
    assert used["audio_s"] == pytest.approx(sum(d.audio_ms for d in spoken) / 1000, abs=2e-3)


def test_a_key_names_its_tenant_and_digest_in_the_audit_never_the_key(tmp_path):
    key = "sk-0123456789abcdef0123456789abcdef"
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{key} studio-b\n", encoding="utf-8")
    audit = tmp_path / "audit.log"

    async def main():
        async with fake_server(keys_file=str(keys), audit_log=str(audit)) as app:
            ws = await open_session(app, additional_headers={"Authorization": f"Bearer {key}"})
            refused = await register(ws, "r1", CLIP)
            await ws.close()
            return refused

    refused = run(main())
    assert isinstance(refused, Error) and refused.code == "consent_required"
    (record,) = audit_records(audit)
    assert record["tenant"] == "studio-b" and len(record["key"]) == 12
    assert key not in audit.read_text("utf-8")


def test_by_default_each_record_is_a_line_of_the_voxlive_audit_logger(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    async def main():
        async with fake_server() as app:
            ws = await open_session(app)
            ready = await register(ws, "r1", CLIP, consent=CONSENT)
            await ws.close()
            return ready

    ready = run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    (record,) = [json.loads(line) for line in lines]
    assert (record["event"], record["voice"], record["consent"]) == (
        "voice.registered",
        ready.voice,
        CONSENT_WIRE,
    )


async def _until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
