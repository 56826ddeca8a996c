"""API keys, tenants and browser origins (server/keys.py), alone and through a real server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import Error, Hello, Welcome
from voxlive.protocol.types import CloseCode
from voxlive.server.app import App
from voxlive.server.keys import KeyRing, OriginPolicy, bearer, parse_keys

from .harness import open_session, run, run_server, url

ANNA = "sk-anna-0123456789abcdef"
ANNA_2 = "sk-anna-fedcba9876543210"
STUDIO = "sk-studio-0123456789abcd"
KEYS = f"""# key                       tenant
{ANNA}   anna
{ANNA_2}\tanna    # rotation: the next key

{STUDIO} studio-b
"""


# -- the keys file and the key ring (no server) -------------------------------------------


def test_the_keys_file_gives_each_key_its_tenant() -> None:
    assert parse_keys(KEYS) == [(ANNA, "anna"), (ANNA_2, "anna"), (STUDIO, "studio-b")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short tenant\n", "keys.txt, line 1: a key is 16-512 printable ASCII characters"),
        (f"{ANNA}\n", "keys.txt, line 1: expected 'KEY TENANT', got 1 fields"),
        (f"{ANNA} anna extra\n", "got 3 fields"),
        (f"\n{ANNA} bad/tenant\n", "keys.txt, line 2: a tenant is 1-64 of"),
        (f"{ANNA} anna\n{ANNA} other\n", "keys.txt, line 2: this key is listed already"),
    ],
)
def test_a_bad_keys_line_is_named_by_its_number_and_never_shows_the_key(text, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_keys(text, "keys.txt")
    assert ANNA not in str(caught.value)


def test_the_key_ring_knows_keys_and_the_shared_token() -> None:
    ring = KeyRing(parse_keys(KEYS), token="shared-token")
    anna, anna_2 = ring.check(ANNA), ring.check(ANNA_2)
    assert anna is not None and anna_2 is not None
    assert (anna.tenant, anna_2.tenant) == ("anna", "anna")
    assert anna.key_id != anna_2.key_id and ANNA not in str(anna)
    studio = ring.check(STUDIO)
    assert studio is not None and studio.tenant == "studio-b"
    shared = ring.check("shared-token")
    assert shared is not None and (shared.tenant, shared.key_id) == (None, None)
    assert ring.check(ANNA[:-1]) is None and ring.check(None) is None and ring.check("") is None
    assert ring.required and ring.keys == 3
    assert not KeyRing().required and KeyRing(token="t").required


def test_a_missing_keys_file_is_an_os_error(tmp_path) -> None:
    with pytest.raises(OSError):
        KeyRing.load(tmp_path / "nope.txt")
    assert not KeyRing.load(None).required


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (f"Bearer {ANNA}", ANNA),
        (f"bearer   {ANNA} ", ANNA),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer   ", None),
        (None, None),
    ],
)
def test_bearer_reads_the_authorization_header(header, want) -> None:
    assert bearer(header) == want


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "want"),
    [
        (None, None, "voice.example:8765", True),  # not a browser
        (None, "http://voice.example:8765", "voice.example:8765", True),  # its own page
        (None, "https://voice.example", "voice.example", True),
        (None, "https://voice.example:443", "voice.example", True),
        (None, "http://localhost:3000", "voice.example", True),
        (None, "https://127.0.0.1:9", "voice.example", True),
        (None, "http://[::1]:8080", "voice.example", True),
        (None, "https://evil.example", "voice.example", False),
        (None, "http://localhost.evil.example", "voice.example", False),
        (None, "null", "voice.example", False),
        (None, "http://voice.example:9999", "voice.example:8765", False),
        ("https://app.example", "https://APP.example:443", "voice.example", True),
        ("https://app.example", "http://localhost:3000", "voice.example", False),
        ("https://app.example", "http://voice.example", "voice.example", True),
        ("https://app.example, http://b.example:81", "http://b.example:81", None, True),
        ("*", "https://anything.example", "voice.example", True),
        ("*", "null", "voice.example", True),
    ],
)
def test_the_origin_policy(allowed, origin, host, want) -> None:
    assert OriginPolicy(allowed).allows(origin, host) is want


# -- through a real server ------------------------------------------------------------


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(KEYS, encoding="utf-8")
    return path


async def hello(ws: Any, token: str | None = None) -> tuple[list[Any], int | None]:
    """Send hello; read the welcome, or everything up to the close."""
    await ws.send(encode_client(Hello(version=1, token=token)))
    first = decode_server(await ws.recv())
    if isinstance(first, Welcome):
        return [first], None
    rest = [first]
    try:
        async with asyncio.timeout(10):
            while True:
                rest.append(decode_server(await ws.recv()))
    except ConnectionClosed:
        pass
    return rest, ws.close_code


def tenants(app: App) -> list[str | None]:
    return sorted((c.tenant for c in app.connections), key=str)


@pytest.mark.tiny_voice
def test_a_bearer_key_on_the_handshake_authenticates_and_sets_the_tenant(server_voice, keys_file):
    async def main():
        async with run_server(server_voice, keys_file=str(keys_file)) as app:
            auth = {"additional_headers": {"Authorization": f"Bearer {STUDIO}"}}
            ws = await open_session(app, **auth)  # hello without a token
            seen = tenants(app)
            await ws.close()
            with pytest.raises(InvalidStatus) as caught:
                await connect(url(app), additional_headers={"Authorization": "Bearer sk-guess"})
            return seen, caught.value.response

    seen, refused = run(main())
    assert seen == ["studio-b"]
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.tiny_voice
def test_hello_token_takes_a_key_or_the_shared_token_and_refuses_others(server_voice, keys_file):
    async def main():
        config = {"keys_file": str(keys_file), "token": "shared-secret"}
        async with run_server(server_voice, **config) as app:
            results = []
            for token in (ANNA_2, "shared-secret", "sk-anna-wrong-wrong-wrong", None):
                ws = await connect(url(app))
                messages, code = await hello(ws, token)
                seen = tenants(app) if code is None else []
                results.append((type(messages[0]).__name__, code, seen))
                await ws.close()
                async with asyncio.timeout(10):
                    while app.connections:
                        await asyncio.sleep(0.01)
            return results

    assert run(main()) == [
        ("Welcome", None, ["anna"]),
        ("Welcome", None, [None]),
        ("Error", CloseCode.AUTH_FAILED, []),
        ("Error", CloseCode.AUTH_FAILED, []),
    ]


@pytest.mark.tiny_voice
def test_without_keys_or_a_token_an_authorization_header_is_ignored(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            ws = await open_session(app, additional_headers={"Authorization": "Bearer anything"})
            seen = tenants(app)
            await ws.close()
            return seen

    assert run(main()) == [None]


@pytest.mark.tiny_voice
def test_a_page_from_another_origin_is_refused_with_403(server_voice):
    async def main():
        statuses = {}
        async with run_server(server_voice) as app:
            for origin in ("https://evil.example", "http://localhost:3000", None):
                try:
                    ws = await open_session(app, origin=origin)
                except InvalidStatus as exc:
                    statuses[origin] = exc.response.status_code
                else:
                    statuses[origin] = 101
                    await ws.close()
        async with run_server(server_voice, allowed_origins="https://app.example") as app:
            for origin in ("https://app.example", "http://localhost:3000"):
                try:
                    ws = await open_session(app, origin=origin)
                except InvalidStatus as exc:
                    statuses[f"listed {origin}"] = exc.response.status_code
                else:
                    statuses[f"listed {origin}"] = 101
                    await ws.close()
        return statuses

    assert run(main()) == {
        "https://evil.example": 403,
        "http://localhost:3000": 101,
        None: 101,
        "listed https://app.example": 101,
        "listed http://localhost:3000": 403,
    }


@pytest.mark.tiny_voice
def test_reloading_reads_new_keys_and_keeps_the_old_ones_after_a_bad_file(
    server_voice, keys_file, caplog
):
    async def main():
        async with run_server(server_voice, keys_file=str(keys_file)) as app:
            keys_file.write_text(f"{STUDIO} studio-b\nsk-new-key-0000000000 new\n")
            app.reload()
            new = app.keys.check("sk-new-key-0000000000")
            gone = app.keys.check(ANNA)
            keys_file.write_text("broken\n")
            app.reload()
            kept = app.keys.check("sk-new-key-0000000000")
            ws = await connect(url(app))
            messages, code = await hello(ws, ANNA)
            return new, gone, kept, code, messages

    new, gone, kept, code, messages = run(main())
    assert new is not None and new.tenant == "new" and gone is None
    assert kept is not None
    assert code == CloseCode.AUTH_FAILED
    assert [m.code for m in messages if isinstance(m, Error)] == ["auth_failed"]
    assert "reload failed, keeping the keys and words loaded before" in caplog.text
