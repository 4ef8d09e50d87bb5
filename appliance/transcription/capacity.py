"""How many jobs run at once on each device, and how many CPU threads each of them uses.

On a CPU, one job rarely keeps every core busy: voice detection, feature extraction and the Python
between model calls run on one core, and Whisper's small decoder matrices scale poorly across
threads. Several jobs with fewer threads each fill the cores instead (measured in docs/benchmarks.md:
on 2 cores, 2 jobs x 1 thread transcribe about 14% more audio per second than 1 job x 2 threads).
On a GPU the default is two jobs per device. Measured on an H200 (docs/benchmarks.md, "One GPU: batches
and replicas"; a large-v3-turbo-shaped model, float16): a second replica transcribes 1.36x the audio of
one when jobs arrive together, for 2.2 GB more GPU memory, which any card that holds the model once holds
twice; four gave 1.69x for four times the memory, so two is the default and more is a setting. Inside one
job, windows batched in one call do far more (3.15x at 8), which faster-whisper's batched pipeline does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from appliance.core.config import ModelSettings, Settings, WorkerSettings

MAX_THREADS_PER_JOB = 4  # CTranslate2's own default cap; more threads per job buy little
MAX_AUTO_WORKERS = 8  # each job in flight holds its audio and features in memory
GPU_AUTO_WORKERS = 2  # replicas per GPU unless set (measured: see the module's docstring)


@dataclass(frozen=True)
class Plan:
    workers_per_device: int
    cpu_threads: int  # per job; 0 lets CTranslate2 choose (it does so on a GPU)


def cpu_cores() -> int:
    """The cores this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def plan(models: ModelSettings, worker: WorkerSettings, device: str, cores: int) -> Plan:
    """Resolve `workers_per_device = 0` and `cpu_threads = 0` (auto) for this device and core count."""
    workers, threads = worker.workers_per_device, models.cpu_threads
    if device != "cpu":
        return Plan(workers or GPU_AUTO_WORKERS, threads)
    cores = max(1, cores)
    if workers and not threads:
        threads = max(1, cores // workers)
    elif threads and not workers:
        workers = max(1, min(MAX_AUTO_WORKERS, cores // threads))
    elif not workers:
        threads = max(1, min(MAX_THREADS_PER_JOB, cores // 2))
        workers = max(1, min(MAX_AUTO_WORKERS, cores // threads))
    return Plan(workers, threads)


def for_settings(settings: Settings) -> Plan:
    from appliance.transcription.asr import resolve_device

    device, _ = resolve_device(settings.models)
    return plan(settings.models, settings.worker, device, cpu_cores())
