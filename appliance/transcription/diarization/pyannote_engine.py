"""The pyannote engine: pyannote.audio 4 with a community-1 pipeline directory, loaded by local path.

torch and pyannote are imported on first use only, so an appliance without them still starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core.devices import DeviceError, DevicePicker, parse_device
from appliance.transcription.diarization.base import DiarizationError, DiarizationOptions, Diarized, Turn

SAMPLE_RATE = 16_000
REQUIRED = ("config.yaml",)


class PyannoteDiarizer:
    """One pipeline replica per device it runs on. A job is placed by a DevicePicker (the least busy of
    the configured devices, the first among equals), and a device's replica is loaded on its first job
    there: a box with four GPUs that never runs two diarizations at once holds one replica, not four."""

    name = "pyannote"

    def __init__(self, pipeline_dir: Path, device: str = "auto", gpu_count: Callable[[], int] | None = None) -> None:
        self.pipeline_dir = pipeline_dir
        self.device = device
        # How many GPUs are visible; None: torch's count, asked on first use (torch is imported lazily).
        self._gpu_count = gpu_count
        self._picker: DevicePicker | None = None
        self._pipelines: dict[str, Any] = {}
        self._loading: dict[str, threading.Lock] = {}  # per device: one load at a time, others run on
        self._lock = threading.Lock()

    def available(self) -> str | None:
        missing = [f for f in REQUIRED if not (self.pipeline_dir / f).is_file()]
        if missing:
            return f"no pyannote pipeline is installed (expected {self.pipeline_dir}/config.yaml; see models/README.md)"
        import importlib.util

        if importlib.util.find_spec("pyannote.audio") is None:
            return "pyannote.audio is not installed in this appliance (pip install 'sotto-appliance[pyannote]')"
        return None

    def picker(self) -> DevicePicker:
        """The placement of this engine's jobs, made on first use from `diarization.device`."""
        with self._lock:
            if self._picker is None:
                try:
                    spec = parse_device(self.device)
                    count = 0 if spec.kind == "cpu" else self._count_gpus()
                    self._picker = DevicePicker(spec.devices(count))
                except DeviceError as exc:
                    raise DiarizationError(f"diarization.device: {exc}") from None
            return self._picker

    def _count_gpus(self) -> int:
        if self._gpu_count is not None:
            return self._gpu_count()
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0

    def loaded_devices(self) -> list[str]:
        """The devices holding a replica now."""
        with self._lock:
            return list(self._pipelines)

    def load(self, device: str | None = None) -> Any:
        """The pipeline on `device` ("cpu", "cuda:N"; None: the first configured device), loaded there on
        first use."""
        problem = self.available()  # before torch is imported to count GPUs: it may be what is missing
        if problem:
            raise DiarizationError(problem)
        target = device or self.picker().devices[0]
        with self._lock:
            loading = self._loading.setdefault(target, threading.Lock())
        with loading:
            with self._lock:
                pipeline = self._pipelines.get(target)
            if pipeline is None:
                pipeline = self._build()
                place(pipeline, target)
                with self._lock:
                    self._pipelines[target] = pipeline
            return pipeline

    def _build(self) -> Any:
        # pyannote 4 reports usage metrics unless told not to; this appliance never phones home.
        os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
        os.environ["HF_HUB_OFFLINE"] = "1"
        from appliance.transcription import weights

        try:  # a pack's files against its signed manifest, before torch unpickles any of them
            weights.check_model_dir(self.pipeline_dir)
        except weights.WeightsRefused as exc:
            raise DiarizationError(str(exc)) from None
        from pyannote.audio import Pipeline

        pipeline = Pipeline.from_pretrained(self.pipeline_dir)
        if pipeline is None:
            raise DiarizationError(f"the pyannote pipeline in {self.pipeline_dir} could not be loaded")
        return pipeline

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        return self.diarize_voices(audio, options).turns

    def diarize_voices(self, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        import torch

        with self.picker().use() as device:
            pipeline = self.load(device)
            return self._run(pipeline, torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :], audio, options)

    def _run(self, pipeline: Any, waveform: Any, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        # The waveform is passed in memory: pyannote never sees a file.
        kwargs = {
            k: v
            for k, v in (
                ("num_speakers", options.num_speakers),
                ("min_speakers", options.min_speakers),
                ("max_speakers", options.max_speakers),
            )
            if v is not None
        }
        output = pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE}, **kwargs)
        # community-1 also gives an exclusive diarization (one speaker at a time): the right one for words.
        annotation = getattr(output, "exclusive_speaker_diarization", None) or getattr(output, "speaker_diarization", output)
        duration = len(audio) / SAMPLE_RATE  # chunks are padded to 10 s: keep turns inside the recording
        turns = [
            Turn(float(seg.start), min(float(seg.end), duration), str(label))
            for seg, _, label in annotation.itertracks(yield_label=True)
            if seg.start < duration
        ]
        return Diarized(turns, _voices(output))


def place(pipeline: Any, device: str) -> None:
    """Move a loaded pipeline's models to `device` ("cpu", "cuda:N")."""
    import torch

    pipeline.to(torch.device(device))


def _voices(output: Any) -> dict[str, np.ndarray]:
    """community-1 returns one centroid a speaker (`speaker_embeddings`, rows in the order of the
    diarization's labels): the mean its clustering used, made unit length here like the embedded
    engine's. Older pipelines return none."""
    embeddings = getattr(output, "speaker_embeddings", None)
    diarization = getattr(output, "speaker_diarization", None)
    if embeddings is None or diarization is None:
        return {}
    rows = np.asarray(embeddings, dtype=np.float64)
    voices: dict[str, np.ndarray] = {}
    for label, row in zip(diarization.labels(), rows, strict=False):
        norm = float(np.linalg.norm(row))
        if np.isfinite(row).all() and norm > 0:
            voices[str(label)] = (row / norm).astype(np.float32)
    return voices
