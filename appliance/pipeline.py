"""The transcription pipeline over bytes in memory: decode once, run each requested model.

Shared by the worker (API jobs) and the CLI (offline, no server), so both give the same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.asr import AsrResult, CancelFn, ModelInfo, Recognizer
from appliance.audio import decode
from appliance.options import JobOptions


@dataclass(frozen=True)
class Progress:
    stage: str  # decoding | transcribing
    fraction: float  # 0..1 of the whole job
    duration: float | None  # audio seconds, once known
    eta_seconds: float | None


@dataclass
class ModelOutput:
    model: ModelInfo
    result: AsrResult
    timings: dict[str, float]


ProgressSink = Callable[[Progress], None]


def run(
    data: bytes, options: JobOptions, recognizer: Recognizer, progress: ProgressSink, cancelled: CancelFn
) -> list[ModelOutput]:
    """Decode the bytes once, then transcribe with each model in turn."""
    started = time.perf_counter()
    progress(Progress("decoding", 0.0, None, None))
    audio = decode(data)
    decode_seconds = time.perf_counter() - started
    duration = audio.duration
    outputs: list[ModelOutput] = []
    total = len(options.models)
    for index, model in enumerate(options.models):
        model_started = time.perf_counter()

        def on_audio_done(seconds: float, index: int = index, model_started: float = model_started) -> None:
            done = seconds / duration if duration > 0 else 1.0
            fraction = (index + done) / total
            elapsed = time.perf_counter() - model_started
            # Remaining audio at the pace this model has shown so far, plus the models still to run.
            eta = elapsed / done * (1 - done) + elapsed / done * (total - index - 1) if done > 0.02 else None
            progress(Progress("transcribing", fraction, duration, eta))

        progress(Progress("transcribing", index / total, duration, None))
        result = recognizer.transcribe(model, audio.samples, options.asr, on_audio_done, cancelled)
        timings = {
            "decode_seconds": decode_seconds,
            "asr_seconds": time.perf_counter() - model_started,
            "audio_seconds": duration,
        }
        outputs.append(ModelOutput(model, result, timings))
    return outputs
