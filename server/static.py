"""The browser files (``demo_web/``) over plain HTTP, on the WebSocket port.

``/`` is the demo page, ``/overlay`` the OBS overlay; the scripts, the style sheet and
the vendored msgpack build are served by their names. Only the files of the package's
own ``demo_web`` folder are served, read once at start; any other path is a 404. A
WebSocket upgrade never reaches this module (``App._http`` lets it through first).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from importlib.resources.abc import Traversable

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

__all__ = ["StaticFiles"]

PAGES = {"/": "index.html", "/overlay": "overlay.html"}
"""Addresses without a file name."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".wav": "audio/wav",
}
"""What is served, by suffix; files of other kinds in the folder are not."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Scripts, styles and the worklet come from this server only; the page may connect to
    # any voxlive server the user types in (ws:, wss:), and plays and records locally.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; "
        "frame-ancestors *; base-uri 'none'; form-action 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str
    etag: str


class StaticFiles:
    """The files of one folder (a package's ``demo_web``), answered from memory."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.files: dict[str, _File] = {}
        """By address: ``/voxlive.js``, ``/vendor/msgpack.min.js``."""
        root = root if root is not None else resources.files("voxlive.demo_web")
        self._add(root, "/")
        for address, name in PAGES.items():
            if f"/{name}" in self.files:
                self.files[address] = self.files[f"/{name}"]

    def _add(self, folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                if not entry.name.startswith(("_", ".")):
                    self._add(entry, f"{prefix}{entry.name}/")
                continue
            suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
            content_type = CONTENT_TYPES.get(suffix)
            if content_type is None and entry.name.startswith("LICENSE"):
                content_type = CONTENT_TYPES[".txt"]
            if content_type is None:
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            self.files[prefix + entry.name] = _File(body, content_type, etag)

    def respond(self, connection: ServerConnection, request: Request) -> Response:
        """The file at the request's path (its query string ignored), or 404."""
        path = request.path.split("?", 1)[0].split("#", 1)[0]
        file = self.files.get(path)
        if file is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if request.headers.get("If-None-Match") == file.etag:
            response = connection.respond(HTTPStatus.NOT_MODIFIED, "")
            response.body = b""
        else:
            response = connection.respond(HTTPStatus.OK, "")
            response.body = file.body
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = file.content_type
        del response.headers["Content-Length"]
        response.headers["Content-Length"] = str(len(response.body))
        response.headers["ETag"] = file.etag
        response.headers["Cache-Control"] = "no-cache"  # revalidate: a new release shows at once
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @property
    def page_bytes(self) -> dict[str, int]:
        """Bytes of each served file, by address (the pages' weight)."""
        return {a: len(f.body) for a, f in self.files.items() if a not in PAGES}
