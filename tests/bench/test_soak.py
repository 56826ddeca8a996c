"""``voxlive bench soak`` in brief: after rounds of good and bad clients, nothing is left
behind — no connection, no event-loop task (the minutes-long figures are the bench's)."""

from __future__ import annotations

import pytest

from voxlive.bench.hostile import Hostiles, run_soak

from ..server.harness import run, run_server

pytestmark = [pytest.mark.slow, pytest.mark.tiny_voice]


def test_rounds_of_good_and_bad_clients_leave_no_connection_or_task_behind(server_voice):
    hostiles = Hostiles(never_reads=1, slow_senders=2, idle=30, flooders=1, bombers=1)

    async def main():
        async with run_server(
            server_voice, slow_consumer_timeout_s=0.5, send_buffer_bytes=64 * 1024
        ) as app:
            return await run_soak(
                f"ws://127.0.0.1:{app.port}", minutes=0.5, sessions=2, rate=4.0, hostiles=hostiles
            )

    report = run(main())
    assert report["rounds"] >= 3
    assert report["good_failed"] == 0
    start, end = report["start"], report["end"]
    assert start["connections"] == end["connections"] == 0
    assert end["tasks"] <= start["tasks"]  # every round's tasks ended with it
    assert end["rss_bytes"] > 0
