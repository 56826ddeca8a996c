"""The server: one engine, one batcher, a WebSocket endpoint and plain HTTP health checks.

Lifecycle (uvicorn/arq style): ``serve`` runs until ``stop`` is set, then stops
accepting, lets in-flight utterances finish for up to ``graceful_shutdown_s``,
cancels the rest (logging how many), closes every session with 1012, and
stops the engine thread.

Admission, before a session exists: a browser's ``Origin`` (HTTP 403) and an
``Authorization: Bearer`` key (HTTP 401) at the handshake (``keys.py``), then the
sessions open in all and per client address (close 1013, ``limits.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Final

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voxlive.engine import watermark
from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.interface import Engine, ModelMissing
from voxlive.engine.marked import MarkedEngine, Watermarker, marking_thread
from voxlive.engine.multivoice import MultiVoiceEngine
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.vits import VitsEngine
from voxlive.engine.voice import Voice
from voxlive.engine.watermark import decode_audio, detect
from voxlive.protocol.messages import BuiltinVoice, Capabilities, Limits, Watermark
from voxlive.protocol.types import CloseCode, StreamId

from . import streams
from .audit import AuditLog
from .batcher import Batcher
from .cache import AudioCache, engine_identity
from .config import Config, ConfigError
from .connection import Connection
from .gateway import RemoteBatcher, RemoteEngine
from .http import HttpApi, HttpError, HttpRequest, HttpResponse
from .keys import KeyRing, OriginPolicy, Principal, bearer
from .limits import Quotas, client_ip, parse_networks
from .logs import UtteranceLog
from .metrics import CONTENT_TYPE, Metrics
from .openapi import openapi_document
from .speech import SpeechApi
from .static import StaticFiles
from .store import Owner, open_store
from .textfilter import TextFilter
from .utterance import Services
from .voices import VoiceAdapter, Voices
from .worker import Worker

__all__ = ["App"]

logger = logging.getLogger(__name__)
_WORKER_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
"""What a worker answers on its port (it holds no sessions)."""
DRAIN_SEND_S: Final = 2.0
"""At shutdown, how long the last frames may take to reach the clients before 1012."""
DETECT_MAX_SECONDS: Final = 1800.0
"""``capabilities.watermark.model`` (SPEC.md §5.1, v1.7): Perth's implicit watermark."""
socket_logger = logging.getLogger(f"{__name__}.sockets")
"""The WebSocket library's own lines (each connection opened and closed, each health
check or metrics scrape answered): WARNING and up unless ``voxlive -v`` lowers it, so
that a Prometheus scraper does not fill the log."""
if socket_logger.level == logging.NOTSET:  # unless set before this import (``voxlive -v``)
    socket_logger.setLevel(logging.WARNING)


class App:
    """See module docstring.

    Args:
        config: the settings.
        engine: any :class:`~voxlive.engine.interface.Engine`; a loaded VITS
            :class:`~voxlive.engine.voice.Voice` (served by a
            :class:`~voxlive.engine.vits.VitsEngine` of this app's own); None loads
            the bundled voice on ``config.device``.
        speaker: the speaker encoder of voice registration (None loads it).
    """

    def __init__(
        self,
        config: Config,
        engine: Engine | Voice | None = None,
        speaker: SpeakerEncoder | None = None,
    ) -> None:
        self.config = config
        # The files first: a mistake in one fails the start before the voices load.
        self.keys = KeyRing.load(config.keys_file, config.token)
        """API keys and the shared token (``keys.py``); :meth:`reload` reads them again."""
        self.text_filter = _load_words(config.blocked_words_file)
        """The blocked words (``textfilter.py``), or ``None`` without a file."""
        self.audit = _open_audit(config.audit_log)
        """Registrations, refusals, uses and deletions of cloned voices (``audit.py``)."""
        self.origins = OriginPolicy(config.allowed_origins)
        self.trusted_proxies = parse_networks(config.trusted_proxies or "")
        self.quotas = Quotas(config)
        """Sessions open, utterance rates and registrations per hour (``limits.py``)."""
        schedule = ChunkSchedule(first_frames=config.first_chunk_frames)
        self._owns_engine = not _is_engine(engine)
        bare: Engine
        if engine is None:
            bare = load_engine(config, schedule)
        elif isinstance(engine, Voice):
            bare = VitsEngine(engine, schedule)
        else:
            bare = engine
        self.watermarker = Watermarker(config.device, all_output=config.watermark)
        """The Perth watermark's network and thread (``engine/marked.py``)."""
        if config.watermark:
            self.watermarker.net  # noqa: B018 -- loaded now, not on the first utterance
        else:
            logger.warning(
                "WATERMARK OFF: the built-in voices' output is not marked (registered "
                "voices still are); mark it downstream"
            )
        self.engine: Engine = MarkedEngine(bare, self.watermarker)
        """Every utterance's audio leaves this engine marked (registered voices always)."""
        self.limits = Limits(
            max_message_bytes=config.max_message_bytes,
            max_text_chars=config.max_text_chars,
            max_inflight=config.max_inflight,
            max_reference_bytes=config.max_reference_bytes,
        )
        voices = self.engine.voices
        self.capabilities = Capabilities(
            voices=tuple(v.name for v in voices),
            builtin_voices=tuple(
                BuiltinVoice(v.name, v.language, v.sample_rate, v.license) for v in voices
            ),
            emotions=tuple(self.engine.emotions),
            emotion_aliases=dict(self.engine.emotion_aliases),
            default_sample_rate=self.engine.sample_rate,
            pitch=True,
            volume=True,
            voice_registration=True,
            consent_required=config.consent_required(),
            watermark=Watermark(watermark.MODEL, all_output=config.watermark),
        )
        self.voices = Voices(
            open_store(config.redis_url),
            speaker or SpeakerEncoder.load(device=config.device),
            max_reference_bytes=config.max_reference_bytes,
            reserved=self.capabilities.voices,
        )
        self.instance = secrets.token_hex(4)
        """Prefix of session owners in a voice store shared by several servers."""
        self.adapter: VoiceAdapter | None = None
        """Voice adaptation (the VITS engine's WORLD stage); ``None`` refuses registered voices."""
        vits = _vits_of(bare)
        if vits is not None:
            self.adapter = VoiceAdapter(vits.probe, vits.sample_rate)
        self.voices.adapter = self.adapter
        self.audio_cache = _open_cache(config, self.engine)
        """Repeated lines' audio (``cache.py``); ``None`` with ``cache_bytes`` 0."""
        self.frontend_pool = ThreadPoolExecutor(
            config.frontend_threads, thread_name_prefix="voxlive-frontend"
        )
        self.connections: set[Connection] = set()
        self.draining = False
        self.port = config.port
        self.stats = Metrics(self._state, device=config.device, work_depth=self.work_depth)
        """This server's figures (``/metrics``), in a registry of its own."""
        self.utterance_log = UtteranceLog.from_config(config)
        """The line each finished utterance leaves in the log."""
        self.speech_api = SpeechApi(
            self.run_session,
            [(v.name, v.language) for v in voices],
            config.max_text_chars,
            self._registered_voices,
        )
        """OpenAI-compatible speech over HTTP (``speech.py``)."""
        self.http_api = HttpApi(
            {
                ("POST", "/v1/detect"): self._detect,
                ("POST", "/v1/audio/speech"): self.speech_api.speech,
                ("GET", "/v1/models"): self.speech_api.models,
                ("GET", "/v1/audio/voices"): self.speech_api.voices,
                ("GET", "/openapi.json"): self._openapi,
            },
            max_body_bytes=config.max_detect_bytes,
        )
        """The HTTP API on the WebSocket's port (``http.py``)."""
        self._detector = ThreadPoolExecutor(
            1, thread_name_prefix="voxlive-detect", initializer=marking_thread
        )
        """Decodes and scores ``POST /v1/detect`` bodies, one at a time, beside the engine."""
        self.static = StaticFiles() if config.web else None
        """The demo page, the overlay and the JavaScript client (``demo_web/``)."""
        self._streams = itertools.count(1)
        self._sessions = itertools.count(1)
        self.instance_name = f"{socket.gethostname()}-{os.getpid()}-{self.instance}"
        """This process among gateways and workers (its result stream, its consumer name)."""
        self.worker: Worker | None = None
        """With ``role`` worker: what pulls sentences from the work streams."""
        self.loop: asyncio.AbstractEventLoop
        self.batcher: Batcher | RemoteBatcher
        self.services: Services
        """What every utterance uses (set once ``serve`` runs)."""

    def next_stream(self) -> StreamId:
        return StreamId(next(self._streams) % 2**32)

    async def serve(
        self,
        stop: asyncio.Event,
        ready: Callable[[App], None] | None = None,
        *,
        engine_thread: bool = True,
    ) -> None:
        """Serve until ``stop`` is set, then shut down gracefully.

        Args:
            stop: set it (from the loop's thread) to shut down.
            ready: called once the port is bound.
            engine_thread: run the batcher in a thread of its own; when False the
                caller runs ``app.batcher.run()`` on a thread it owns (the main
                thread, for speed: see :meth:`Batcher.run`) once ``ready`` fires.
        """
        self.loop = asyncio.get_running_loop()
        engine: Engine = self.engine
        if self.config.role == "gateway":  # sentences go to workers (``gateway.py``)
            assert self.config.redis_url is not None, "Config checks it"
            self.batcher = RemoteBatcher(
                streams.connect(self.config.redis_url),
                self.instance_name,
                self.engine.sample_rate,
                cap=self.config.work_queue_cap,
            )
            front = self.engine.engine if isinstance(self.engine, MarkedEngine) else self.engine
            engine = RemoteEngine(front, self.batcher)  # workers mark what they make
        else:
            self.batcher = Batcher(
                self.engine,
                self.loop.call_soon_threadsafe,
                max_active=self.config.max_active_items,
                max_queued=self.config.max_queued_items,
                step_budget_frames=self.config.step_budget_frames,
                observer=self.stats,
            )
        self.services = Services(
            self.loop,
            engine,
            self.batcher,
            self.frontend_pool,
            self.stats,
            self.utterance_log,
            cache=self.audio_cache,
        )
        if engine_thread:
            self.batcher.start()
        if isinstance(self.batcher, RemoteBatcher):
            await self.batcher.open()
        elif self.config.role == "worker":  # sentences come from gateways (``worker.py``)
            assert self.config.redis_url is not None, "Config checks it"
            self.worker = Worker(
                self.engine,
                self.batcher,
                streams.connect(self.config.redis_url),
                self.instance_name,
                claim_idle_s=self.config.claim_idle_s,
            )
            await self.worker.open()
        try:
            async with serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._http,
                # Requests with a body (POST /v1/detect) are answered before websockets
                # sees them (``http.py``), which also times the opening handshake.
                create_connection=self.http_api.connection_class(self.config.handshake_timeout_s),
                open_timeout=None,
                # Above the protocol's own limit (JSON may be 4 bytes a character), so the
                # session answers oversize messages with message_too_big itself.
                max_size=4 * self.config.max_message_bytes + 1024,
                compression=None,  # audio does not compress; deflate only adds latency
                close_timeout=2,
                ping_interval=self.config.ping_interval_s or None,
                ping_timeout=self.config.ping_timeout_s or None,
                logger=socket_logger,
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                logger.info("listening on ws://%s:%d", self.config.host, self.port)
                if ready is not None:
                    ready(self)
                await stop.wait()
                self.draining = True  # new utterances are refused from here on
                server.close(close_connections=False)
                await self._drain()
        finally:
            if self.worker is not None:
                await self.worker.close()
            if isinstance(self.batcher, RemoteBatcher):
                await self.batcher.close()
            await self.loop.run_in_executor(None, self.batcher.stop, True, 5.0)
            self.frontend_pool.shutdown(wait=False, cancel_futures=True)
            self._detector.shutdown(wait=False, cancel_futures=True)
            if self._owns_engine:
                self.engine.close()
            self.watermarker.close()
            if self.audio_cache is not None:
                await self.audio_cache.close()
            await self.voices.close()  # the redis pool last
            self.audit.close()
            logger.info("stopped")

    async def run_session(self, ws: Any) -> None:
        """One session on ``ws``: a WebSocket, or an HTTP request's in-memory socket
        (``speech.py``) that behaves as one."""
        await self._handle(ws)

    def _http_principal(self, request: HttpRequest) -> Principal | None:
        """Who an HTTP request's ``Authorization: Bearer`` key is (None without keys).

        Raises:
            HttpError: 401 when the server has keys and the request no known one.
        """
        if not self.keys.required:
            return None
        values = request.header_values("authorization")
        principal = self.keys.check(bearer(values[0])) if len(values) == 1 else None
        if principal is None:
            raise HttpError(
                HTTPStatus.UNAUTHORIZED,
                "auth_failed",
                "send an API key: Authorization: Bearer <key>",
                (("WWW-Authenticate", 'Bearer realm="voxlive"'),),
            )
        return principal

    async def _registered_voices(self, request: HttpRequest) -> list[tuple[str, str]]:
        """The persistent voices an HTTP request's key may speak in (``GET /v1/audio/voices``).

        Raises:
            HttpError: 401 for a key that is not one of the server's.
        """
        principal = self._http_principal(request)
        tenant = None if principal is None else principal.tenant
        listing = await self.voices.listing(Owner(f"{self.instance}:http", tenant))
        return [(v.voice, v.scope) for v in listing if v.scope == "persistent"]

    async def _openapi(self, request: HttpRequest) -> HttpResponse:
        """``GET /openapi.json``: the HTTP API's description (``openapi.py``)."""
        return HttpResponse.json(HTTPStatus.OK, openapi_document(self))

    async def _handle(self, ws: ServerConnection) -> None:
        ip = self.client_ip(ws)
        refusal = self.quotas.sessions.open(ip)
        if refusal is not None:  # SPEC.md §7: 1013, reconnect after a delay
            logger.debug("refused a session from %s: %s", ip, refusal)
            await ws.close(CloseCode.TRY_AGAIN_LATER, refusal)
            return
        try:
            principal = self.principal_of(ws.request)
            conn = Connection(self, ws, f"s{next(self._sessions)}", ip=ip, principal=principal)
            self.stats.sessions_opened.inc()
            self.connections.add(conn)
            try:
                await conn.run()
            finally:
                self.connections.discard(conn)
        finally:
            self.quotas.sessions.close(ip)

    def client_ip(self, ws: ServerConnection) -> str:
        """The client's address: the peer's, or ``X-Forwarded-For``'s behind a trusted proxy."""
        peer = ws.remote_address[0] if ws.remote_address else None
        forwarded = None
        if self.trusted_proxies and ws.request is not None:
            forwarded = ",".join(ws.request.headers.get_all("X-Forwarded-For")) or None
        return client_ip(peer, forwarded, self.trusted_proxies)

    def principal_of(self, request: Request | None) -> Principal | None:
        """Who the handshake's ``Authorization: Bearer`` key authenticates, if anyone."""
        if request is None or not self.keys.required:
            return None
        values = request.headers.get_all("Authorization")
        return self.keys.check(bearer(values[0])) if len(values) == 1 else None

    def _admit_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """A browser page from an origin not allowed: 403; a key that is not one: 401."""
        origins = request.headers.get_all("Origin")
        host = request.headers.get_all("Host")
        origin_ok = not origins or (
            len(origins) == 1 and self.origins.allows(origins[0], host[0] if host else None)
        )
        if not origin_ok:
            return connection.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        if self.keys.required:  # without keys or a token the header means nothing
            given = request.headers.get_all("Authorization")
            presented = len(given) > 1 or any(bearer(a) is not None for a in given)
            if presented and self.principal_of(request) is None:
                response = connection.respond(HTTPStatus.UNAUTHORIZED, "unknown key\n")
                response.headers["WWW-Authenticate"] = 'Bearer realm="voxlive"'
                return response
        return None

    def reload(self) -> None:
        """Read the keys and blocked-words files again (SIGHUP); on an error keep the old ones.

        Sessions keep the tenant they have; new utterances meet the new words.
        """
        try:
            keys = KeyRing.load(self.config.keys_file, self.config.token)
            words = _load_words(self.config.blocked_words_file)
        except (OSError, ValueError) as exc:
            logger.error("reload failed, keeping the keys and words loaded before: %s", exc)
            return
        self.keys, self.text_filter = keys, words
        phrases = words.phrases if words is not None else 0
        logger.info("reloaded %d API keys and %d blocked phrases", keys.keys, phrases)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """``/healthz`` (process up), ``/readyz`` (accepting work), ``/metrics`` (counters),
        and the browser files (``static.py``); a WebSocket upgrade, on any path, goes on
        to the session."""
        if self.config.role == "worker" and request.path not in _WORKER_PATHS:
            return connection.respond(
                HTTPStatus.NOT_FOUND, "a worker serves /healthz, /readyz and /metrics only\n"
            )
        if "websocket" in request.headers.get("Upgrade", "").lower():
            return self._admit_handshake(connection, request)
        if request.path == "/metrics":
            response = connection.respond(HTTPStatus.OK, self.metrics())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = CONTENT_TYPE
            return response
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if request.path == "/readyz":
            # A gateway stays ready while Redis is away: it answers new work with a
            # retryable unavailable itself rather than drop out of its load balancer.
            ready = not self.draining
            if self.worker is not None:
                ready = ready and self.worker.ready
            elif isinstance(self.batcher, Batcher):
                ready = (
                    ready
                    and self.batcher.alive
                    and self.batcher.queued < self.config.max_queued_items
                )
            if ready:
                return connection.respond(HTTPStatus.OK, "ready\n")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        if self.static is not None:
            return self.static.respond(connection, request)
        return None

    async def _detect(self, request: HttpRequest) -> HttpResponse:
        """``POST /v1/detect``: does the audio in the body carry the watermark?"""
        self._http_principal(request)
        if not request.body:
            raise HttpError(HTTPStatus.BAD_REQUEST, "empty_body", "send the audio file as the body")
        try:
            result = await self.loop.run_in_executor(self._detector, self._score, request.body)
        except ValueError as exc:
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "unreadable_audio", str(exc)) from None
        return HttpResponse.json(HTTPStatus.OK, result)

    def _score(self, data: bytes) -> dict[str, object]:
        """Decode and score one file (the detector's thread)."""
        audio, rate = decode_audio(data, DETECT_MAX_SECONDS)
        value = detect(self.watermarker.net, audio, rate)
        return {
            "marked": value >= watermark.THRESHOLD,
            "score": round(value, 4),
            "threshold": watermark.THRESHOLD,
            "seconds": round(len(audio) / rate, 3),
            "sample_rate": rate,
            "model": watermark.MODEL,
        }

    def metrics(self) -> str:
        """Every figure, in the Prometheus text format (``metrics.py``)."""
        return self.stats.render().decode()

    def _state(self) -> dict[str, float]:
        """The figures of ``metrics.STATE``, read off the parts now (at a scrape)."""
        voices = self.voices
        values: dict[str, float] = {
            "voxlive_sessions": len(self.connections),
            "voxlive_voice_cache_hits_total": voices.cache_hits,
            "voxlive_voice_cache_misses_total": voices.cache_misses,
            "voice_cache_hits": voices.cache_hits,
            "voice_cache_misses": voices.cache_misses,
            "voice_store_hits": voices.store.hits,
            "voice_store_misses": voices.store.misses,
            "voice_registrations_inflight": voices.inflight,
            "connections": len(self.connections),
            "utterances_inflight": sum(len(c.utterances) for c in self.connections),
        }
        if self.audio_cache is not None:
            values |= self.audio_cache.figures()
        if not hasattr(self, "batcher"):  # scraped before serve() started it
            return values
        batcher = self.batcher
        values |= {
            "voxlive_event_loop_tasks": len(asyncio.all_tasks(self.loop)),
            "voxlive_queue_depth": batcher.queued,
            "queued": batcher.queued,
            "active": batcher.active,
        }
        if isinstance(batcher, RemoteBatcher):
            return values | {
                "voxlive_work_submitted_total": batcher.submitted,
                "voxlive_work_refused_total": batcher.refused,
                "voxlive_work_lost_total": batcher.lost,
                "voxlive_work_duplicates_dropped_total": batcher.reader.dedup.dropped,
            }
        if self.worker is not None:
            worker = self.worker
            values |= {
                "voxlive_work_running": len(worker.items),
                "voxlive_work_pulled_total": worker.pulled,
                "voxlive_work_reclaimed_total": worker.reclaimed,
                "voxlive_work_completed_total": worker.completed,
                "voxlive_work_failed_total": worker.failed,
                "voxlive_work_chunks_sent_total": worker.chunks_sent,
            }
        values |= {
            "engine_begin_seconds_total": batcher.begin_seconds,
            "engine_step_seconds_total": batcher.step_seconds,
            "engine_begin_calls_total": batcher.begin_calls,
            "engine_sentences_begun_total": batcher.started_jobs,
            "engine_steps_total": batcher.steps,
            "engine_streams_stepped_total": batcher.streams_stepped,
        }
        return values

    def work_depth(self) -> dict[str, tuple[int, int]]:
        """Waiting and pending sentences of each work stream (gateway or worker), as last
        read; empty with ``role`` all."""
        batcher = getattr(self, "batcher", None)  # None: scraped before serve() made it
        source = self.worker or (batcher if isinstance(batcher, RemoteBatcher) else None)
        if source is None:
            return {}
        return {str(p): (d.waiting, d.pending) for p, d in source.depth.items()}

    async def _drain(self) -> None:
        """Finish in-flight utterances and voice requests up to the deadline, then close
        every session with 1012 (a worker: finish the sentences it holds)."""
        self.draining = True
        if self.worker is not None:
            left = await self.worker.drain(self.config.graceful_shutdown_s)
            if left:
                logger.warning("shutdown deadline passed: %d sentences left to other workers", left)
        deadline = time.monotonic() + self.config.graceful_shutdown_s
        while time.monotonic() < deadline and any(c.busy for c in self.connections):
            await asyncio.sleep(0.02)
        left = sum(len(c.utterances) for c in self.connections)
        if left:
            logger.warning("shutdown deadline passed: cancelling %d utterances", left)
        for conn in list(self.connections):
            conn.cancel_all()
            conn.flush()
        # The last frames and done messages go out, unless a client does not read them.
        sent = asyncio.gather(*(c.drained() for c in self.connections), return_exceptions=True)
        try:
            await asyncio.wait_for(sent, DRAIN_SEND_S)
        except TimeoutError:
            pass
        closes = [
            c.ws.close(CloseCode.SERVICE_RESTART, "server restarting") for c in self.connections
        ]
        await asyncio.gather(*closes, return_exceptions=True)

    async def close_now(self, timeout_s: float = 0.5) -> None:
        """Close every session with 1012 at once, finishing nothing (a second signal);
        waits up to ``timeout_s`` for the close frames to go out."""
        self.draining = True
        closes = [
            asyncio.ensure_future(c.ws.close(CloseCode.SERVICE_RESTART, "server stopping"))
            for c in self.connections
        ]
        if closes:
            await asyncio.wait(closes, timeout=timeout_s)


def _open_audit(target: str) -> AuditLog:
    """The ``audit_log`` setting's log, opened.

    Raises:
        ConfigError: the file cannot be opened for appending (the message says why).
    """
    try:
        return AuditLog.open(target)
    except OSError as exc:
        message = f"audit_log {target}: cannot append to it: {exc.strerror or exc}"
        raise ConfigError("audit_log", message) from None


def _open_cache(config: Config, engine: Engine) -> AudioCache | None:
    """The cache of repeated lines the settings ask for (``cache_bytes``, ``redis_url``)."""
    if not config.cache_bytes:
        return None
    return AudioCache(
        config.cache_bytes,
        watermark_all=config.watermark,
        engine=engine_identity(engine, config.precision, config.voice),
        redis_url=config.redis_url,
        ttl_s=config.cache_ttl_s,
    )


def _load_words(path: str | None) -> TextFilter | None:
    """The blocked-words file, or ``None`` without one.

    Raises:
        OSError: it cannot be read.
        ValueError: it is not UTF-8.
    """
    return None if path is None else TextFilter.load(path)


def load_engine(config: Config, schedule: ChunkSchedule) -> Engine:
    """The built-in voices ``config`` names, as one engine.

    A voice whose model files are missing is skipped with a warning, unless it is the
    default voice.

    Raises:
        ModelMissing: the default voice's model files are not installed.
        ValueError, RuntimeError: a voice cannot load on ``config.device``.
    """
    engines: list[Engine] = []
    for name in config.voice_names():
        try:
            if name == "zh":
                from voxlive.engine.mandarin.engine import MandarinEngine

                engines.append(MandarinEngine.load(config.device, schedule))
            else:
                engines.append(VitsEngine.load(config.device, config.precision, schedule))
        except ModelMissing as exc:
            if name == config.voice:
                raise
            logger.warning("voice %s is not served: %s", name, exc)
    if len(engines) == 1:
        return engines[0]
    return MultiVoiceEngine(engines, default=config.voice)


def _vits_of(engine: Engine) -> VitsEngine | None:
    """The VITS engine inside ``engine`` (voice adaptation fits against its voice)."""
    inner = engine.engines if isinstance(engine, MultiVoiceEngine) else (engine,)
    return next((e for e in inner if isinstance(e, VitsEngine)), None)


def _is_engine(engine: object) -> bool:
    """A caller's engine (theirs to close), not a voice or nothing (ours)."""
    return engine is not None and not isinstance(engine, Voice)
