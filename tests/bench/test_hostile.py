"""``voxlive bench hostile``'s clients against a real server: each meets its treatment,
and the good clients beside them hear all their speech (the figures are the bench's)."""

from __future__ import annotations

import asyncio

import pytest

from voxlive.bench.hostile import Hostiles, run_hostile

from ..server.harness import run, run_server

pytestmark = [pytest.mark.slow, pytest.mark.tiny_voice]


def test_bad_clients_get_their_codes_and_good_ones_are_served(server_voice):
    hostiles = Hostiles(never_reads=1, slow_senders=2, idle=20, flooders=1, bombers=1)

    async def main():
        async with run_server(
            server_voice,
            slow_consumer_timeout_s=0.5,
            send_buffer_bytes=64 * 1024,
            messages_per_s=200.0,  # the deployed defaults for floods and rates
            utterances_per_s_per_ip=5.0,
        ) as app:
            report = await run_hostile(
                f"ws://127.0.0.1:{app.port}",
                sessions=2,
                rate=4.0,
                utterances=8,
                rounds=1,
                hostiles=hostiles,
            )
            for _ in range(100):  # closing handshakes finish
                if not app.connections:
                    break
                await asyncio.sleep(0.05)
            return report, len(app.connections)

    report, left = run(main())
    outcomes = report["outcomes"]
    assert report["good_failed"] == 0
    assert report["runs"]["beside_hostiles"][0]["completed"] == 8
    assert outcomes["never_reads"] == {"lasted": 1}  # it never reads, so never hears 4008
    assert report["server"]["voxlive_slow_consumer_closes_total"] == 1  # the server closed it
    assert outcomes["bombers"].get("error:too_large", 0) >= 1
    assert any(k.startswith("error:") for k in outcomes["flooders"])  # refused, not served
    assert sum(outcomes["idle"].values()) == 20
    assert not any(k.startswith("refused") for k in outcomes["idle"])  # all were let in
    assert left == 0  # every bad connection is gone once its client left
