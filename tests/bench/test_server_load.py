"""``voxlive bench server`` and ``run_load`` against a real server."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from voxlive.bench.server import Sample, format_report, run_load, summarize
from voxlive.cli.parser import main as cli_main

from ..server.harness import run, run_server, url

SHORT = ["Hello chat!", "Thanks for the follow.", "Good game, everyone.", "See you soon."]
KEYS = {"completed", "errors", "utterances_per_s", "first_audio_ms", "total_ms", "rtf"}


@pytest.mark.tiny_voice
def test_closed_loop_json_report_has_the_documented_keys(server_voice, tmp_path, capsys) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SHORT) + "\n\n")

    async def main():
        async with run_server(server_voice) as app:
            argv = ["bench", "server", "--url", url(app), "--sessions", "3", "--utterances", "2"]
            return await asyncio.to_thread(cli_main, [*argv, "--json", "--texts", str(texts)])

    assert run(main()) == 0
    report = json.loads(capsys.readouterr().out)
    assert KEYS <= set(report)
    assert (report["completed"], report["errors"], report["mode"]) == (6, {}, "closed")
    assert set(report["first_audio_ms"]) >= {"p50", "p95", "p99"}
    assert set(report["total_ms"]) >= {"p50", "p95"}
    fa, total = report["first_audio_ms"], report["total_ms"]
    assert 0 < fa["p50"] <= fa["p95"] <= fa["p99"] and 0 < total["p50"] <= total["p95"]
    assert fa["p50"] <= total["p50"]
    assert report["utterances_per_s"] > 0 and report["rtf"] > 0 and report["audio_s_per_s"] > 0


@pytest.mark.tiny_voice
def test_open_loop_sends_every_utterance(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app:
            return await run_load(url(app), 2, 2, rate=5.0, texts=SHORT, seed=1)

    report = run(main())
    assert (report["mode"], report["completed"], report["failed"]) == ("open", 4, 0)
    assert report["errors"] == {} and report["total_ms"]["p95"] >= report["total_ms"]["p50"]
    assert "open loop at 5/s" in format_report(report)


@pytest.mark.tiny_voice
def test_failed_utterances_are_counted_by_code_and_exit_1(server_voice, tmp_path, capsys) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("Hello chat!\n太棒了主播加油\n")

    async def main():
        async with run_server(server_voice) as app:
            argv = ["bench", "server", "--url", url(app), "--sessions", "1", "--utterances", "2"]
            return await asyncio.to_thread(cli_main, [*argv, "--texts", str(texts)])

    assert run(main()) == 1
    out = capsys.readouterr().out
    assert "1/2 completed" in out and "errors: unsupported_language 1" in out


def test_no_server_is_a_usage_error(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["bench", "server", "--url", f"ws://127.0.0.1:{port}", "--sessions", "2"]
    assert cli_main(argv) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_bad_counts_are_rejected_before_connecting() -> None:
    with pytest.raises(ValueError, match="positive"):
        run(run_load("ws://127.0.0.1:1", 0, 1))


def test_summary_of_an_empty_run_has_no_percentiles() -> None:
    report = summarize([Sample(codes=["timeout"])], 1.0)
    assert report["completed"] == 0 and report["errors"] == {"timeout": 1}
    assert report["first_audio_ms"]["p50"] is None and report["rtf"] is None


@pytest.mark.tiny_voice
def test_emotional_load_speaks_every_utterance_in_its_emotion(server_voice, capsys) -> None:
    async def main():
        async with run_server(server_voice) as app:
            argv = ["bench", "server", "--url", url(app), "--sessions", "2", "--utterances", "2"]
            argv += ["--emotions", "happy,难过,bored", "--json"]
            return await asyncio.to_thread(cli_main, argv)

    status = run(main())
    report = json.loads(capsys.readouterr().out)
    assert report["emotions"] == ["happy", "难过", "bored"]
    # "bored" is no emotion: those utterances fail with unsupported; the others complete.
    assert status == 1 and report["completed"] == 3 and report["errors"] == {"unsupported": 1}
