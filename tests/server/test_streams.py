"""The Redis Streams layer for scale-out, against a real redis-server on a free port."""

from __future__ import annotations

import asyncio
import time

import pytest

from voxlive.server.streams import (
    AUDIO,
    MARKS,
    CancelFeed,
    Dedup,
    JobId,
    Overloaded,
    Result,
    ResultReader,
    ResultWriter,
    StreamsUnavailable,
    WorkQueue,
    connect,
    pack_marks,
    results_key,
    unpack_marks,
    work_key,
)

from .redis_server import redis_server


@pytest.fixture
def server(tmp_path):
    with redis_server(tmp_path) as s:
        yield s


def run(url, body):
    """Run ``body(redis)`` on a fresh client, closed afterwards."""

    async def main():
        redis = connect(url, retries=1, connect_timeout_s=0.5)
        try:
            return await body(redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def job(name: str) -> dict[str, bytes | str]:
    return {"name": name, "text": "Hello there."}


def names(items) -> list[str]:
    return [i.fields["name"].decode() for i in items]


def chunk(utterance, sentence, index, attempt=1, last=False) -> Result:
    return Result(utterance, sentence, index, attempt, last, {})


# Work streams


def test_pull_takes_realtime_before_normal_before_bulk(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        await queue.submit(job("b1"), "bulk")
        await queue.submit(job("n1"), "normal")
        await queue.submit(job("r1"), "realtime")
        await queue.submit(job("n2"), "normal")
        got = await queue.pull("w1", max_items=10)
        return names(got.items), [i.attempt for i in got.items], got.expired

    assert run(server.url, body) == (["r1", "n1", "n2", "b1"], [1, 1, 1, 1], [])


def test_pull_never_returns_more_than_max_items(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        for i in range(3):
            await queue.submit(job(f"r{i}"), "realtime")
            await queue.submit(job(f"n{i}"), "normal")
        first = await queue.pull("w1", max_items=2)
        second = await queue.pull("w1", max_items=2)
        third = await queue.pull("w1", max_items=5)
        depth = await queue.depth()
        return names(first.items), names(second.items), names(third.items), depth

    first, second, third, depth = run(server.url, body)
    assert (first, second, third) == (["r0", "r1"], ["r2", "n0"], ["n1", "n2"])
    assert (depth["realtime"].pending, depth["normal"].pending, depth["bulk"].length) == (3, 3, 0)
    assert depth["normal"].waiting == 0


def test_pull_skips_acks_and_reports_expired_entries(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        now = time.time()
        await queue.submit(job("late1"), "realtime", deadline=now - 1)
        await queue.submit(job("ok1"), "realtime", deadline=now + 60)
        await queue.submit(job("late2"), "realtime", deadline=now - 1)
        await queue.submit(job("ok2"), "normal")
        got = await queue.pull("w1", max_items=2)
        return got, await queue.depth()

    got, depth = run(server.url, body)
    assert names(got.items) == ["ok1", "ok2"]  # expired entries took no slot
    assert names(got.expired) == ["late1", "late2"]
    assert got.items[0].deadline is not None and got.items[1].deadline is None
    assert (depth["realtime"].length, depth["realtime"].pending) == (1, 1)


def test_ack_removes_entries_from_pending_and_from_the_stream(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        for i in range(3):
            await queue.submit(job(f"n{i}"))
        got = await queue.pull("w1", max_items=3)
        acked = await queue.ack([got.items[0].id, got.items[2].id])
        again = await queue.ack([got.items[0].id])
        return (
            acked,
            again,
            await queue.depth(),
            await queue.refresh("w1", [i.id for i in got.items]),
        )

    acked, again, depth, still_mine = run(server.url, body)
    assert (acked, again) == (2, 0)
    assert (depth["normal"].length, depth["normal"].pending) == (1, 1)
    assert len(still_mine) == 1


def test_a_second_worker_reclaims_a_dead_workers_entries_but_not_refreshed_ones(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        for name in ("a", "b", "c"):
            await queue.submit(job(name))
        mine = (await queue.pull("w1", max_items=3)).items
        await asyncio.sleep(0.45)
        refreshed = await queue.refresh("w1", [mine[1].id])  # still running "b"
        taken = await queue.reclaim("w2", min_idle_ms=300, max_items=1)
        taken_more = await queue.reclaim("w2", min_idle_ms=300, max_items=5)
        after = await queue.refresh("w1", [i.id for i in mine])  # w1 wakes up
        return mine, refreshed, taken, taken_more, after

    mine, refreshed, taken, taken_more, after = run(server.url, body)
    assert refreshed == [mine[1].id]
    assert names(taken.items) == ["a"] and taken.items[0].attempt == 2
    assert names(taken_more.items) == ["c"]
    assert after == [mine[1].id]  # "a" and "c" are w2's now: w1 must stop them


def test_an_entry_delivered_too_often_goes_to_the_dead_letter_stream(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis, max_deliveries=2)
        await queue.submit(job("poison"))
        first = await queue.pull("w1", max_items=1)
        second = await queue.reclaim("w2", min_idle_ms=0, max_items=1)
        third = await queue.reclaim("w3", min_idle_ms=0, max_items=1)
        fourth = await queue.reclaim("w4", min_idle_ms=0, max_items=1)
        letters = await redis.xrange("voxlive:work:dead")
        return first, second, third, fourth, letters, await queue.depth()

    first, second, third, fourth, letters, depth = run(server.url, body)
    assert [i.attempt for i in first.items + second.items] == [1, 2]
    assert third.items == [] and [d.attempt for d in third.dead] == [3]
    assert fourth == type(fourth)()  # gone from the work stream, not looping
    assert len(letters) == 1
    fields = letters[0][1]
    assert (fields[b"name"], fields[b"_deliveries"]) == (b"poison", b"3")
    assert (depth["normal"].length, depth["normal"].pending) == (0, 0)


def test_reclaim_reports_entries_that_expired_while_their_worker_was_dead(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        await queue.submit(job("soon"), "realtime", deadline=time.time() + 0.5)
        assert len((await queue.pull("w1", max_items=1)).items) == 1
        await asyncio.sleep(0.6)
        return await queue.reclaim("w2", min_idle_ms=100, max_items=1), await queue.depth()

    got, depth = run(server.url, body)
    assert got.items == [] and names(got.expired) == ["soon"]
    assert depth["realtime"].pending == 0


def test_submit_over_the_cap_raises_overloaded(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis, cap=2, retry_after_s=0.5)
        await queue.submit(job("1"), "bulk")
        await queue.submit(job("2"), "bulk")
        await queue.submit(job("r"), "realtime")  # each class has its own cap
        with pytest.raises(Overloaded) as caught:
            await queue.submit(job("3"), "bulk")
        await queue.ack([i.id for i in (await queue.pull("w", max_items=3)).items])
        await queue.submit(job("4"), "bulk")  # room again once acked
        return caught.value

    error = run(server.url, body)
    assert (error.priority, error.length, error.cap, error.retry_after_s) == ("bulk", 2, 2, 0.5)


def test_gateways_submitting_together_never_overshoot_the_cap(server) -> None:
    async def body(redis):
        # Four gateways (clients of their own), twenty sentences at once, room for five.
        clients = [connect(server.url) for _ in range(4)]
        queues = [WorkQueue(c, cap=5) for c in clients]
        try:
            tries = [queues[i % 4].submit(job(str(i))) for i in range(20)]
            outcomes = await asyncio.gather(*tries, return_exceptions=True)
            return outcomes, await redis.xlen(work_key("normal"))
        finally:
            for c in clients:
                await c.aclose()

    outcomes, length = run(server.url, body)
    refused = [o for o in outcomes if isinstance(o, Overloaded)]
    assert len(refused) == 15 and length == 5
    assert all(isinstance(o, str) for o in outcomes if not isinstance(o, Overloaded))


def test_pull_waits_for_work_and_wakes_when_it_arrives(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        t0 = time.monotonic()
        empty = await queue.pull("w1", max_items=4, block_ms=200)
        waited = time.monotonic() - t0

        async def later():
            await asyncio.sleep(0.1)
            await queue.submit(job("x"), "bulk")

        t0 = time.monotonic()
        task = asyncio.create_task(later())
        got = await queue.pull("w1", max_items=4, block_ms=5000)
        woke = time.monotonic() - t0
        await task
        return empty, waited, got, woke

    empty, waited, got, woke = run(server.url, body)
    assert empty.items == [] and 0.15 < waited < 1.5
    assert names(got.items) == ["x"] and woke < 1.5


def test_bad_arguments_are_refused(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        with pytest.raises(ValueError, match="reserved"):
            await queue.submit({"_deadline": "0"})
        with pytest.raises(ValueError, match="priority"):
            await queue.submit(job("x"), "urgent")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_items"):
            await queue.pull("w", max_items=0)
        with pytest.raises(ValueError, match="job id"):
            await queue.ack([JobId("nope")])
        with pytest.raises(ValueError, match="reserved"):
            await ResultWriter(redis).send("g", "u", 0, 0, {"_u": b""})

    run(server.url, body)
    with pytest.raises(ValueError, match="RESP2"):
        WorkQueue(connect_decoding(server.url))


def connect_decoding(url):
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, decode_responses=True)


# Result streams and deduplication


def test_dedup_keeps_one_attempt_per_sentence_once_a_retry_is_seen() -> None:
    dedup = Dedup()
    arrivals = [
        chunk("u", 0, 0),
        chunk("u", 0, 1),
        chunk("u", 1, 0),  # another sentence: its own state
        chunk("u", 0, 0, attempt=2),  # retry re-sends what was delivered
        chunk("u", 0, 2),  # late chunk of the dead attempt: superseded
        chunk("u", 0, 1, attempt=2),
        chunk("u", 0, 2, attempt=2),
        chunk("u", 0, 3, attempt=2, last=True),
        chunk("u", 0, 3),  # straggler of the dead attempt
        chunk("u", 0, 4, attempt=3),  # nothing after last
    ]
    passed = [(r.sentence, r.chunk, r.attempt) for r in arrivals if dedup.admit(r)]
    assert passed == [(0, 0, 1), (0, 1, 1), (1, 0, 1), (0, 2, 2), (0, 3, 2)]
    assert dedup.dropped == 5


def test_dedup_forgets_finished_utterances_and_stays_bounded() -> None:
    dedup = Dedup(max_utterances=2, forgotten=2)
    assert dedup.admit(chunk("a", 0, 0))
    dedup.forget("a")
    assert not dedup.admit(chunk("a", 0, 1))  # straggler of a finished utterance
    for u in ("b", "c", "d"):
        assert dedup.admit(chunk(u, 0, 0))
    assert list(dedup._live) == ["c", "d"]
    assert list(dedup._gone) == ["a", "b"]
    dedup.forget("e")
    assert list(dedup._gone) == ["b", "e"]


def test_reader_yields_each_chunk_once_in_order_across_an_interleaved_retry(server) -> None:
    async def body(redis):
        writer, reader = ResultWriter(redis), ResultReader(redis, "gw1")
        sends = [(0, 1), (1, 1), (2, 1), (0, 2), (3, 1), (1, 2), (2, 2), (3, 2), (4, 1), (4, 2)]
        for index, attempt in sends:
            pcm = bytes([index, attempt]) * 4
            fields = {AUDIO: pcm, MARKS: pack_marks([{"word": f"w{index}"}])}
            await writer.send("gw1", "utt", 0, index, fields, last=index == 4, attempt=attempt)
        await writer.send("gw2", "other", 0, 0, {AUDIO: b""})  # another gateway's
        got = []
        async for result in reader:
            got.append(result)
            if result.last:
                break
        return got

    got = run(server.url, body)
    assert [(r.chunk, r.attempt) for r in got] == [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)]
    assert [r.fields[AUDIO] for r in got] == [bytes([r.chunk, r.attempt]) * 4 for r in got]
    assert unpack_marks(got[3].fields[MARKS]) == [{"word": "w3"}]
    assert [r.utterance for r in got] == ["utt"] * 5


def test_reader_trims_what_it_read(server) -> None:
    async def body(redis):
        writer, reader = ResultWriter(redis), ResultReader(redis, "gw", count=3)
        for i in range(5):
            await writer.send("gw", "u", 0, i, {AUDIO: b"x"})
        first = await reader.read()
        kept = await redis.xlen(results_key("gw"))  # trimmed at the next read, not on the way
        second = await reader.read()
        left = await redis.xlen(results_key("gw"))
        empty = await reader.read(block_ms=50)
        ttl = await redis.ttl(results_key("gw"))
        return first, kept, second, left, empty, await redis.xlen(results_key("gw")), ttl

    first, kept, second, left, empty, length, ttl = run(server.url, body)
    assert [r.chunk for r in first] == [0, 1, 2] and kept == 5
    assert [r.chunk for r in second] == [3, 4] and left == 2 and empty == []
    assert length == 0 and 0 < ttl <= 3600


def test_reader_drops_malformed_results_and_stragglers_of_forgotten_utterances(server) -> None:
    async def body(redis):
        writer, reader = ResultWriter(redis), ResultReader(redis, "gw")
        await writer.send("gw", "u", 0, 0, {AUDIO: b"a"})
        await redis.xadd(results_key("gw"), {"_u": "u", "_s": "zero"})
        first = await reader.read()
        reader.forget("u")
        await writer.send("gw", "u", 0, 1, {AUDIO: b"late"})
        return first, await reader.read()

    first, second = run(server.url, body)
    assert [r.chunk for r in first] == [0] and second == []


# Cancel


def test_a_cancel_is_seen_by_workers_including_one_started_later(server) -> None:
    async def body(redis):
        gateway, worker = CancelFeed(redis), CancelFeed(redis)
        assert await worker.poll() == []
        await gateway.cancel("u1")
        await gateway.cancel("u2")
        seen = await worker.poll()
        again = await worker.poll()
        late = CancelFeed(redis)
        late_seen = await late.poll()
        return seen, again, worker.is_cancelled("u1"), worker.is_cancelled("u3"), late_seen

    assert run(server.url, body) == (["u1", "u2"], [], True, False, ["u1", "u2"])


def test_cancels_older_than_the_horizon_are_forgotten(server) -> None:
    async def body(redis):
        now = [time.time()]
        worker = CancelFeed(redis, horizon_s=0.2, clock=lambda: now[0])
        await CancelFeed(redis).cancel("old")
        await worker.poll()
        await asyncio.sleep(0.3)
        now[0] = time.time()
        await CancelFeed(redis, horizon_s=0.2).cancel("new")
        await worker.poll()
        return worker.is_cancelled("old"), worker.is_cancelled("new")

    assert run(server.url, body) == (False, True)


# Redis going away and coming back


def test_redis_down_raises_unavailable_and_everything_recovers(server, tmp_path) -> None:
    async def body(redis):
        queue, writer = WorkQueue(redis), ResultWriter(redis)
        reader, cancels = ResultReader(redis, "gw"), CancelFeed(redis)
        await queue.submit(job("before"))
        held = (await queue.pull("w1", max_items=1)).items

        server.proc.kill()  # SIGKILL: no shutdown, connections just break
        server.proc.wait()
        server.proc = None
        calls = [
            lambda: queue.submit(job("x")),
            lambda: queue.pull("w1", max_items=1, block_ms=100),
            lambda: queue.ack([i.id for i in held]),
            lambda: queue.refresh("w1", [i.id for i in held]),
            lambda: queue.reclaim("w2", min_idle_ms=0, max_items=1),
            lambda: queue.depth(),
            lambda: queue.dead_letters(),
            lambda: writer.send("gw", "u", 0, 0, {AUDIO: b""}),
            lambda: reader.read(),
            lambda: cancels.cancel("u"),
            lambda: cancels.poll(),
        ]
        for call in calls:
            with pytest.raises(StreamsUnavailable):
                await call()

        server.workdir = tmp_path / "empty"  # a Redis that lost its data (and the group)
        server.workdir.mkdir()
        server.start()
        await queue.submit(job("after"), "realtime")
        got = await queue.pull("w1", max_items=2)
        await writer.send("gw", "u", 0, 0, {AUDIO: b"pcm"})
        results = await reader.read()
        await cancels.cancel("u")
        return got, results, await cancels.poll(), await queue.ack([i.id for i in got.items])

    got, results, cancelled, acked = run(server.url, body)
    assert names(got.items) == ["after"]
    assert [r.fields[AUDIO] for r in results] == [b"pcm"]
    assert cancelled == ["u"] and acked == 1


def test_a_blocked_pull_raises_unavailable_when_redis_dies(server) -> None:
    async def body(redis):
        queue = WorkQueue(redis)
        await queue.depth()  # groups exist
        pull = asyncio.create_task(queue.pull("w1", max_items=1, block_ms=5000))
        await asyncio.sleep(0.2)
        server.proc.kill()
        server.proc.wait()
        server.proc = None
        t0 = time.monotonic()
        with pytest.raises(StreamsUnavailable):
            await pull
        return time.monotonic() - t0

    assert run(server.url, body) < 3.0


def test_work_keys_name_one_stream_per_priority() -> None:
    assert [work_key(p) for p in ("realtime", "normal", "bulk")] == [
        "voxlive:work:realtime",
        "voxlive:work:normal",
        "voxlive:work:bulk",
    ]
