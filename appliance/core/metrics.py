"""Prometheus metrics for one appliance: a registry of its own (no globals), filled by the worker and
read from the database and the audio vault at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

RTF_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True)
class NodeGauge:
    """Cluster mode: one worker node as the control node last saw it."""

    name: str
    up: bool
    replicas: int
    busy: int
    gpu_memory: tuple[tuple[str, int, int], ...]  # (GPU index, used bytes, total bytes)


class _Live(Collector):
    """Values that are read, not counted: jobs by state, queue depth, audio bytes held, GPU memory."""

    def __init__(
        self,
        jobs_by_state: Callable[[], dict[str, int]],
        audio_bytes: Callable[[], int],
        gpu_memory: Callable[[], list[tuple[str, int]]],
        cluster_nodes: Callable[[], list[NodeGauge]],
    ) -> None:
        self.jobs_by_state = jobs_by_state
        self.audio_bytes = audio_bytes
        self.gpu_memory = gpu_memory
        self.cluster_nodes = cluster_nodes

    def collect(self) -> Iterator[Any]:
        states = self.jobs_by_state()
        jobs = GaugeMetricFamily("sotto_jobs", "Jobs in the database by state", labels=["state"])
        for state in ("queued", "running", "done", "failed", "cancelled"):
            jobs.add_metric([state], states.get(state, 0))
        yield jobs
        yield GaugeMetricFamily("sotto_queue_depth", "Jobs waiting for a worker", value=states.get("queued", 0))
        yield GaugeMetricFamily("sotto_audio_bytes_in_memory", "Upload bytes held in RAM", value=self.audio_bytes())
        gpu = GaugeMetricFamily("sotto_gpu_memory_used_bytes", "GPU memory in use (CUDA only)", labels=["gpu"])
        for name, used in self.gpu_memory():
            gpu.add_metric([name], used)
        yield gpu
        yield from _cluster(self.cluster_nodes())
        yield from _egress_lock()


def _cluster(nodes: list[NodeGauge]) -> Iterator[Any]:
    if not nodes:
        return
    up = GaugeMetricFamily("sotto_cluster_node_up", "1 when a worker node is connected and not drained", labels=["node"])
    replicas = GaugeMetricFamily("sotto_cluster_node_replicas", "Model replicas on a worker node", labels=["node"])
    running = GaugeMetricFamily("sotto_cluster_node_jobs_running", "Jobs running on a worker node", labels=["node"])
    used = GaugeMetricFamily("sotto_cluster_node_gpu_memory_used_bytes", "GPU memory in use", labels=["node", "gpu"])
    total = GaugeMetricFamily("sotto_cluster_node_gpu_memory_total_bytes", "GPU memory", labels=["node", "gpu"])
    for node in nodes:
        up.add_metric([node.name], 1 if node.up else 0)
        replicas.add_metric([node.name], node.replicas)
        running.add_metric([node.name], node.busy)
        for index, in_use, size in node.gpu_memory:
            used.add_metric([node.name, index], in_use)
            total.add_metric([node.name, index], size)
    yield from (up, replicas, running, used, total)


def _egress_lock() -> Iterator[Any]:
    from appliance.core import egress_lock

    lock = egress_lock.state()
    yield GaugeMetricFamily(
        "sotto_egress_lock_active", "1 when the kernel egress lock holds this process", value=1 if lock.active else 0
    )
    refused = lock.refused
    if refused is not None:
        yield CounterMetricFamily("sotto_egress_refused", "Network sockets the egress lock refused since start", value=refused)


class Metrics:
    def __init__(
        self,
        jobs_by_state: Callable[[], dict[str, int]],
        audio_bytes: Callable[[], int],
        gpu_memory: Callable[[], list[tuple[str, int]]] = lambda: [],
        cluster_nodes: Callable[[], list[NodeGauge]] = lambda: [],
    ) -> None:
        self.registry = CollectorRegistry()
        self.audio_seconds = Counter(
            "sotto_audio_seconds_total", "Seconds of audio transcribed", ["model"], registry=self.registry
        )
        self.jobs_finished = Counter(
            "sotto_jobs_finished_total", "Jobs that ended, by outcome", ["state"], registry=self.registry
        )
        self.rtf = Histogram(
            "sotto_real_time_factor", "ASR seconds per audio second", ["model"], buckets=RTF_BUCKETS, registry=self.registry
        )
        self.queue_wait = Histogram(
            "sotto_queue_wait_seconds",
            "Time from upload to a worker starting the job",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Live(jobs_by_state, audio_bytes, gpu_memory, cluster_nodes))

    def job_started(self, waited_seconds: float) -> None:
        self.queue_wait.observe(max(0.0, waited_seconds))

    def job_finished(self, state: str) -> None:
        self.jobs_finished.labels(state).inc()

    def transcribed(self, model: str, audio_seconds: float, asr_seconds: float) -> None:
        self.audio_seconds.labels(model).inc(audio_seconds)
        if audio_seconds > 0:
            self.rtf.labels(model).observe(asr_seconds / audio_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def gpu_memory() -> list[tuple[str, int]]:
    """Used memory per NVIDIA GPU via NVML; empty without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        return [
            (str(i), int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used))
            for i in range(pynvml.nvmlDeviceGetCount())
        ]
    finally:
        pynvml.nvmlShutdown()
