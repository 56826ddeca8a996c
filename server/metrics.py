"""The server's metrics, served at ``/metrics`` in the Prometheus text format.

Each :class:`~.app.App` has a registry of its own, never prometheus-client's global
one, so that several servers in one process (the tests) count apart. Two kinds of
figure:

- events, counted where they happen: utterances finished (:meth:`Metrics.finished`),
  engine batches (:meth:`Metrics.begun`, :meth:`Metrics.stepped`, on the engine
  thread), sessions opened, bytes and frames sent, send-buffer stalls;
- state, read when ``/metrics`` is scraped: sessions open, queue depth, the voice cache
  and the batcher's totals (:data:`STATE`, from the app), the process's CPU and memory,
  and on CUDA the GPU's memory and utilisation (:class:`GpuCollector`).

New names start with ``voxlive_``. The names ``/metrics`` served before keep working
(``audio_seconds_total``, ``utterances_total{status}``, ``process_cpu_seconds_total``,
``engine_*_total``, ``connections``, ``queued``, ``active``, ``voice_*``):
``voxlive bench server`` and existing scrapers read them, e.g. CPU seconds per second
of audio = Δ``process_cpu_seconds_total`` / Δ``audio_seconds_total``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voxlive.protocol.types import STATUSES, Status

__all__ = [
    "CONTENT_TYPE",
    "GPU_METRICS",
    "STATE",
    "CudaApi",
    "Finished",
    "GpuCollector",
    "Metrics",
]

logger = logging.getLogger(__name__)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format (what ``generate_latest`` writes)."""

LATENCY_BUCKETS_S: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0
)  # fmt: skip
"""First audio and whole-utterance latency: 10 ms to 10 s."""
WAIT_BUCKETS_S: Final = (0.001, 0.0025, 0.005, *LATENCY_BUCKETS_S)
"""A sentence's wait in the queue: often under 10 ms on an idle server."""
ENGINE_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip
"""One engine call (a decoder step, or beginning sentences)."""
RTF_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)
"""Real-time factor: wall time from first sentence started to done ÷ audio duration."""
BATCH_BUCKETS: Final = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
"""Streams decoded in one step (``max_active_items`` bounds it; 16 by default)."""
FILL_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0)
"""A step's work ÷ ``step_budget_frames`` (above 1 when one stream alone exceeds it)."""

StateKind = Literal["counter", "gauge"]

STATE: Final[tuple[tuple[str, StateKind, str], ...]] = (
    ("voxlive_sessions", "gauge", "Open WebSocket sessions."),
    ("voxlive_queue_depth", "gauge", "Sentences waiting for the engine."),
    ("voxlive_event_loop_tasks", "gauge", "Tasks of the server's event loop (leaks show here)."),
    (
        "voxlive_voice_cache_hits_total",
        "counter",
        "Voice registrations answered from a clip already known (nothing analysed).",
    ),
    (
        "voxlive_voice_cache_misses_total",
        "counter",
        "Voice registrations that analysed a new clip.",
    ),
    ("voxlive_cache_hits_total", "counter", "Utterances replayed from the audio cache."),
    ("voxlive_cache_misses_total", "counter", "Utterances the audio cache did not hold."),
    ("voxlive_cache_evictions_total", "counter", "Utterances the audio cache dropped for room."),
    ("voxlive_cache_bytes", "gauge", "Audio held by this process's audio cache, in bytes."),
    ("voxlive_cache_entries", "gauge", "Utterances held by this process's audio cache."),
    # Scale-out (``--role gateway`` / ``worker``; docs/scale-out.md).
    ("voxlive_work_submitted_total", "counter", "Sentences this gateway put on the work streams."),
    (
        "voxlive_work_refused_total",
        "counter",
        "Utterances this gateway refused: work stream full (overloaded) or Redis out of reach.",
    ),
    (
        "voxlive_work_lost_total",
        "counter",
        "Utterances this gateway failed (unavailable) because Redis went away mid-utterance.",
    ),
    (
        "voxlive_work_duplicates_dropped_total",
        "counter",
        "Result chunks this gateway dropped: repeated by a retry, or late (utterance over).",
    ),
    ("voxlive_work_running", "gauge", "Sentences this worker holds (pulled, not yet acked)."),
    ("voxlive_work_pulled_total", "counter", "Sentences this worker took from the work streams."),
    (
        "voxlive_work_reclaimed_total",
        "counter",
        "Sentences this worker took over from a worker that stopped answering.",
    ),
    ("voxlive_work_completed_total", "counter", "Sentences this worker delivered whole."),
    (
        "voxlive_work_failed_total",
        "counter",
        "Sentences this worker ended without all their audio (expired, failed).",
    ),
    ("voxlive_work_chunks_sent_total", "counter", "Result chunks this worker wrote."),
    # The names served before prometheus-client, unchanged.
    ("connections", "gauge", "Open WebSocket sessions (older name of voxlive_sessions)."),
    ("utterances_inflight", "gauge", "Utterances of open sessions not yet done."),
    ("queued", "gauge", "Sentences waiting for the engine (older name of voxlive_queue_depth)."),
    ("active", "gauge", "Sentences being synthesized."),
    ("voice_cache_hits", "gauge", "Voice registrations answered from the cache, since start."),
    ("voice_cache_misses", "gauge", "Voice registrations that analysed a new clip, since start."),
    ("voice_store_hits", "gauge", "Voice store lookups that found a profile, since start."),
    ("voice_store_misses", "gauge", "Voice store lookups that found none, since start."),
    ("voice_registrations_inflight", "gauge", "Voice registrations in progress."),
    ("engine_begin_seconds_total", "counter", "Engine thread time spent beginning sentences."),
    ("engine_step_seconds_total", "counter", "Engine thread time spent in decoder steps."),
    ("engine_begin_calls_total", "counter", "Calls that began sentences (batches of them)."),
    ("engine_sentences_begun_total", "counter", "Sentences begun."),
    ("engine_steps_total", "counter", "Decoder steps."),
    ("engine_streams_stepped_total", "counter", "Streams decoded, summed over decoder steps."),
)
"""Figures the app reads off its parts when scraped: (sample name, type, help)."""

GPU_METRICS: Final = (
    "voxlive_gpu_memory_allocated_bytes",
    "voxlive_gpu_memory_reserved_bytes",
    "voxlive_gpu_utilization_ratio",
)
"""Served only by a server on a CUDA device (``device`` label, e.g. ``cuda:0``)."""
_GPU_HELP: Final = dict(
    zip(
        GPU_METRICS,
        (
            "GPU memory held by tensors (torch.cuda.memory_allocated).",
            "GPU memory reserved by torch's caching allocator (torch.cuda.memory_reserved).",
            "Fraction of the last sample period the GPU was busy (NVML, via torch).",
        ),
        strict=True,
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """One utterance at its end, as its ``done`` reports it (for the metrics and the log)."""

    id: str
    session: str
    status: Status
    error_code: str | None
    """The ``error`` sent for it, if any (``expired``, ``overloaded``, ``empty_text``, …)."""
    queue_s: float | None
    """From its request to its first sentence begun; None if none began."""
    first_audio_s: float | None
    """From its request to its first frame with samples; None without audio."""
    total_s: float
    """From its request to ``done``."""
    audio_s: float
    """Audio sent, in seconds."""
    rtf: float | None
    """Seconds from its first sentence begun to ``done``, per second of audio."""
    sentences: int
    voice: str | None
    """The voice it asked for (None: the server's default)."""
    emotion: str
    text_chars: int
    """Length of its text, in characters."""
    text: str | None = None
    """Its text, kept only when the server logs text (``log_text``)."""
    cache: str | None = None
    """What the cache of repeated lines answered: ``hit``, ``miss``, or None (not asked)."""


class Metrics:
    """The registry of one app, and what its parts call to count.

    Args:
        state: the figures of :data:`STATE`, read off the app at each scrape (on the
            event loop thread); a name it leaves out is not served.
        device: the engine's device; ``cuda…`` adds the GPU figures.
    """

    def __init__(
        self,
        state: Callable[[], Mapping[str, float]],
        *,
        device: str = "cpu",
        work_depth: Callable[[], Mapping[str, tuple[int, int]]] | None = None,
    ) -> None:
        self.registry = r = CollectorRegistry()
        self._add_utterance_figures(r)
        self._add_engine_figures(r)
        self._add_session_figures(r)
        r.register(_StateCollector(state))
        if work_depth is not None:
            r.register(_WorkDepthCollector(work_depth))
        if os.path.exists("/proc/self/stat"):
            # process_cpu_seconds_total (every thread), process_resident_memory_bytes, …
            ProcessCollector(registry=r)
        else:
            r.register(_CpuCollector())
        r.register(GpuCollector(device))

    def _add_utterance_figures(self, r: CollectorRegistry) -> None:
        self.audio_seconds = Counter(
            "audio_seconds", "Audio sent to clients, in seconds.", registry=r
        )
        self.utterances_by_status = Counter(
            "utterances",
            "Finished utterances by done.status (older name of voxlive_utterances_total).",
            ["status"],
            registry=r,
        )
        self.utterances = Counter(
            "voxlive_utterances", "Finished utterances by done.status.", ["status"], registry=r
        )
        for status in STATUSES:
            self.utterances.labels(status)  # every outcome served from the start, at 0
        self.errors = Counter(
            "voxlive_utterance_errors",
            "Utterances that ended with an error, by its code.",
            ["code"],
            registry=r,
        )
        self.first_audio = Histogram(
            "voxlive_first_audio_seconds",
            "From a request to its first audio frame sent.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.latency = Histogram(
            "voxlive_utterance_seconds",
            "From a request to its done, for completed utterances.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.rtf = Histogram(
            "voxlive_rtf",
            "Real-time factor of completed utterances: synthesis wall time / audio time.",
            buckets=RTF_BUCKETS,
            registry=r,
        )

    def _add_engine_figures(self, r: CollectorRegistry) -> None:
        self.queue_wait = Histogram(
            "voxlive_queue_wait_seconds",
            "A sentence's wait in the queue before the engine began it.",
            buckets=WAIT_BUCKETS_S,
            registry=r,
        )
        self.batch_streams = Histogram(
            "voxlive_batch_streams",
            "Streams decoded together in one decoder step (batch size).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_fill = Histogram(
            "voxlive_batch_fill_ratio",
            "A decoder step's work over step_budget_frames (batch fill).",
            buckets=FILL_BUCKETS,
            registry=r,
        )
        self.step_time = Histogram(
            "voxlive_engine_step_seconds",
            "Duration of one decoder step (every stream in it).",
            buckets=ENGINE_BUCKETS_S,
            registry=r,
        )
        self.begin_time = Histogram(
            "voxlive_engine_begin_seconds",
            "Duration of one call beginning sentences (text encoder, durations, flow).",
            buckets=ENGINE_BUCKETS_S,
            registry=r,
        )

    def _add_session_figures(self, r: CollectorRegistry) -> None:
        self.sessions_opened = Counter(
            "voxlive_sessions_opened", "WebSocket sessions opened.", registry=r
        )
        self.sent_bytes = Counter(
            "voxlive_sent_bytes", "Bytes of WebSocket messages sent to clients.", registry=r
        )
        self.sent_frames = Counter(
            "voxlive_sent_frames", "WebSocket messages (frames) sent to clients.", registry=r
        )
        self.send_stalls = Counter(
            "voxlive_send_stalls",
            "Times a session's outbox went over send_buffer_bytes (its synthesis paused).",
            registry=r,
        )
        self.slow_consumer_closes = Counter(
            "voxlive_slow_consumer_closes",
            "Sessions closed for not reading (4008).",
            registry=r,
        )

    def render(self) -> bytes:
        """Every figure, in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    # -- event loop thread ---------------------------------------------------------

    def finished(self, report: Finished) -> None:
        """Count an utterance that sent its ``done``."""
        self.audio_seconds.inc(report.audio_s)
        self.utterances_by_status.labels(report.status).inc()
        self.utterances.labels(report.status).inc()
        if report.error_code is not None:
            self.errors.labels(report.error_code).inc()
        if report.first_audio_s is not None:
            self.first_audio.observe(report.first_audio_s)
        if report.status == "completed":
            self.latency.observe(report.total_s)
            if report.rtf is not None:
                self.rtf.observe(report.rtf)

    def sent(self, message: bytes | str) -> None:
        """A WebSocket message went to the socket (binary, or text sent as UTF-8)."""
        self.sent_bytes.inc(len(message) if isinstance(message, bytes) else len(message.encode()))
        self.sent_frames.inc()

    # -- engine thread (the batcher's BatchObserver) ---------------------------------

    def begun(self, waits_s: Sequence[float], seconds: float) -> None:
        """Sentences began together after waiting ``waits_s`` in the queue."""
        for wait_s in waits_s:
            self.queue_wait.observe(wait_s)
        self.begin_time.observe(seconds)

    def stepped(self, streams: int, fill: float, seconds: float) -> None:
        """One decoder step over ``streams`` streams, ``fill`` of the step budget."""
        self.batch_streams.observe(streams)
        self.batch_fill.observe(fill)
        self.step_time.observe(seconds)


class _StateCollector(Collector):
    """The :data:`STATE` figures, from the app at scrape time."""

    def __init__(self, state: Callable[[], Mapping[str, float]]) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        values = self._state()
        for name, kind, doc in STATE:
            if name not in values:
                continue
            if kind == "counter":
                yield CounterMetricFamily(name, doc, value=values[name])
            else:
                yield GaugeMetricFamily(name, doc, value=values[name])


class _WorkDepthCollector(Collector):
    """The work streams' depth by priority (gateways and workers; the autoscaler's input)."""

    def __init__(self, depth: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
        self._depth = depth

    def collect(self) -> Iterable[Metric]:
        depth = self._depth()
        if not depth:
            return
        waiting = GaugeMetricFamily(
            "voxlive_work_queue_waiting",
            "Sentences on a work stream not yet taken by a worker (every gateway's).",
            labels=["priority"],
        )
        pending = GaugeMetricFamily(
            "voxlive_work_queue_pending",
            "Sentences taken by a worker and not yet delivered whole.",
            labels=["priority"],
        )
        for priority, (w, p) in depth.items():
            waiting.add_metric([priority], w)
            pending.add_metric([priority], p)
        yield waiting
        yield pending


class _CpuCollector(Collector):
    """``process_cpu_seconds_total`` where there is no ``/proc`` (ProcessCollector's source)."""

    def collect(self) -> Iterable[Metric]:
        # Every thread of the process: event loop, engine, front end, torch's workers.
        yield CounterMetricFamily(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            value=time.process_time(),
        )


class CudaApi(Protocol):
    """The part of ``torch.cuda`` the GPU figures read (a stand-in in tests)."""

    def is_available(self) -> bool: ...
    def current_device(self) -> int: ...
    def memory_allocated(self, device: int) -> int: ...
    def memory_reserved(self, device: int) -> int: ...
    def utilization(self, device: int) -> int: ...


class GpuCollector(Collector):
    """GPU memory (torch's allocator) and utilisation of a CUDA server; nothing elsewhere.

    Args:
        device: the engine's device (``cpu``, ``cuda``, ``cuda:N``).
        cuda: ``torch.cuda`` (the default) or a stand-in.
    """

    def __init__(self, device: str, cuda: CudaApi | None = None) -> None:
        self.device = device
        self._cuda = cuda
        self._no_utilization = False

    def collect(self) -> Iterable[Metric]:
        if not self.device.startswith("cuda"):
            return
        cuda = self._cuda or _torch_cuda()
        if not cuda.is_available():
            return
        _, _, number = self.device.partition(":")
        index = int(number) if number else cuda.current_device()
        readings = [float(cuda.memory_allocated(index)), float(cuda.memory_reserved(index))]
        if not self._no_utilization:
            try:
                readings.append(cuda.utilization(index) / 100)
            except Exception:  # NVML missing (no pynvml) or not answering
                logger.warning("GPU utilisation is not served: NVML did not answer", exc_info=True)
                self._no_utilization = True
        for name, value in zip(GPU_METRICS, readings, strict=False):
            family = GaugeMetricFamily(name, _GPU_HELP[name], labels=["device"])
            family.add_metric([f"cuda:{index}"], value)
            yield family


def _torch_cuda() -> CudaApi:
    import torch

    return torch.cuda
