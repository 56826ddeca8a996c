"""The browser files over HTTP on the WebSocket port (``server/static.py``)."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect

from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import AudioSpec, Hello, Welcome
from voxlive.server.static import PAGES, StaticFiles

from .harness import run, run_server

pytestmark = pytest.mark.tiny_voice


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}{path}", headers)


def test_the_page_the_overlay_and_the_scripts_are_served_with_their_types(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            return {
                p: await get(app.port, p)
                for p in ("/", "/overlay?demo=1&mouth=1", "/voxlive.js", "/style.css")
            }

    got = run(main())
    status, headers, body = got["/"]
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="app.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = got["/overlay?demo=1&mouth=1"]
    assert status == 200 and b"overlay.js" in body
    assert got["/voxlive.js"][1]["Content-Type"] == "text/javascript; charset=utf-8"
    assert got["/voxlive.js"][2].startswith(b"// voxlive.js")
    assert got["/style.css"][1]["Content-Type"] == "text/css; charset=utf-8"


def test_other_paths_are_404_and_an_unchanged_file_is_304(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            misses = [
                (await get(app.port, p))[0]
                for p in ("/nope", "/../pyproject.toml", "/__init__.py", "/vendor/", "/%2e%2e/")
            ]
            status, headers, _ = await get(app.port, "/app.js")
            again = await get(app.port, "/app.js", **{"If-None-Match": headers["ETag"]})
            return misses, status, again

    misses, status, (again_status, _, again_body) = run(main())
    assert misses == [404] * 5
    assert status == 200
    assert (again_status, again_body) == (304, b"")


def test_the_websocket_still_answers_on_every_path_beside_the_page(server_voice):
    async def main():
        async with run_server(server_voice) as app:
            welcomes = []
            for path in ("/", "/overlay", "/any/where"):
                async with connect(f"ws://127.0.0.1:{app.port}{path}") as ws:
                    await ws.send(encode_client(Hello(version=1, audio=AudioSpec())))
                    welcomes.append(decode_server(await ws.recv()))
            return welcomes

    assert all(isinstance(w, Welcome) for w in run(main()))


def test_without_web_no_page_is_served(server_voice):
    async def main():
        async with run_server(server_voice, web=False) as app:
            return (await get(app.port, "/"))[0], (await get(app.port, "/healthz"))[0]

    page, health = run(main())
    assert page == 426  # the WebSocket library's "Upgrade Required"
    assert health == 200


def test_every_file_the_pages_load_is_served_and_the_page_weighs_under_200_kb():
    files = StaticFiles()
    html = {a: files.files[a].body.decode() for a in PAGES}
    wanted = set()
    for text in html.values():
        wanted |= {f"/{m}" for m in re.findall(r'(?:src|href)="([a-z][\w./-]*)"', text)}
    scripts = [a for a in files.files if a.endswith(".js") and not a.startswith("/vendor/")]
    for a in scripts:
        body = files.files[a].body.decode()
        wanted |= {f"/{m}" for m in re.findall(r'from "\./([\w./-]+)"', body)}
        wanted |= {f"/{m}" for m in re.findall(r'new URL\("\./([\w./-]+)"', body)}
    missing = {w for w in wanted if w not in files.files}
    assert not missing, f"referenced but not served (package data?): {missing}"
    assert "/vendor/msgpack.min.js" in wanted and "/player-worklet.js" in wanted
    page = sum(n for a, n in files.page_bytes.items() if not a.startswith("/vendor/"))
    assert page <= 200_000
