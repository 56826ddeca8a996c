"""The OpenAI-compatible HTTP speech API, driven by the official ``openai`` package and by
schemathesis from ``/openapi.json`` (fake engine; the real voice and the Whisper judge
are in ``test_speech_http_voice.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.strategies as st
import numpy as np
import openai
import pytest
import soundfile as sf
from hypothesis_jsonschema import from_schema

from voxlive.server.speech import FORMATS, instructions_emotion

from ..fakes import FakeEngine, FakeSpeaker
from .harness import run_server


@contextlib.contextmanager
def serving(engine: Any = None, **overrides: Any) -> Iterator[Any]:
    """A server on a thread of its own (so that blocking clients can call it)."""
    started = threading.Event()
    stop: list[asyncio.Event] = []
    box: list[Any] = []

    async def main() -> None:
        async with run_server(
            FakeEngine() if engine is None else engine, FakeSpeaker(), **overrides
        ) as app:
            box.append(app)
            stop.append(asyncio.Event())
            started.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield box[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()


def client_of(app: Any, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key=key, max_retries=0)


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768, 24000
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


TEXT = "Thanks for the follow. Welcome in, everyone!"


def test_every_format_is_valid_audio_of_the_whole_utterance():
    engine = FakeEngine()
    with serving(engine) as app:
        client = client_of(app)
        got = {
            fmt: client.audio.speech.create(
                model="tts-1", voice="alloy", input=TEXT, response_format=fmt
            ).content
            for fmt in FORMATS
        }
    expected_s = len(TEXT.replace(" ", " ")) * engine.samples_per_char / engine.sample_rate
    for fmt, data in got.items():
        audio, rate = decode(data, fmt)
        assert rate == 24000, fmt
        # Codecs pad or trim a frame or two; the length is the utterance's.
        assert abs(len(audio) / rate - expected_s) < 0.1, (fmt, len(audio) / rate, expected_s)
        assert np.abs(audio).max() > 0.05, fmt


def test_the_body_streams_while_the_utterance_is_made():
    engine = FakeEngine(chunk_samples=1024, step_delay_s=0.05)
    text = "one long sentence without a single stop " * 3
    with serving(engine) as app:
        client = client_of(app)
        t0 = time.monotonic()
        arrivals = []
        with client.audio.speech.with_streaming_response.create(
            model="voxlive", voice="en", input=text, response_format="pcm"
        ) as response:
            for chunk in response.iter_bytes(4096):
                arrivals.append((time.monotonic() - t0, len(chunk)))
    total = arrivals[-1][0]
    assert total > 1.0  # the engine took its time
    assert arrivals[0][0] < 0.25 * total  # and the first bytes did not wait for it


def test_extra_fields_and_instructions_reach_the_utterance():
    engine = FakeEngine()
    with serving(engine) as app:
        client = client_of(app)
        client.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input="Hello there.",
            response_format="wav",
            instructions="Speak very cheerfully, like a game show host.",
            extra_body={"seed": 7, "volume": -3},
        )
        client.audio.speech.create(
            model="tts-1",
            voice="en",
            input="Hello there.",
            extra_body={"emotion": "sad", "intensity": 0.5},
        )
    first, second = (p.controls for p in engine.performances)
    assert (first.emotion, first.intensity, first.seed, first.volume_db) == ("happy", 1.0, 7, -3)
    assert (second.emotion, second.intensity) == ("sad", 0.5)


@pytest.mark.parametrize(
    ("instructions", "emotion", "intensity"),
    [
        ("Speak cheerfully.", "happy", None),
        ("a bit sad, please", "sad", 0.4),
        ("Whisper it, slightly nervously", "fearful", 0.4),
        ("用开心的语气说", "happy", None),
        ("Read it like a news anchor.", None, None),
    ],
)
def test_instructions_map_onto_the_emotions(instructions, emotion, intensity):
    assert instructions_emotion(instructions) == (emotion, intensity)


def test_errors_are_the_sdks_exceptions(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k-123456789012345678901234 studio\n")
    with serving(keys_file=str(keys), max_text_chars=50) as app:
        good = client_of(app, "k-123456789012345678901234")
        with pytest.raises(openai.AuthenticationError):
            client_of(app, "nope").audio.speech.create(model="tts-1", voice="alloy", input="Hi")
        with pytest.raises(openai.BadRequestError) as bad:
            good.audio.speech.create(model="tts-1", voice="nobody", input="Hi")
        assert bad.value.code == "unknown_voice"
        with pytest.raises(openai.BadRequestError) as bad:
            good.audio.speech.create(model="tts-9", voice="alloy", input="Hi")
        assert bad.value.param == "model"
        with pytest.raises(openai.BadRequestError) as bad:
            good.audio.speech.create(model="tts-1", voice="alloy", input="\U0001f389")
        assert bad.value.code == "empty_text" and "emoji" in bad.value.message
        with pytest.raises(openai.APIStatusError) as long:
            good.audio.speech.create(model="tts-1", voice="alloy", input="x" * 51)
        assert long.value.status_code == 413
        assert good.audio.speech.create(model="tts-1", voice="alloy", input="Hi").content


def test_rate_limits_answer_429_with_retry_after():
    with serving(utterances_per_s_per_ip=0.5, utterance_burst_per_ip=1) as app:
        client = client_of(app)
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi")
        with pytest.raises(openai.RateLimitError) as limited:
            client.audio.speech.create(model="tts-1", voice="alloy", input="Hi again")
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_models_and_voices_are_listed():
    with serving() as app:
        client = client_of(app)
        models = [m.id for m in client.models.list()]
        voices = get_json(f"http://127.0.0.1:{app.port}/v1/audio/voices")
    assert "tts-1" in models and "voxlive" in models
    assert {"en", "alloy"} <= {v["id"] for v in voices["data"]}


def test_no_request_the_openapi_document_describes_makes_a_server_error():
    """Bodies generated from ``/openapi.json``'s request schema, valid and not: never a
    server error, and every refusal in the error shape the document gives."""
    with serving() as app:
        base = f"http://127.0.0.1:{app.port}"
        document = get_json(f"{base}/openapi.json")
        operation = document["paths"]["/v1/audio/speech"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        failures: list[str] = []

        def post(body: bytes) -> tuple[int, bytes]:
            request = urllib.request.Request(f"{base}/v1/audio/speech", data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as exc:
                with exc:
                    return exc.code, exc.read()

        def check(body: bytes) -> None:
            status, data = post(body)
            if status >= 500:
                failures.append(f"{status} {data[:200]!r} for {body[:200]!r}")
            elif status >= 400:
                assert {"message", "type", "code"} <= set(json.loads(data)["error"])

        settings = hypothesis.settings(
            max_examples=40, deadline=None, database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )  # fmt: skip
        valid = from_schema(schema)
        loose = st.dictionaries(
            st.sampled_from(sorted(schema["properties"]) + ["extra"]),
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        )
        settings(hypothesis.given(valid)(lambda body: check(json.dumps(body).encode())))()
        settings(hypothesis.given(loose)(lambda body: check(json.dumps(body).encode())))()
        settings(hypothesis.given(st.binary(max_size=200))(check))()
    assert failures == []


def test_voices_lists_the_keys_own_registered_voices(tmp_path):
    from .harness import open_session, run
    from .test_consent import CONSENT
    from .test_voices import register
    from .test_voices_ownership import CLIP, StubEncoder

    keys = tmp_path / "keys"
    keys.write_text("k-aaaaaaaaaaaaaaaaaaaaaaaaaa studio\nk-bbbbbbbbbbbbbbbbbbbbbbbbbb other\n")

    async def listed(port: int, key: str | None) -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {key}\r\n" if key else ""
        writer.write(f"GET /v1/audio/voices HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        data = await reader.read()
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)

    async def main():
        async with run_server(FakeEngine(), StubEncoder(), keys_file=str(keys)) as app:
            auth = {"Authorization": "Bearer k-aaaaaaaaaaaaaaaaaaaaaaaaaa"}
            ws = await open_session(app, additional_headers=auth)
            ready = await register(ws, "r1", CLIP, name="anna", scope="persistent", consent=CONSENT)
            await ws.close()
            return (
                ready,
                await listed(app.port, "k-aaaaaaaaaaaaaaaaaaaaaaaaaa"),
                await listed(app.port, "k-bbbbbbbbbbbbbbbbbbbbbbbbbb"),
                await listed(app.port, None),
            )

    ready, own, other, anonymous = run(main())
    assert ready.voice == "anna"
    assert own[0] == 200 and "anna" in {
        v["id"] for v in own[1]["data"] if v["kind"] == "registered"
    }
    assert other[0] == 200 and all(v["kind"] != "registered" for v in other[1]["data"])
    assert anonymous[0] == 401
