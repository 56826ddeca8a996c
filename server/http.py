"""Plain HTTP requests with a body, on the WebSocket's own port (``POST /v1/detect``).

websockets reads only requests without a body: a WebSocket opening handshake, or a
plain ``GET`` that ``process_request`` answers (``/healthz``, ``/metrics``, the page).
A request that carries a body never gets that far. :meth:`HttpApi.connection_class`
makes the connection class the server runs: it reads each new connection's request
head first; a request with a body, or any method but ``GET`` and ``HEAD``, is one
HTTP/1.1 exchange, parsed by h11 and answered by one of the API's routes (then the
connection closes); anything else goes on to websockets, byte for byte, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
from websockets.asyncio.server import ServerConnection

__all__ = ["HttpApi", "HttpError", "HttpRequest", "HttpResponse", "Route"]

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
"""Largest request line and headers; beyond, the request is refused (431)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    """Without the query string."""
    headers: tuple[tuple[str, str], ...]
    """Names in lower case, in order."""
    body: bytes
    peer: str | None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        name = name.lower()
        return [v for k, v in self.headers if k == name]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    stream: AsyncIterator[bytes] | None = None
    """A body sent as it is made (chunked), after ``body``; closed (``aclose``) if the
    client goes away first."""

    @classmethod
    def json(
        cls, status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()
    ) -> HttpResponse:
        body = json.dumps(value, ensure_ascii=False).encode() + b"\n"
        return cls(status, body, "application/json", headers)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class HttpError(Exception):
    """A request refused with ``status``, in OpenAI's error shape:
    ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.headers, self.param = status, code, headers, param

    def response(self) -> HttpResponse:
        kind = _ERROR_TYPES.get(self.status, "server_error" if self.status >= 500 else "error")
        error = {"message": str(self), "type": kind, "param": self.param, "code": self.code}
        return HttpResponse.json(self.status, {"error": error}, self.headers)


Route = Callable[[HttpRequest], Awaitable[HttpResponse]]


@dataclass(slots=True)
class HttpApi:
    """The routes served over plain HTTP, and the limits of one exchange."""

    routes: Mapping[tuple[str, str], Route]
    """``(method, path)`` → the coroutine that answers it."""
    max_body_bytes: int
    body_timeout_s: float = 60.0
    """The whole request must arrive within it (408 otherwise)."""
    server_header: str = "voxlive"
    paths: set[str] = field(default_factory=set)
    """The routes' paths (any method on them comes here)."""

    def __post_init__(self) -> None:
        self.paths = {path for _, path in self.routes}

    async def answer(self, request: HttpRequest) -> HttpResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            if request.path in self.paths:
                allowed = ", ".join(m for m, p in self.routes if p == request.path)
                raise HttpError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    f"{request.method} {request.path}: use {allowed}",
                    (("Allow", allowed),),
                )
            raise HttpError(HTTPStatus.NOT_FOUND, "not_found", f"no route {request.path}")
        return await route(request)

    def connection_class(self, handshake_timeout_s: float) -> type[ServerConnection]:
        """The connection class for ``websockets.asyncio.server.serve(create_connection=…)``
        (pass ``open_timeout=None`` there: the class times the WebSocket handshake itself,
        ``handshake_timeout_s``, and an HTTP exchange by ``body_timeout_s``)."""
        api = self

        class Connection(_Sniffing):
            pass

        Connection.api = api
        Connection.handshake_timeout_s = handshake_timeout_s
        return Connection


def _is_http(head: bytes, paths: set[str]) -> bool:
    """Whether a request head is the API's: one websockets would refuse (a body, or not
    GET/HEAD), or any request for one of ``paths`` but a WebSocket upgrade."""
    line, _, rest = head.partition(b"\r\n")
    method, _, target = line.partition(b" ")
    path = target.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
    if method not in (b"GET", b"HEAD"):
        return True
    upgrade = False
    for raw in rest.split(b"\r\n"):
        name, _, value = raw.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
        upgrade = upgrade or (name == b"upgrade" and b"websocket" in value.lower())
    return path in paths and not upgrade


class _Sniffing(ServerConnection):
    api: HttpApi
    handshake_timeout_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = b""
        self._mode: str | None = None  # "ws", "http" or "closed" once decided
        self._decided: asyncio.Future[None] = self.loop.create_future()
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._more = asyncio.Event()
        self._exchange: asyncio.Task[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._mode == "ws":
            super().data_received(data)
            return
        if self._mode == "http":
            self._feed(data)
            return
        self._head += data
        if b"\r\n\r\n" not in self._head and len(self._head) <= MAX_HEAD_BYTES:
            return
        head, self._head = self._head, b""
        if _is_http(head, self.api.paths):
            self._mode = "http"
            self._exchange = self.loop.create_task(self._serve_http())
            self._feed(head)
        else:
            self._mode = "ws"
            super().data_received(head)
        self._decide()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self._mode == "http":
            self._feed(b"")
            return True  # a half-closed client still reads the answer: keep the transport
        if self._mode is None and self._head:
            self._mode = "ws"  # let websockets report the truncated request
            super().data_received(self._head)
            self._decide()
        super().eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._mode is None:
            self._mode = "closed"
        self._decide()
        self._more.set()
        super().connection_lost(exc)

    def _decide(self) -> None:
        if not self._decided.done():
            self._decided.set_result(None)

    # -- websockets' handshake, or one HTTP exchange ---------------------------------

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        try:
            async with asyncio.timeout(self.handshake_timeout_s):
                await asyncio.shield(self._decided)
        except TimeoutError:
            self._mode = self._mode or "closed"
            raise
        if self._mode == "http":
            assert self._exchange is not None
            await self._exchange
            # The answer flushed before websockets aborts the (not upgraded) transport.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(self.connection_lost_waiter)
            return
        if self._mode == "closed":
            return
        async with asyncio.timeout(self.handshake_timeout_s):
            await super().handshake(*args, **kwargs)

    def _feed(self, data: bytes) -> None:
        try:
            self._h11.receive_data(data)
        except RuntimeError:
            pass  # data after the request; the exchange ignores it
        self._more.set()

    async def _next_event(self) -> Any:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.transport.is_closing():
                raise ConnectionError("the client went away")
            self._more.clear()
            await self._more.wait()

    async def _read(self) -> HttpRequest:
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad_request", "no HTTP request")
        method = event.method.decode("ascii", "replace")
        path = event.target.decode("ascii", "replace").split("?", 1)[0]
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers
        )
        length = next((v for k, v in headers if k == "content-length"), None)
        if length is not None and int(length) > self.api.max_body_bytes:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                f"the body has {length} bytes, the limit is {self.api.max_body_bytes}",
            )
        if self._h11.they_are_waiting_for_100_continue:
            self._write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.api.max_body_bytes:
                    raise HttpError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        "too_large",
                        f"the body is over the limit of {self.api.max_body_bytes} bytes",
                    )
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise HttpError(HTTPStatus.BAD_REQUEST, "bad_request", "incomplete request")
        peer = self.remote_address[0] if self.remote_address else None
        return HttpRequest(method, path, headers, bytes(body), peer)

    async def _serve_http(self) -> None:
        response: HttpResponse
        try:
            async with asyncio.timeout(self.api.body_timeout_s):
                request = await self._read()
            response = await self.api.answer(request)
        except HttpError as exc:
            response = exc.response()
        except TimeoutError:
            response = HttpError(
                HTTPStatus.REQUEST_TIMEOUT, "timeout", "the request did not arrive in time"
            ).response()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            response = HttpError(status, "bad_request", str(exc) or "bad request").response()
        except ConnectionError:
            return
        except Exception:
            logger.exception("an HTTP route failed")
            response = HttpError(
                HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "the server failed"
            ).response()
        await self._respond(response)

    async def _respond(self, response: HttpResponse) -> None:
        headers = [
            ("Server", self.api.server_header),
            ("Content-Type", response.content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
            *response.headers,
        ]
        if response.stream is None:
            headers.append(("Content-Length", str(len(response.body))))
        try:  # h11 lets a server answer a request it refused before reading it all
            reason = HTTPStatus(response.status).phrase.encode()
            head = h11.Response(status_code=response.status, headers=headers, reason=reason)
            self._write(self._h11.send(head))
            if response.body:
                self._write(self._h11.send(h11.Data(data=response.body)))
            if response.stream is not None and not await self._stream(response.stream):
                self.transport.abort()  # the client went away, or the body broke off
                return
            self._write(self._h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            logger.exception("could not answer an HTTP request")
        self.transport.close()

    async def _stream(self, body: AsyncIterator[bytes]) -> bool:
        """Send ``body`` as it comes, at the client's pace; whether it all went."""
        try:
            async for data in body:
                if self.transport.is_closing():
                    return False
                if data:
                    self._write(self._h11.send(h11.Data(data=data)))
                    await self._drained()
            return not self.transport.is_closing()
        except Exception:
            logger.exception("an HTTP response body failed")
            return False
        finally:
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()

    async def _drained(self) -> None:
        """Wait while the transport's buffer is over its high-water mark."""
        if self.paused and not self.transport.is_closing():
            waiter: asyncio.Future[None] = self.loop.create_future()
            self.drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self.drain_waiters:
                    self.drain_waiters.remove(waiter)

    def _write(self, data: bytes | None) -> None:
        if data and not self.transport.is_closing():
            self.transport.write(data)
