"""The transcription pipeline over bytes in memory: decode once, run each requested model, then
(optionally) diarize once and give every model's words their speakers.

Shared by the worker (API jobs) and the CLI (offline, no server), so both give the same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.transcription.asr import AsrResult, CancelFn, Cancelled, ModelInfo, Recognizer
from appliance.transcription.audio import decode
from appliance.transcription.diarization import DiarizationError, Turn
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.diarization.merge import Speaker, assign
from appliance.transcription.options import JobOptions
from appliance.transcription.segmentation import resegment

DIARIZATION_WEIGHT = 0.35  # share of one model's ASR time diarization is expected to take (for progress/ETA)


@dataclass(frozen=True)
class Progress:
    stage: str  # decoding | transcribing | diarizing
    fraction: float  # 0..1 of the whole job
    duration: float | None  # audio seconds, once known
    eta_seconds: float | None


@dataclass
class ModelOutput:
    model: ModelInfo
    result: AsrResult
    timings: dict[str, float]
    speakers: list[Speaker] = field(default_factory=list)
    diarization: dict[str, object] | None = None
    turns: list[Turn] = field(default_factory=list)  # the engine's own turns, before merging


ProgressSink = Callable[[Progress], None]


def run(
    data: bytes,
    options: JobOptions,
    recognizer: Recognizer,
    progress: ProgressSink,
    cancelled: CancelFn,
    engines: DiarizationEngines | None = None,
    on_text: Callable[[str], None] | None = None,
    *,
    max_seconds: float | None = None,
    reserve: Callable[[int], None] = lambda nbytes: None,
) -> list[ModelOutput]:
    """Decode the bytes once, transcribe with each model in turn, diarize once, merge.

    `on_text` hears each segment's text as the first model decodes it (for streaming clients).
    """
    started = time.perf_counter()
    progress(Progress("decoding", 0.0, None, None))
    diarizer = None
    if options.diarization is not None:
        if engines is None:
            raise DiarizationError("diarization was asked for, but this appliance has no diarization engines")
        diarizer = engines.get(options.diarization.engine)
    audio = decode(data, keep_channels=getattr(diarizer, "needs_channels", False), max_seconds=max_seconds, reserve=reserve)
    decode_seconds = time.perf_counter() - started
    duration = audio.duration
    units = len(options.models) + (DIARIZATION_WEIGHT if diarizer else 0.0)
    outputs: list[ModelOutput] = []
    asr_started = time.perf_counter()
    for index, model in enumerate(options.models):
        model_started = time.perf_counter()

        def on_audio_done(seconds: float, text: str = "", index: int = index) -> None:
            if text and on_text is not None and index == 0:
                on_text(text)
            done = seconds / duration if duration > 0 else 1.0
            fraction = (index + done) / units
            elapsed = time.perf_counter() - asr_started
            eta = elapsed / fraction * (1 - fraction) if fraction > 0.02 else None
            progress(Progress("transcribing", fraction, duration, eta))

        progress(Progress("transcribing", index / units, duration, None))
        result = recognizer.transcribe(model, audio.samples, options.asr, on_audio_done, cancelled)
        timings = {
            "decode_seconds": decode_seconds,
            "asr_seconds": time.perf_counter() - model_started,
            "audio_seconds": duration,
        }
        if options.sentences and diarizer is None:  # with a speaker engine, assign() does it with the turns
            result.segments = resegment(result.segments, result.language)
        outputs.append(ModelOutput(model, result, timings))

    if diarizer is not None and options.diarization is not None:
        if cancelled():
            raise Cancelled()
        done_fraction = len(options.models) / units
        per_unit = (time.perf_counter() - asr_started) / max(len(options.models), 1)
        progress(Progress("diarizing", done_fraction, duration, per_unit * DIARIZATION_WEIGHT))
        diarize_started = time.perf_counter()
        source = audio.channels if getattr(diarizer, "needs_channels", False) else audio.samples
        assert source is not None  # decode keeps the channels whenever the diarizer asks for them
        turns = diarizer.diarize(source, options.diarization)
        seconds = time.perf_counter() - diarize_started
        for out in outputs:
            out.result.segments, out.speakers = assign(
                out.result.segments, turns, out.result.language, sentences=options.sentences
            )
            out.timings["diarize_seconds"] = seconds
            out.diarization = {"engine": diarizer.name, "speakers": len(out.speakers), "turns": len(turns)}
            out.turns = turns
    progress(Progress("done", 1.0, duration, 0.0))
    return outputs
