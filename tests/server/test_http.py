"""Plain HTTP with a body on the WebSocket's port: ``POST /v1/detect`` (``server/http.py``).

Real sockets, raw HTTP/1.1 (so that every byte the client sends is the test's), a fake
engine; the audio is espeak-ng's speech, marked or not by the real watermark.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf

from tests.speech import espeak
from voxlive.engine.watermark import embed, load_perthnet

from ..fakes import FakeEngine, FakeSpeaker
from .harness import open_session, run, run_server


@pytest.fixture(scope="module")
def wavs() -> dict[str, bytes]:
    audio, rate = espeak("Thanks for the follow! Tonight we try the hardest level.")

    def encode(x: np.ndarray, fmt: str) -> bytes:
        out = io.BytesIO()
        sf.write(out, x, rate, format=fmt)
        return out.getvalue()

    return {
        "clean": encode(audio, "WAV"),
        "marked": encode(embed(load_perthnet(), audio, rate), "FLAC"),
    }


async def exchange(
    port: int, raw: bytes, pause_after: int | None = None, half_close: bool = False
) -> tuple[int, dict, bytes]:
    """Send ``raw`` (stopping ``pause_after`` bytes in, if given; then shutting the
    sending side if ``half_close``); status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw if pause_after is None else raw[:pause_after])
    await writer.drain()
    if half_close:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def post(body: bytes, path: str = "/v1/detect", extra: str = "", method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def serve(check, **overrides):
    async def main():
        async with run_server(FakeEngine(), FakeSpeaker(), **overrides) as app:
            return await check(app)

    return run(main())


def test_detect_tells_marked_from_clean_audio(wavs):
    async def check(app):
        return [await exchange(app.port, post(wavs[k])) for k in ("marked", "clean")]

    (s1, h1, b1), (s2, _, b2) = serve(check)
    assert s1 == s2 == 200 and h1["content-type"] == "application/json"
    marked, clean = json.loads(b1), json.loads(b2)
    assert marked["marked"] is True and marked["score"] > 0.7
    assert clean["marked"] is False and clean["score"] < 0.1
    assert marked["model"] == "perthnet-implicit" and marked["threshold"] == 0.5
    assert marked["seconds"] > 2 and marked["sample_rate"] == 22050


def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(wavs):
    async def check(app):
        return await exchange(app.port, post(wavs["marked"]), half_close=True)

    status, _, body = serve(check)
    assert status == 200 and json.loads(body)["marked"] is True


def test_a_chunked_body_and_expect_100_continue_are_understood(wavs):
    body = wavs["marked"]
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 5000]), body[i : i + 5000])
        for i in range(0, len(body), 5000)
    )
    raw = (
        b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n" + chunked + b"0\r\n\r\n"
    )

    async def check(app):
        return await exchange(app.port, raw)

    status, _, body_out = serve(check)
    assert status == 100  # the interim answer first, then the result
    final = body_out.split(b"HTTP/1.1 ", 1)[1]
    assert final.startswith(b"200 OK") and b'"marked": true' in final


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (post(b"garbage bytes, not audio"), 422, "unreadable_audio"),
        (post(b""), 400, "empty_body"),
        (post(b"x" * 10, method="PUT"), 405, "method_not_allowed"),
        (post(b"x", path="/v1/nothing"), 404, "not_found"),
        (b"POST /v1/detect HTTP/1.1\r\nHost x\r\nContent-Length: 3\r\n\r\nabc", 400, "bad_request"),
    ],
)
def test_bad_requests_get_a_status_and_a_json_error(raw, status, code):
    async def check(app):
        return await exchange(app.port, raw)

    got, headers, body = serve(check)
    assert got == status
    assert json.loads(body)["error"]["code"] == code
    if status == 405:
        assert headers["allow"] == "POST"


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    raw = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"

    async def check(app):
        return await exchange(app.port, raw)

    status, _, body = serve(check, max_detect_bytes=1000)
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"


def test_a_body_that_stops_arriving_times_out(wavs):
    async def check(app):
        app.http_api.body_timeout_s = 0.5
        return await exchange(app.port, post(wavs["clean"]), pause_after=200)

    status, _, body = serve(check)
    assert status == 408 and json.loads(body)["error"]["code"] == "timeout"


def test_with_api_keys_detect_needs_one(tmp_path, wavs):
    keys = tmp_path / "keys"
    keys.write_text("k-123456789012345678901234 studio\n")

    async def check(app):
        without = await exchange(app.port, post(wavs["marked"]))
        wrong = await exchange(
            app.port, post(wavs["marked"], extra="Authorization: Bearer nope\r\n")
        )
        good = await exchange(
            app.port,
            post(wavs["marked"], extra="Authorization: Bearer k-123456789012345678901234\r\n"),
        )
        return without, wrong, good

    without, wrong, good = serve(check, keys_file=str(keys))
    assert without[0] == wrong[0] == 401 and "bearer" in without[1]["www-authenticate"].lower()
    assert good[0] == 200 and json.loads(good[2])["marked"] is True


def test_websockets_and_plain_gets_still_work_beside_it(wavs):
    async def check(app):
        health = await exchange(app.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        detected = await exchange(app.port, post(wavs["marked"]))
        ws = await open_session(app)
        await ws.close()
        return health, detected

    health, detected = serve(check)
    assert health[0] == 200 and health[2] == b"ok\n"
    assert detected[0] == 200
