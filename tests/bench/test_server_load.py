"""``voxlive bench server`` and ``run_load`` against a real server."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from voxlive.bench.server import Sample, format_report, run_load, summarize
from voxlive.bench.server_metrics import metrics_url, parse_metrics, server_figures
from voxlive.bench.sweep import SINGLE_UTTERANCES, _ratios
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


@pytest.mark.tiny_voice
def test_the_report_carries_the_servers_own_cpu_and_batches(server_voice) -> None:
    async def main():
        async with run_server(server_voice) as app:
            return await run_load(url(app), 2, 3, texts=SHORT)

    report = run(main())
    server = report["server"]
    # The server counted the audio it sent: what the clients received, to the sample.
    assert server["audio_s"] == pytest.approx(report["audio_s"], abs=0.01)
    assert server["cpu_s"] > 0 and server["cpu_s_per_audio_s"] > 0
    assert 0 < server["engine_busy"] <= 1.0
    assert server["streams_per_step"] >= 1 and server["sentences_per_begin"] >= 1
    assert "CPU s per audio s" in format_report(report)


def test_a_server_without_metrics_leaves_the_server_figures_out() -> None:
    assert server_figures(None, {"process_cpu_seconds_total": 1.0}, 1.0) is None
    assert server_figures({"x": 1.0}, {"x": 2.0}, 1.0) is None


def test_metrics_text_is_parsed_with_labels_and_comments() -> None:
    text = '# HELP x\nqueued 3\nutterances_total{status="completed"} 4\nbroken line here x\n'
    assert parse_metrics(text) == {"queued": 3.0, 'utterances_total{status="completed"}': 4.0}
    assert metrics_url("wss://h.example:9/x?y") == "https://h.example:9/metrics"


@pytest.mark.tiny_voice
def test_a_sweep_offers_each_fraction_of_the_measured_capacity(server_voice, capsys) -> None:
    async def main():
        async with run_server(server_voice) as app:
            argv = ["bench", "server", "--url", url(app), "--sessions", "2", "--utterances", "2"]
            argv += ["--sweep", "--loads", "0.5,0.9", "--seed", "3", "--json"]
            return await asyncio.to_thread(cli_main, argv)

    assert run(main()) == 0
    report = json.loads(capsys.readouterr().out)
    capacity = report["capacity"]["utterances_per_s"]
    assert [p["load"] for p in report["curve"]] == [0.5, 0.9]
    for point in report["curve"]:
        assert point["rate"] == pytest.approx(capacity * point["load"], rel=0.01)
        assert (point["completed"], point["failed"], point["errors"]) == (4, 0, {})
        assert point["first_audio_ms"]["p50"] > 0 and point["server"]["cpu_s"] > 0
    assert report["single"]["completed"] == SINGLE_UTTERANCES
    assert "engine" not in report and "ratios" not in report


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine-baseline"], "goes with --sweep"),
        (["--sweep", "--rate", "2"], "leave out --rate"),
        (["--sweep", "--loads", "0.5,2"], "fractions of capacity"),
    ],
)
def test_sweep_flags_that_contradict_each_other_are_refused(extra, message, capsys) -> None:
    argv = ["bench", "server", "--url", "ws://127.0.0.1:1", *extra]
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_ratios_compare_capacity_with_the_engines_best_batch() -> None:
    engine = {
        "audio_s_per_s": {"1": 10.0, "8": 20.0},
        "cpu_s_per_audio_s": {"1": 0.2, "8": 0.1},
        "first_chunk_ms": {"p50": 70.0},
    }
    single = {"first_audio_ms": {"p50": 75.0}}
    capacity = {"audio_s_per_s": 18.0, "server": {"cpu_s_per_audio_s": 0.12}}
    assert _ratios(engine, single, capacity) == {
        "engine_best_batch": 8,
        "throughput": 0.9,
        "cpu_per_audio_s": 1.2,
        "first_audio_minus_first_chunk_ms": 5.0,
    }


def test_a_danmaku_load_reports_the_servers_cache_hits(capsys) -> None:
    from ..fakes import FakeEngine, FakeSpeaker

    engine = FakeEngine()
    texts = [f"Common line {n}." for n in range(3)] + ["Rare line one.", "Rare line two."]

    async def main():
        async with run_server(engine, FakeSpeaker()) as app:
            return await run_load(
                url(app), 2, 15, None, texts, seed=1, repeat_share=0.7, repeat_lines=3
            )

    report = run(main())
    cache = report["cache"]
    assert report["completed"] == 30
    assert cache["hits"] + cache["misses"] == 30
    assert cache["misses"] >= 30 - cache["hits"] and cache["hits"] >= 10
    # every miss began its sentence once: the hits never reached the engine
    assert len(engine.begun) == cache["misses"]
    assert "cache:" in format_report(report) and "hits" in format_report(report)


def test_a_plain_load_is_synthesized_though_its_lines_come_round_again() -> None:
    """Without ``--repeat-share`` every utterance reaches the engine: the bench measures
    synthesis, not replays of the few sentences it cycles through."""
    from ..fakes import FakeEngine, FakeSpeaker

    engine = FakeEngine()

    async def main():
        async with run_server(engine, FakeSpeaker()) as app:
            return await run_load(url(app), 2, 6, None, ["One line.", "Another line."])

    report = run(main())
    assert report["completed"] == 12
    assert report["cache"] == {"hits": 0, "misses": 0, "hit_ratio": None}
    assert len(engine.begun) == 12
