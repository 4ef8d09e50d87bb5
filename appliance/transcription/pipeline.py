"""The transcription pipeline over bytes in memory: run each requested model over the recording,
decoded a window at a time (streaming.py), then (optionally) diarize once and give every model's words
their speakers.

Shared by the worker (API jobs) and the CLI (offline, no server), so both give the same result.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.transcription import streaming
from appliance.transcription.asr import AsrOptions, AsrResult, CancelFn, Cancelled, ModelInfo, Recognizer, Segment
from appliance.transcription.audio import SAMPLE_RATE, AudioStream, DecodedAudio, decode
from appliance.transcription.diarization import DiarizationError, Turn
from appliance.transcription.diarization.channel import FRAME, channel_key, check_channels
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.diarization.merge import Speaker, assign, finish
from appliance.transcription.lanes import Lanes
from appliance.transcription.options import JobOptions
from appliance.transcription.segmentation import resegment

DIARIZATION_WEIGHT = 0.35  # share of one model's ASR time diarization is expected to take (for progress/ETA)
WINDOW_SECONDS = 300.0  # decoded audio held per job at once: 19 MB of samples, whatever the recording's length
SETTLE_SECONDS = 1.0  # no time left is estimated from the first burst of segments alone (see TimeLeft)


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
    # Asked for with keep_voices: each transcript speaker's voice embedding, keyed by its S-key. Lives in
    # memory with the audio; the worker stores it only where voice profiles are turned on.
    voices: dict[str, np.ndarray] = field(default_factory=dict)


ProgressSink = Callable[[Progress], None]


def _each_channel(
    recognizer: Recognizer,
    model: ModelInfo,
    channels: np.ndarray,
    options: AsrOptions,
    on_audio_done: Callable[..., None],
    cancelled: CancelFn,
    engine: Any,
) -> AsrResult:
    """One recognition pass per channel, words keyed by channel and interleaved by time. A word heard on
    a channel only as the faint copy of another channel's voice (crosstalk, headset bleed) is dropped."""
    count, samples = channels.shape
    duration = samples / SAMPLE_RATE
    speaking = engine.speaking(channels)
    segments: list[Segment] = []
    results = []
    started = time.perf_counter()
    for ch in range(count):

        def done(seconds: float, text: str = "", ch: int = ch) -> None:
            on_audio_done((ch + seconds / duration) * duration / count if duration else 0.0, text)

        result = recognizer.transcribe(model, channels[ch], options, done, cancelled)
        results.append(result)
        key = channel_key(ch)
        for seg in result.segments:
            words = [dataclasses.replace(w, speaker=key) for w in seg.words if _own(speaking[ch], w.start, w.end)]
            if seg.words and not words:
                continue  # all of it was another channel's voice
            text = "".join(w.word for w in words).strip() if seg.words else seg.text
            start, end = (words[0].start, words[-1].end) if words else (seg.start, seg.end)
            segments.append(dataclasses.replace(seg, start=start, end=end, text=text, words=words, speaker=key))
    segments.sort(key=lambda seg: (seg.start, seg.speaker or ""))
    best = max(results, key=lambda r: (sum(len(s.words) for s in r.segments), r.language_probability or 0.0))
    return AsrResult(segments, best.language, best.language_probability, duration, time.perf_counter() - started)


def _own(speaking: np.ndarray, start: float, end: float) -> bool:
    """Whether a channel's own speaker is talking for at least a third of the word's time."""
    first = int(start / FRAME)
    frames = speaking[first : max(first + 1, int(np.ceil(end / FRAME)))]
    return bool(frames.size) and float(frames.mean()) >= 1 / 3


class TimeLeft:
    """Seconds left, from reports of (seconds since recognition began, fraction of the job done).

    A recogniser decodes a window, or a batch of windows, before it hands out that audio's segments
    together, and each is reported as it is handed out. The first report of such a burst understates
    what is done by up to the whole batch, so elapsed / fraction from it overstated the time left
    several times over (faster-whisper's batched pipeline, tiny.en on a CPU: 48 s shown with 6 s to
    go); and the worker, which writes at most one report per interval, wrote just those first ones.
    At least `fraction` is done at every report, so elapsed / fraction never undercounts the time a
    unit of work takes: the smallest ratio seen (the last report of a burst) is the closest, and the
    work is taken to have gone on at that pace since. The first burst has nothing better to go on,
    so no estimate is made until SETTLE_SECONDS after the first report.
    """

    def __init__(self) -> None:
        self.first: float | None = None
        self.best: tuple[float, float] | None = None  # (elapsed, fraction) with the smallest elapsed / fraction

    def next_model(self) -> None:
        """Each model in a comparison runs at its own pace: its estimate starts from its own reports."""
        self.best = None

    def update(self, elapsed: float, fraction: float) -> float | None:
        if self.first is None:
            self.first = elapsed
        if fraction <= 0.0:
            return None
        if self.best is None or elapsed * self.best[1] < self.best[0] * fraction:
            self.best = (elapsed, fraction)
        if elapsed - self.first < SETTLE_SECONDS:
            return None
        seen_at, seen_done = self.best
        per_unit = seen_at / seen_done
        done = min(1.0, max(fraction, seen_done + (elapsed - seen_at) / per_unit))
        return (1.0 - done) * per_unit


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
    keep_voices: bool = False,
    lanes: Lanes | None = None,
    window_seconds: float = WINDOW_SECONDS,
) -> list[ModelOutput]:
    """Transcribe with each model in turn (the recording decoded a window at a time), diarize once, merge.

    `on_text` hears each segment's text as the first model decodes it (for streaming clients).
    `keep_voices`: also return each speaker's voice embedding (ModelOutput.voices).
    `lanes`: the worker's lanes, which a job running alone borrows to recognise a window in parallel.
    """
    started = time.perf_counter()
    progress(Progress("decoding", 0.0, None, None))
    diarizer = None
    if options.diarization is not None:
        if engines is None:
            raise DiarizationError("diarization was asked for, but this appliance has no diarization engines")
        diarizer = engines.get(options.diarization.engine)
    # The channel engine: each channel recognised on its own (one speaker a channel), so speech that
    # overlaps stays two clean sentences instead of one garbled mix. It needs every channel at once.
    per_channel = bool(getattr(diarizer, "per_channel", False))
    audio: DecodedAudio | None = None
    if per_channel:
        audio = decode(data, keep_channels=True, max_seconds=max_seconds, reserve=reserve)
        check_channels(audio.channels)
    decode_seconds = time.perf_counter() - started
    duration: float | None = audio.duration if audio is not None else None
    units = len(options.models) + (DIARIZATION_WEIGHT if diarizer else 0.0)
    outputs: list[ModelOutput] = []
    asr_started = time.perf_counter()
    time_left = TimeLeft()
    for index, model in enumerate(options.models):
        model_started = time.perf_counter()
        time_left.next_model()
        # Every other path reads the recording a window at a time, once per model (decoding is a small
        # share of recognition, and this keeps a long recording's samples out of memory).
        stream = (
            None if per_channel else AudioStream(data, window_seconds=window_seconds, max_seconds=max_seconds, reserve=reserve)
        )

        def on_audio_done(
            seconds: float,
            text: str = "",
            index: int = index,
            stream: AudioStream | None = stream,
            known: float | None = duration,
        ) -> None:
            if text and on_text is not None and index == 0:
                on_text(text)
            length = known if stream is None else stream.expected_seconds()
            done = min(1.0, seconds / length) if length else 0.0
            fraction = (index + done) / units
            eta = time_left.update(time.perf_counter() - asr_started, fraction)
            progress(Progress("transcribing", fraction, length, eta))

        progress(Progress("transcribing", index / units, duration if stream is None else stream.expected_seconds(), None))
        if audio is not None:
            assert audio.channels is not None and diarizer is not None
            result = _each_channel(recognizer, model, audio.channels, options.asr, on_audio_done, cancelled, diarizer)
        else:
            assert stream is not None
            result = streaming.recognise(recognizer, model, stream, options.asr, on_audio_done, cancelled, lanes)
            decode_seconds = stream.decode_seconds
            duration = stream.seconds
        timings = {
            "decode_seconds": decode_seconds,
            "asr_seconds": time.perf_counter() - model_started,
            "audio_seconds": result.duration,
        }
        if options.sentences and diarizer is None:  # with a speaker engine, assign() does it with the turns
            result.segments = resegment(result.segments, result.language)
        outputs.append(ModelOutput(model, result, timings))
    assert duration is not None

    if diarizer is not None and options.diarization is not None:
        if cancelled():
            raise Cancelled()
        done_fraction = len(options.models) / units
        per_unit = (time.perf_counter() - asr_started) / max(len(options.models), 1)
        progress(Progress("diarizing", done_fraction, duration, per_unit * DIARIZATION_WEIGHT))
        diarize_started = time.perf_counter()
        if audio is None:  # decoded whole again, now that recognition has let go of its windows
            audio = decode(
                data, keep_channels=getattr(diarizer, "needs_channels", False), max_seconds=max_seconds, reserve=reserve
            )
        source = audio.channels if getattr(diarizer, "needs_channels", False) else audio.samples
        assert source is not None  # decode keeps the channels whenever the diarizer asks for them
        if keep_voices:
            found = diarizer.diarize_voices(source, options.diarization)
            turns, engine_voices = found.turns, found.voices
        else:
            turns, engine_voices = diarizer.diarize(source, options.diarization), {}
        seconds = time.perf_counter() - diarize_started
        for out in outputs:
            if per_channel:  # the words know their channel already
                names = options.diarization.channel_names or ()
                labels = {channel_key(i): name for i, name in enumerate(names)}
                segments, out.speakers = finish(
                    out.result.segments, out.result.language, sentences=options.sentences, labels=labels
                )
                out.result.segments = sorted(segments, key=lambda seg: (seg.start, seg.speaker or ""))
            else:
                out.result.segments, out.speakers = assign(
                    out.result.segments, turns, out.result.language, sentences=options.sentences
                )
            out.timings["diarize_seconds"] = seconds
            out.diarization = {"engine": diarizer.name, "speakers": len(out.speakers), "turns": len(turns)}
            out.turns = turns
            # merge.py relabelled the engine's speakers S1..N: each voice follows its speaker there.
            out.voices = {sp.id: engine_voices[sp.engine_key] for sp in out.speakers if sp.engine_key in engine_voices}
    progress(Progress("done", 1.0, duration, 0.0))
    return outputs
