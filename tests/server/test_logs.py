"""The server's log: one structured line per finished utterance, and the JSON format."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from voxlive.cli.main import _log_format
from voxlive.cli.parser import build_parser
from voxlive.protocol.codec import encode_client
from voxlive.protocol.messages import Append, End, Speak, SpeakOptions
from voxlive.server.config import Config
from voxlive.server.logs import UTTERANCE_LOGGER, JsonFormatter, UtteranceLog, formatter

from .harness import collect, open_session, run, run_server

TEXT = "Thanks for the follow. See you tomorrow!"
PIECES = ["Streamed words ", "arrive in pieces."]


@pytest.fixture
def json_log():
    """What the utterance logger writes, in the JSON format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    log = logging.getLogger(UTTERANCE_LOGGER)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield stream
    log.removeHandler(handler)
    log.setLevel(level)


def speak_three(server_voice, include_text: bool = False):
    """A whole text, a streamed one and one in an unknown voice, through a real server."""

    async def main():
        async with run_server(server_voice) as app:
            app.utterance_log.include_text = include_text
            ws = await open_session(app)
            await ws.send(
                encode_client(Speak("whole", TEXT, SpeakOptions(emotion="happy", seed=1)))
            )
            await ws.send(encode_client(Append("streamed", PIECES[0], SpeakOptions(seed=2))))
            await ws.send(encode_client(Append("streamed", PIECES[1])))
            await ws.send(encode_client(End("streamed")))
            await ws.send(encode_client(Speak("lost", "Hello.", SpeakOptions(voice="nobody"))))
            _, _, done = await collect(ws, {"whole", "streamed", "lost"})
            return done

    return run(main())


def records(stream: io.StringIO) -> dict[str, dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return {line["utterance"]: line for line in lines}


@pytest.mark.tiny_voice
def test_each_finished_utterance_is_one_json_line_without_its_text(server_voice, json_log):
    done = speak_three(server_voice)
    log = json_log.getvalue()
    assert len(log.splitlines()) == 3
    lines = records(json_log)
    whole = lines["whole"]
    assert (whole["level"], whole["logger"]) == ("INFO", "voxlive.server.utterances")
    assert datetime.fromisoformat(whole["timestamp"]).utcoffset() == UTC.utcoffset(None)
    assert whole["message"].startswith("utterance whole completed: session s1")
    assert whole["status"] == "completed" and whole["error_code"] is None
    assert whole["session"] == "s1"
    assert (whole["voice"], whole["emotion"]) == (None, "happy")
    assert whole["sentences"] == 2
    assert whole["text_chars"] == len(TEXT)
    assert whole["audio_ms"] == pytest.approx(done["whole"].audio_ms, abs=0.05)
    assert whole["first_audio_ms"] == pytest.approx(done["whole"].first_audio_ms, abs=0.05)
    assert whole["rtf"] == pytest.approx(done["whole"].rtf, abs=1e-4)
    assert whole["queue_ms"] <= whole["first_audio_ms"] <= whole["total_ms"]
    streamed = lines["streamed"]
    assert streamed["status"] == "completed"
    assert streamed["text_chars"] == len("".join(PIECES))
    lost = lines["lost"]
    assert (lost["status"], lost["error_code"], lost["voice"]) == (
        "failed",
        "unknown_voice",
        "nobody",
    )
    assert lost["first_audio_ms"] is None and lost["queue_ms"] is None
    assert lost["audio_ms"] == 0 and lost["sentences"] == 0
    # Never the text itself, in any field or message.
    assert not [line for line in lines.values() if "text" in line]
    for words in (TEXT, "See you", "Streamed words", "in pieces", "Hello."):
        assert words not in log


@pytest.mark.tiny_voice
def test_the_text_is_logged_only_when_the_server_is_told_to(server_voice, json_log):
    speak_three(server_voice, include_text=True)
    lines = records(json_log)
    assert lines["whole"]["text"] == TEXT
    assert TEXT in lines["whole"]["message"]
    assert lines["streamed"]["text"] == "".join(PIECES)
    assert lines["lost"]["text"] == "Hello."


def test_logging_text_follows_the_log_text_setting():
    assert UtteranceLog.from_config(SimpleNamespace(log_text=True)).include_text is True
    assert UtteranceLog.from_config(SimpleNamespace(log_text=False)).include_text is False
    assert UtteranceLog.from_config(Config()).include_text is False  # the default: never


def test_a_json_line_carries_the_records_fields_and_its_exception():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("voxlive.tests.json")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        session = logging.LoggerAdapter(log, {"session": "s7"})
        session.warning("closing %s:\nslow", "s7")
        log.info("queued", extra={"queued": b"\x00"})
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.error("session failed", exc_info=True)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "closing s7:\nslow"  # still one line: JSON escapes it
    assert (first["session"], first["level"]) == ("s7", "WARNING")
    assert second["queued"] == "b'\\x00'"  # what JSON cannot hold, as its str()
    assert third["level"] == "ERROR" and "ZeroDivisionError" in third["exception"]
    assert "session" not in third and "exception" not in first


def test_the_text_format_is_the_one_the_cli_always_wrote():
    record = logging.LogRecord("voxlive.x", logging.INFO, "", 0, "hi %s", ("there",), None)
    line = formatter("text").format(record)
    assert line.endswith(" INFO voxlive.x: hi there")
    with pytest.raises(ValueError, match="text, json"):
        formatter("yaml")


def test_only_serve_reads_a_log_format_and_a_bad_setting_leaves_text():
    parser = build_parser()
    assert _log_format(parser.parse_args(["emotions"])) == "text"
    assert _log_format(parser.parse_args(["serve", "--port", "70000"])) == "text"
    assert _log_format(parser.parse_args(["serve"])) == "text"


def test_serve_takes_its_log_format_from_the_flag():
    parser = build_parser()
    assert _log_format(parser.parse_args(["serve", "--log-format", "json"])) == "json"
