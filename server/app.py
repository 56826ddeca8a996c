"""The server: one voice, one batcher, a WebSocket endpoint and plain HTTP health checks.

Lifecycle (uvicorn/arq style): ``serve`` runs until ``stop`` is set, then stops
accepting, lets in-flight utterances finish for up to ``graceful_shutdown_s``,
cancels the rest (logging how many), closes every session with 1012, and
stops the engine thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voxlive.engine.adapt import Probe
from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.emotion import EMOTIONS, SYNONYMS
from voxlive.engine.expression import Expression, check_rate
from voxlive.engine.speaker import SpeakerEncoder
from voxlive.engine.synthesizer import PROBE_SENTENCE
from voxlive.engine.voice import SynthesisParams, Voice
from voxlive.protocol.messages import Capabilities, Limits, SpeakOptions
from voxlive.protocol.types import CloseCode, StreamId

from .batcher import Batcher
from .config import Config
from .connection import Connection
from .store import open_store
from .voices import VoiceAdapter, Voices

__all__ = ["App"]

logger = logging.getLogger(__name__)


class App:
    """See module docstring."""

    def __init__(
        self,
        config: Config,
        voice: Voice | None = None,
        speaker: SpeakerEncoder | None = None,
    ) -> None:
        self.config = config
        self.voice = voice or Voice.load(device=config.device, precision=config.precision)
        self.limits = Limits(
            max_message_bytes=config.max_message_bytes,
            max_text_chars=config.max_text_chars,
            max_inflight=config.max_inflight,
            max_reference_bytes=config.max_reference_bytes,
        )
        self.capabilities = Capabilities(
            emotions=tuple(EMOTIONS),
            emotion_aliases=dict(SYNONYMS),
            default_sample_rate=self.voice.sample_rate,
            pitch=True,
            volume=True,
            voice_registration=True,
        )
        self.voices = Voices(
            open_store(config.redis_url),
            speaker or SpeakerEncoder.load(device=config.device),
            max_reference_bytes=config.max_reference_bytes,
            reserved=self.capabilities.voices,
        )
        self.instance = secrets.token_hex(4)
        """Prefix of session owners in a voice store shared by several servers."""
        probe = _probe(self.voice)
        self.center_hz = probe.stats["f0_median_hz"]
        """The bundled voice's median pitch: the centre of pitch-range changes."""
        self.adapter: VoiceAdapter | None = VoiceAdapter(probe, self.voice.sample_rate)
        """Voice adaptation (the WORLD stage); ``None`` refuses registered voices."""
        self.voices.adapter = self.adapter
        self.stage_pool = ThreadPoolExecutor(1, thread_name_prefix="voxlive-stage")
        """Runs the WORLD stage (emotion and voice) off the event loop, in order."""
        self.frontend_pool = ThreadPoolExecutor(
            config.frontend_threads, thread_name_prefix="voxlive-frontend"
        )
        self.connections: set[Connection] = set()
        self.draining = False
        self.port = config.port
        self._streams = itertools.count(1)
        self._sessions = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop
        self.batcher: Batcher

    def expression(self, options: SpeakOptions) -> Expression:
        """How an utterance with ``options`` is performed (before any registered voice).

        Raises:
            ValueError: an unknown emotion or a control out of range.
        """
        expression = Expression.create(
            emotion=options.emotion,
            intensity=options.intensity,
            speed=options.speed,
            pitch_st=options.pitch,
            volume_db=options.volume,
            center_hz=self.center_hz,
        )
        check_rate(expression, SynthesisParams())  # e.g. speed 4 and an excited voice
        return expression

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
        schedule = ChunkSchedule(first_frames=self.config.first_chunk_frames)
        self.batcher = Batcher(
            self.voice,
            self.loop.call_soon_threadsafe,
            max_active=self.config.max_active_items,
            max_queued=self.config.max_queued_items,
            schedule=schedule,
            step_budget_frames=self.config.step_budget_frames,
        )
        if engine_thread:
            self.batcher.start()
        try:
            async with serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._http,
                # Above the protocol's own limit (JSON may be 4 bytes a character), so the
                # session answers oversize messages with message_too_big itself.
                max_size=4 * self.config.max_message_bytes + 1024,
                compression=None,  # audio does not compress; deflate only adds latency
                close_timeout=2,
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                logger.info("listening on ws://%s:%d", self.config.host, self.port)
                if ready is not None:
                    ready(self)
                await stop.wait()
                server.close(close_connections=False)
                await self._drain()
        finally:
            await self.loop.run_in_executor(None, self.batcher.stop, True, 5.0)
            self.frontend_pool.shutdown(wait=False, cancel_futures=True)
            self.stage_pool.shutdown(wait=False, cancel_futures=True)
            await self.voices.close()  # the redis pool last
            logger.info("stopped")

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(self, ws, f"s{next(self._sessions)}")
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """``/healthz`` (process up), ``/readyz`` (accepting work), ``/metrics`` (counters)."""
        if request.path == "/metrics":
            return connection.respond(HTTPStatus.OK, self.metrics())
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if request.path == "/readyz":
            ready = (
                not self.draining
                and self.batcher.alive
                and self.batcher.queued < self.config.max_queued_items
            )
            if ready:
                return connection.respond(HTTPStatus.OK, "ready\n")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        return None

    def metrics(self) -> str:
        """Counters as plain text, one ``name value`` a line."""
        voices = self.voices
        values = {
            "voice_cache_hits": voices.cache_hits,
            "voice_cache_misses": voices.cache_misses,
            "voice_store_hits": voices.store.hits,
            "voice_store_misses": voices.store.misses,
            "voice_registrations_inflight": voices.inflight,
            "connections": len(self.connections),
            "utterances_inflight": sum(len(c.utterances) for c in self.connections),
            "queued": self.batcher.queued,
            "active": self.batcher.active,
        }
        return "".join(f"{name} {value}\n" for name, value in values.items())

    async def _drain(self) -> None:
        """Finish in-flight utterances up to the deadline, then close every session with 1012."""
        self.draining = True
        deadline = time.monotonic() + self.config.graceful_shutdown_s
        while time.monotonic() < deadline and any(c.utterances for c in self.connections):
            await asyncio.sleep(0.02)
        left = sum(len(c.utterances) for c in self.connections)
        if left:
            logger.warning("shutdown deadline passed: cancelling %d utterances", left)
        for conn in list(self.connections):
            conn.cancel_all()
            conn.flush()
        await asyncio.gather(*(c.drained() for c in self.connections), return_exceptions=True)
        closes = [
            c.ws.close(CloseCode.SERVICE_RESTART, "server restarting") for c in self.connections
        ]
        await asyncio.gather(*closes, return_exceptions=True)


_PROBES: weakref.WeakKeyDictionary[Voice, Probe] = weakref.WeakKeyDictionary()
"""Each voice's probe: deterministic, so servers started on one voice share it."""


def _probe(voice: Voice) -> Probe:
    """The bundled voice saying the fitting sentence, analysed once per voice."""
    probe = _PROBES.get(voice)
    if probe is None:
        (audio,) = voice.synthesize_texts([PROBE_SENTENCE], SynthesisParams.deterministic())
        probe = _PROBES[voice] = Probe.from_audio(audio, voice.sample_rate)
    return probe
