"""The pyannote engine: pyannote.audio 4 with a community-1 pipeline directory, loaded by local path.

torch and pyannote are imported on first use only, so an appliance without them still starts.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from appliance.transcription.diarization.base import DiarizationError, DiarizationOptions, Diarized, Turn

SAMPLE_RATE = 16_000
REQUIRED = ("config.yaml",)


class PyannoteDiarizer:
    name = "pyannote"

    def __init__(self, pipeline_dir: Path, device: str = "auto") -> None:
        self.pipeline_dir = pipeline_dir
        self.device = device
        self._pipeline: Any = None
        self._lock = threading.Lock()

    def available(self) -> str | None:
        missing = [f for f in REQUIRED if not (self.pipeline_dir / f).is_file()]
        if missing:
            return f"no pyannote pipeline is installed (expected {self.pipeline_dir}/config.yaml; see models/README.md)"
        import importlib.util

        if importlib.util.find_spec("pyannote.audio") is None:
            return "pyannote.audio is not installed in this appliance (pip install 'sotto-appliance[pyannote]')"
        return None

    def load(self) -> Any:
        with self._lock:
            if self._pipeline is None:
                problem = self.available()
                if problem:
                    raise DiarizationError(problem)
                # pyannote 4 reports usage metrics unless told not to; this appliance never phones home.
                os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
                os.environ["HF_HUB_OFFLINE"] = "1"
                from appliance.transcription import weights

                try:  # a pack's files against its signed manifest, before torch unpickles any of them
                    weights.check_model_dir(self.pipeline_dir)
                except weights.WeightsRefused as exc:
                    raise DiarizationError(str(exc)) from None
                import torch
                from pyannote.audio import Pipeline

                pipeline = Pipeline.from_pretrained(self.pipeline_dir)
                if pipeline is None:
                    raise DiarizationError(f"the pyannote pipeline in {self.pipeline_dir} could not be loaded")
                device = self.device
                if device == "auto":
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                pipeline.to(torch.device(device))
                self._pipeline = pipeline
            return self._pipeline

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        return self.diarize_voices(audio, options).turns

    def diarize_voices(self, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        import torch

        pipeline = self.load()
        # The waveform is passed in memory: pyannote never sees a file.
        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :]
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
