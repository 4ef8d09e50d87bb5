"""A model replica on a worker node: the transcription pipeline (recognition and speaker detection) over
a recording handed to it in memory, with its models loaded once and kept.

It runs as a Ray actor (the dispatcher wraps this class with `ray.remote`), in a process the node's
raylet starts with the node's own environment: its settings (models dir, device, threads) are the
node's, read from its APPLIANCE_* variables and config file, not the control node's. With a GPU, Ray
hands the replica one (CUDA_VISIBLE_DEVICES), so every engine of the replica (Whisper, pyannote) runs
on that GPU: the replicas of a node with several GPUs use all of them.

Progress, text as it is heard and cancellation cross by polling (`poll`, `cancel`): the actor runs
several calls at once (max_concurrency), so they are answered while `run` works.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from appliance.core import config, memory
from appliance.transcription import pipeline
from appliance.transcription.asr import ModelRegistry, WhisperEngine
from appliance.transcription.capacity import MAX_THREADS_PER_JOB, cpu_cores
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.options import parse


@dataclass(frozen=True)
class GpuMemory:
    index: str
    used: int
    total: int


@dataclass(frozen=True)
class Health:
    node: str
    pid: int
    device: str  # cpu | cuda
    busy: bool
    jobs_done: int
    gpus: tuple[GpuMemory, ...]


@dataclass
class Poll:
    progress: pipeline.Progress | None
    texts: list[str] = field(default_factory=list)


@dataclass
class _Running:
    progress: pipeline.Progress | None = None
    texts: list[str] = field(default_factory=list)
    cancelled: bool = False


class Replica:
    def __init__(self, node: str, slots: int) -> None:
        self.node = node
        self.settings = config.load()
        self.registry = ModelRegistry(self.settings.models.models_dir)
        # One job at a time per replica: its CPU threads are this node's cores shared among its replicas.
        threads = self.settings.models.cpu_threads or max(1, min(MAX_THREADS_PER_JOB, cpu_cores() // max(1, slots)))
        self.recognizer = WhisperEngine(self.settings.models, num_workers=1, cpu_threads=threads)
        self.engines = DiarizationEngines(self.settings)
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._done = 0

    def ready(self) -> Health:
        """Load the default model now, so the first job does not wait for it (and a broken model shows here)."""
        self.recognizer.load(self.registry.get(self.settings.models.default_model))
        return self.health()

    def run(self, job_id: str, data: bytes, raw: dict[str, object], keep_voices: bool) -> list[pipeline.ModelOutput]:
        state = _Running()
        with self._lock:
            self._running[job_id] = state

        def progress(p: pipeline.Progress) -> None:
            state.progress = p

        def on_text(text: str) -> None:
            with self._lock:
                state.texts.append(text)

        try:
            options = parse(dict(raw), self.settings, self.registry)
            return pipeline.run(
                data,
                options,
                self.recognizer,
                progress,
                lambda: state.cancelled,
                self.engines,
                on_text=on_text,
                max_seconds=self.settings.server.max_audio_seconds,
                keep_voices=keep_voices,
                window_seconds=self.settings.worker.window_seconds,
            )
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._done += 1
            del data
            memory.release()

    def poll(self, job_id: str) -> Poll:
        with self._lock:
            state = self._running.get(job_id)
            if state is None:
                return Poll(None)
            texts, state.texts = state.texts, []
            return Poll(state.progress, texts)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            state = self._running.get(job_id)
            if state is not None:
                state.cancelled = True

    def health(self) -> Health:
        with self._lock:
            busy, done = bool(self._running), self._done
        gpus = gpu_memory()
        return Health(self.node, os.getpid(), "cuda" if gpus else "cpu", busy, done, gpus)


def gpu_memory() -> tuple[GpuMemory, ...]:
    """The memory of the GPUs this replica was given (NVML's indexes are the host's; Ray's
    CUDA_VISIBLE_DEVICES names which), empty on a CPU node or without a driver."""
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if not visible:
        return ()
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return ()
    try:
        found = []
        for index in visible:
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(int(index)))
            found.append(GpuMemory(index, int(info.used), int(info.total)))
        return tuple(found)
    except Exception:
        return ()
    finally:
        pynvml.nvmlShutdown()
