"""``/metrics``: what a real server (tiny voice) counts, in the Prometheus text format,
and the Grafana dashboard that reads it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voxlive.bench.server_metrics import parse_metrics
from voxlive.protocol.codec import decode_server, encode_client
from voxlive.protocol.messages import AudioSpec, Done, Hello, Speak, SpeakOptions
from voxlive.protocol.types import CloseCode
from voxlive.server.metrics import GPU_METRICS, GpuCollector, Metrics

from .harness import run, run_server, url

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Thanks for the follow!", "Good game, everyone. See you tomorrow."]
OLD_NAMES = (
    "process_cpu_seconds_total",
    "audio_seconds_total",
    "engine_begin_seconds_total",
    "engine_step_seconds_total",
    "engine_begin_calls_total",
    "engine_sentences_begun_total",
    "engine_steps_total",
    "engine_streams_stepped_total",
    "voice_cache_hits",
    "voice_cache_misses",
    "voice_store_hits",
    "voice_store_misses",
    "voice_registrations_inflight",
    "connections",
    "utterances_inflight",
    "queued",
    "active",
)


@dataclass
class Scrape:
    content_type: str
    body: str
    dones: dict[str, Done]
    received: int
    """WebSocket messages the client received (welcome included)."""
    received_bytes: int

    @property
    def values(self) -> dict[str, float]:
        return parse_metrics(self.body)


def get(port: int, path: str = "/metrics") -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.headers["Content-Type"], r.read().decode()


def speak(uid: str, text: str, **options) -> bytes | str:
    return encode_client(Speak(id=uid, text=text, options=SpeakOptions(**options)))


async def speak_and_scrape(app) -> Scrape:
    """Two utterances and one refused for an unknown voice, then a scrape."""
    ws = await connect(url(app), max_size=None)
    await ws.send(encode_client(Hello(version=1, audio=AudioSpec())))
    raw = [await ws.recv()]
    for k, text in enumerate(TEXTS):
        await ws.send(speak(f"u{k}", text, seed=k))
    await ws.send(speak("nobody", "Hello.", voice="nobody-registered-this"))
    dones: dict[str, Done] = {}
    async with asyncio.timeout(60):
        while len(dones) < 3:
            raw.append(await ws.recv())
            msg = decode_server(raw[-1])
            if isinstance(msg, Done):
                dones[msg.id] = msg
    content_type, body = await asyncio.to_thread(get, app.port)
    await ws.close()
    size = sum(len(m) if isinstance(m, bytes) else len(m.encode()) for m in raw)
    return Scrape(content_type, body, dones, len(raw), size)


@pytest.fixture(scope="module")
def scrape(tiny_server_voice) -> Scrape:
    async def main():
        async with run_server(tiny_server_voice) as app:
            return await speak_and_scrape(app)

    return run(main())


def test_metrics_are_served_in_the_prometheus_text_format(scrape):
    assert scrape.content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(scrape.body)}
    assert families["voxlive_first_audio_seconds"].type == "histogram"
    assert families["voxlive_utterances"].type == "counter"
    assert families["voxlive_sessions"].type == "gauge"


def test_utterances_are_counted_by_status_and_error_code(scrape):
    values = scrape.values
    statuses = {uid: d.status for uid, d in scrape.dones.items()}
    assert statuses == {"u0": "completed", "u1": "completed", "nobody": "failed"}
    assert values['voxlive_utterances_total{status="completed"}'] == 2
    assert values['voxlive_utterances_total{status="failed"}'] == 1
    assert values['voxlive_utterances_total{status="expired"}'] == 0  # served before any
    assert values['voxlive_utterance_errors_total{code="unknown_voice"}'] == 1
    assert [k for k in values if k.startswith("voxlive_utterance_errors_total")] == [
        'voxlive_utterance_errors_total{code="unknown_voice"}'
    ]
    # The names served before prometheus-client, with the same figures.
    assert values['utterances_total{status="completed"}'] == 2
    assert values['utterances_total{status="failed"}'] == 1
    samples = sum(d.samples for d in scrape.dones.values())
    assert values["audio_seconds_total"] == pytest.approx(samples / 22050, abs=1e-4)


def test_latency_and_real_time_factor_histograms_hold_each_completed_utterance(scrape):
    values = scrape.values
    completed = [d for d in scrape.dones.values() if d.status == "completed"]
    # The failed one made no audio: only the two completed ones had a first frame.
    assert values["voxlive_first_audio_seconds_count"] == 2
    first_s = sum(d.first_audio_ms for d in completed) / 1000
    assert values["voxlive_first_audio_seconds_sum"] == pytest.approx(first_s, abs=1e-6)
    assert values["voxlive_rtf_count"] == 2
    assert values["voxlive_rtf_sum"] == pytest.approx(sum(d.rtf for d in completed), rel=1e-6)
    assert values["voxlive_utterance_seconds_count"] == 2
    assert values["voxlive_utterance_seconds_sum"] >= first_s
    assert values['voxlive_first_audio_seconds_bucket{le="+Inf"}'] == 2
    assert values['voxlive_first_audio_seconds_bucket{le="0.01"}'] <= 2


def test_queue_and_batch_figures_match_the_engine_totals(scrape):
    values = scrape.values
    begun = values["engine_sentences_begun_total"]
    steps = values["engine_steps_total"]
    assert begun >= 3  # "Good game, everyone. See you tomorrow." is two sentences
    assert values["voxlive_queue_wait_seconds_count"] == begun
    assert values["voxlive_engine_begin_seconds_count"] == values["engine_begin_calls_total"]
    assert values["voxlive_batch_streams_count"] == steps
    assert values["voxlive_batch_streams_sum"] == values["engine_streams_stepped_total"]
    assert values["voxlive_batch_fill_ratio_count"] == steps
    assert values["voxlive_batch_fill_ratio_sum"] > 0
    assert values["voxlive_engine_step_seconds_count"] == steps
    assert values["voxlive_queue_depth"] == 0 and values["queued"] == 0


def test_sessions_and_what_was_sent_are_counted(scrape):
    values = scrape.values
    assert values["voxlive_sessions_opened_total"] == 1
    assert values["voxlive_sessions"] == 1 and values["connections"] == 1
    assert values["voxlive_event_loop_tasks"] >= 2  # the server's, the session's at least
    # Everything the server sent had arrived before the scrape.
    assert values["voxlive_sent_frames_total"] == scrape.received
    assert values["voxlive_sent_bytes_total"] == scrape.received_bytes
    assert values["voxlive_send_stalls_total"] == 0
    assert values["voxlive_slow_consumer_closes_total"] == 0


def test_every_older_name_is_still_served_and_process_figures_are_there(scrape):
    values = scrape.values
    assert [name for name in OLD_NAMES if name not in values] == []
    assert values["process_cpu_seconds_total"] > 0
    assert values["process_resident_memory_bytes"] > 10 * 2**20
    assert not [k for k in values if k.endswith("_created")]  # parse_metrics drops them
    assert "_created" in scrape.body  # prometheus-client does write them


def test_a_cpu_server_serves_no_gpu_figures(scrape):
    assert "voxlive_gpu" not in scrape.body


def test_two_servers_in_one_process_count_apart(tiny_server_voice):
    async def main():
        async with run_server(tiny_server_voice) as a, run_server(tiny_server_voice) as b:
            await speak_and_scrape(a)
            return parse_metrics((await asyncio.to_thread(get, b.port))[1])

    other = run(main())
    assert other['voxlive_utterances_total{status="completed"}'] == 0
    assert other["voxlive_sessions_opened_total"] == 0
    assert other["voxlive_first_audio_seconds_count"] == 0
    assert 'utterances_total{status="completed"}' not in other


@pytest.mark.tiny_voice
def test_a_client_that_stops_reading_counts_a_stall_and_a_close(server_voice):
    long_text = " ".join(["The old library opens early in the morning, every day."] * 12)

    async def main():
        # 4 × 256 KiB is more than any one chunk at 48 kHz f32: the outbox goes over
        # the buffer (a stall) before the session is closed, on time or for size.
        overrides = {"send_buffer_bytes": 256 * 1024, "slow_consumer_timeout_s": 0.5}
        async with run_server(server_voice, **overrides) as app:
            # After hello the client stops reading: the kernel's buffers fill (ours is
            # made small), then the session's outbox.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.connect(("127.0.0.1", app.port))
            slow = await connect(url(app), sock=sock, max_queue=1)
            spec = AudioSpec(sample_rate=48000, format="f32le")
            await slow.send(encode_client(Hello(version=1, audio=spec)))
            await slow.recv()
            for k in range(8):
                await slow.send(speak(f"flood{k}", long_text))
            async with asyncio.timeout(120):
                while True:
                    values = parse_metrics((await asyncio.to_thread(get, app.port))[1])
                    if values["voxlive_slow_consumer_closes_total"]:
                        break
                    await asyncio.sleep(0.1)
            try:
                async with asyncio.timeout(30):
                    while True:
                        await slow.recv()
            except ConnectionClosed:
                pass
            return values, slow.close_code

    values, code = run(main())
    assert code == CloseCode.SLOW_CONSUMER
    assert values["voxlive_send_stalls_total"] >= 1
    assert values["voxlive_slow_consumer_closes_total"] == 1


class FakeCuda:
    """``torch.cuda`` as the GPU figures read it."""

    def __init__(self, available: bool = True, nvml: bool = True) -> None:
        self.available = available
        self.nvml = nvml
        self.asked: list[int] = []

    def is_available(self) -> bool:
        return self.available

    def current_device(self) -> int:
        return 0

    def memory_allocated(self, device: int) -> int:
        self.asked.append(device)
        return 3 * 2**30

    def memory_reserved(self, device: int) -> int:
        return 4 * 2**30

    def utilization(self, device: int) -> int:
        if not self.nvml:
            raise ModuleNotFoundError("pynvml")
        return 85


def gpu_samples(collector: GpuCollector) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels["device"]): s.value for f in collector.collect() for s in f.samples}


def test_gpu_figures_are_absent_without_cuda():
    assert gpu_samples(GpuCollector("cuda", FakeCuda(available=False))) == {}
    assert gpu_samples(GpuCollector("cpu", FakeCuda())) == {}


def test_gpu_figures_come_from_torch_on_the_servers_cuda_device():
    cuda = FakeCuda()
    assert gpu_samples(GpuCollector("cuda:1", cuda)) == {
        ("voxlive_gpu_memory_allocated_bytes", "cuda:1"): 3 * 2**30,
        ("voxlive_gpu_memory_reserved_bytes", "cuda:1"): 4 * 2**30,
        ("voxlive_gpu_utilization_ratio", "cuda:1"): 0.85,
    }
    assert cuda.asked == [1]
    assert {name for name, _ in gpu_samples(GpuCollector("cuda", cuda))} == set(GPU_METRICS)


def test_gpu_memory_is_served_without_nvml(caplog):
    collector = GpuCollector("cuda", FakeCuda(nvml=False))
    for _ in range(2):
        assert set(gpu_samples(collector)) == {
            ("voxlive_gpu_memory_allocated_bytes", "cuda:0"),
            ("voxlive_gpu_memory_reserved_bytes", "cuda:0"),
        }
    assert len([r for r in caplog.records if "utilisation" in r.getMessage()]) == 1


@pytest.mark.gpu
def test_a_cuda_device_serves_its_memory():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.ones(1024, 1024, device="cuda")
    samples = gpu_samples(GpuCollector("cuda"))
    assert samples[("voxlive_gpu_memory_allocated_bytes", "cuda:0")] >= x.numel() * 4
    assert samples[("voxlive_gpu_memory_reserved_bytes", "cuda:0")] >= x.numel() * 4


def test_parse_metrics_reads_prometheus_client_output_and_drops_created_samples():
    metrics = Metrics(lambda: {"queued": 3, "engine_steps_total": 7})
    metrics.audio_seconds.inc(1.5)
    metrics.sent(b"abcd")
    values = parse_metrics(metrics.render().decode())
    assert values["queued"] == 3 and values["engine_steps_total"] == 7
    assert values["audio_seconds_total"] == 1.5
    assert values["voxlive_sent_bytes_total"] == 4 and values["voxlive_sent_frames_total"] == 1
    assert "audio_seconds_created" not in values
    assert 'voxlive_utterances_created{status="completed"}' not in values
    text = "# TYPE x_created gauge\nx_created 5\n# TYPE y counter\ny_total 1\ny_created 9\n"
    assert parse_metrics(text) == {"x_created": 5.0, "y_total": 1.0}


# -- the Grafana dashboard and the Prometheus example -----------------------------------

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "le", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # dashboard variables
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        if m.group(2) is None and m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))  # not a function's name
    return names


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_metric_names_are_found_in_promql():
    expr = (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(voxlive_rtf_bucket{job="x"}[$__rate_interval])))'
        " / on() group_left sum(voxlive_sessions) + process_cpu_seconds_total offset 5m"
    )
    assert metric_names(expr) == {
        "voxlive_rtf_bucket",
        "voxlive_sessions",
        "process_cpu_seconds_total",
    }


def test_the_dashboard_is_a_grafana_model_on_a_prometheus_input():
    board = json.loads(DASHBOARD.read_text())
    assert board["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert isinstance(board["schemaVersion"], int) and board["title"] and board["uid"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["refId"]


def test_the_dashboard_reads_only_what_the_server_serves(scrape):
    served = {s.name for f in text_string_to_metric_families(scrape.body) for s in f.samples}
    served |= set(GPU_METRICS)  # served by a CUDA server (see GpuCollector)
    read = set().union(*(metric_names(e) for e in dashboard_exprs()))
    assert read - served == set()
    # Panels for each figure the issue asks for.
    for name in (
        "voxlive_utterances_total",
        "voxlive_first_audio_seconds_bucket",
        "voxlive_utterance_seconds_bucket",
        "voxlive_rtf_bucket",
        "voxlive_queue_depth",
        "voxlive_queue_wait_seconds_bucket",
        "voxlive_batch_streams_bucket",
        "voxlive_batch_fill_ratio_bucket",
        "voxlive_voice_cache_hits_total",
        "voxlive_sessions",
        "voxlive_sent_bytes_total",
        "voxlive_send_stalls_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        *GPU_METRICS,
    ):
        assert name in read, name


def test_the_prometheus_example_scrapes_metrics():
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    assert re.search(r"^\s*metrics_path:\s*/metrics\s*$", text, re.M)
    assert re.search(r"^\s*- job_name:\s*voxlive\s*$", text, re.M)
    assert re.search(r"targets:\s*\[\s*\"?[\w.-]+:8765\"?", text)
