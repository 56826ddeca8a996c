"""``voxlive client -f lines.txt`` against a server's rate limit: every line is spoken."""

from __future__ import annotations

import asyncio

import pytest

from voxlive.cli.parser import main

from ..server.harness import run, run_server, url

pytestmark = pytest.mark.tiny_voice


def test_a_file_of_lines_over_the_rate_limit_waits_and_speaks_every_line(
    server_voice, tmp_path, capsys
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"Line number {n}.\n" for n in range(1, 16)))
    outdir = tmp_path / "out"

    async def speak() -> int:
        # 15 lines at once against 5 a second with a burst of 10: five are refused first.
        async with run_server(
            server_voice, utterances_per_s_per_ip=5.0, utterance_burst_per_ip=10
        ) as app:
            argv = ["client", "--url", url(app), "-f", str(lines), "-o", str(outdir)]
            return await asyncio.to_thread(main, argv)

    assert run(speak()) == 0
    assert sorted(p.name for p in outdir.iterdir()) == [f"{n:04d}.wav" for n in range(1, 16)]
    assert "rate_limited" not in capsys.readouterr().err
