"""Recognise a recording window by window, each window in pieces side by side on the idle lanes.

The recording is decoded one window at a time (`AudioStream`), so its memory is the window, the
model's working buffers and the compressed bytes, never the whole decoded recording (an hour of float32
is 230 MB, and faster-whisper's batched pipeline holds about as much again in speech chunks and
features). Each window is split at quiet moments into as many pieces as the job holds lanes (its own and
any idle ones it may borrow, see lanes.py); the pieces run in parallel and their segments are shifted to
their place in the recording.

Only the job's own thread touches its database connection (progress reports, the cancel check): the
helper threads record how far they are and watch a flag the job's thread sets.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from appliance.transcription.asr import (
    AsrOptions,
    AsrResult,
    CancelFn,
    Cancelled,
    ModelInfo,
    Recognizer,
    Segment,
)
from appliance.transcription.audio import SAMPLE_RATE, AudioStream, quiet_cut
from appliance.transcription.lanes import Lanes

MIN_PIECE_SECONDS = 30.0  # one Whisper window: shorter pieces would only add seams
REPORT_INTERVAL = 0.5  # seconds between the job thread's progress reports while helpers run
FRAMES_PER_SECOND = 100  # Whisper's feature frames: the unit of a segment's `seek`

AudioDone = Callable[[float, str], None]  # (seconds of audio done, text of a segment just finished)


def pieces(samples: np.ndarray, count: int) -> list[tuple[int, int]]:
    """Split into at most `count` runs of at least MIN_PIECE_SECONDS, cut at the quietest moment near
    each even share, as [start, end) sample bounds."""
    total = len(samples)
    count = max(1, min(count, int(total / (MIN_PIECE_SECONDS * SAMPLE_RATE))))
    bounds, start = [], 0
    for index in range(1, count):
        target = total * index // count
        reach = int(min(10.0, MIN_PIECE_SECONDS / 4) * SAMPLE_RATE)
        cut = quiet_cut(samples, target - reach, target + reach)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


def _shift(segment: Segment, seconds: float) -> Segment:
    if not seconds:
        return segment
    words = [dataclasses.replace(w, start=w.start + seconds, end=w.end + seconds) for w in segment.words]
    scores = segment.scores
    if scores is not None:
        scores = dataclasses.replace(scores, seek=scores.seek + round(seconds * FRAMES_PER_SECOND))
    return dataclasses.replace(segment, start=segment.start + seconds, end=segment.end + seconds, words=words, scores=scores)


class _Tally:
    """Seconds of audio done per piece of the current window, written by every piece's thread."""

    def __init__(self, count: int) -> None:
        self.done = [0.0] * count
        self.lock = threading.Lock()

    def set(self, index: int, seconds: float) -> None:
        with self.lock:
            self.done[index] = max(self.done[index], seconds)

    def total(self) -> float:
        with self.lock:
            return sum(self.done)


def recognise(
    recognizer: Recognizer,
    model: ModelInfo,
    stream: AudioStream,
    options: AsrOptions,
    on_audio_done: AudioDone,
    cancelled: CancelFn,
    lanes: Lanes | None = None,
) -> AsrResult:
    """Every window of `stream` through `recognizer`, in pieces on the lanes this job can hold."""
    if not model.multilingual and options.language is None and options.task == "transcribe":
        options = dataclasses.replace(options, language="en")  # nothing to detect: pieces need not wait
    segments: list[Segment] = []
    language, probability = options.language, 1.0 if options.language else None
    model_seconds = 0.0
    stop = threading.Event()
    helpers = ThreadPoolExecutor(max_workers=lanes.capacity if lanes else 1, thread_name_prefix="piece")
    try:
        for window in stream:
            if cancelled():
                raise Cancelled()
            wanted = int(len(window.samples) / (MIN_PIECE_SECONDS * SAMPLE_RATE)) - 1
            extra = lanes.borrow(wanted) if lanes and wanted > 0 else 0
            started = time.perf_counter()
            try:
                bounds = pieces(window.samples, 1 + extra)
                results = _window(
                    recognizer, model, window.samples, bounds, options, window.offset, on_audio_done, cancelled, stop, helpers
                )
            finally:
                if lanes and extra:
                    lanes.give_back(extra)
            model_seconds += time.perf_counter() - started
            for (start, _end), result in zip(bounds, results, strict=True):
                segments.extend(_shift(seg, window.offset + start / SAMPLE_RATE) for seg in result.segments)
            if language is None:  # the first piece of the first window detected it; the rest keep it
                language, probability = results[0].language, results[0].language_probability
                options = dataclasses.replace(options, language=language)
    finally:
        stop.set()
        helpers.shutdown(wait=True)
    return AsrResult(segments, language, probability, stream.seconds, model_seconds)


def _window(
    recognizer: Recognizer,
    model: ModelInfo,
    samples: np.ndarray,
    bounds: list[tuple[int, int]],
    options: AsrOptions,
    offset: float,
    on_audio_done: AudioDone,
    cancelled: CancelFn,
    stop: threading.Event,
    helpers: ThreadPoolExecutor,
) -> list[AsrResult]:
    tally = _Tally(len(bounds))
    options = dataclasses.replace(options, pieces_at_once=len(bounds))
    later_texts: list[list[str]] = [[] for _ in bounds]

    def own_progress(seconds: float, text: str = "") -> None:  # the job's thread: piece 0
        tally.set(0, seconds)
        on_audio_done(offset + tally.total(), text)

    def own_cancelled() -> bool:
        if cancelled():
            stop.set()
        return stop.is_set()

    def helper_progress(index: int) -> Callable[..., None]:
        def progress(seconds: float, text: str = "") -> None:
            tally.set(index, seconds)
            if text:
                later_texts[index].append(text)

        return progress

    def run(index: int, progress: Callable[..., None], is_cancelled: CancelFn, opts: AsrOptions) -> AsrResult:
        start, end = bounds[index]
        return recognizer.transcribe(model, samples[start:end], opts, progress, is_cancelled)

    if options.language is None:  # detect on the first piece alone, then run the others with its language
        first = run(0, own_progress, own_cancelled, options)
        options = dataclasses.replace(options, language=first.language)
        futures: list[Future[AsrResult]] = [
            helpers.submit(run, i, helper_progress(i), stop.is_set, options) for i in range(1, len(bounds))
        ]
    else:
        futures = [helpers.submit(run, i, helper_progress(i), stop.is_set, options) for i in range(1, len(bounds))]
        first = run(0, own_progress, own_cancelled, options)
    pending = set(futures)
    while pending:  # the job's thread reports for the helpers and relays a cancel to them
        _done, pending = wait(pending, timeout=REPORT_INTERVAL)
        on_audio_done(offset + tally.total(), "")
        own_cancelled()
    results = [first, *(f.result() for f in futures)]  # a helper's error (or Cancelled) is raised here
    for texts in later_texts[1:]:
        for text in texts:
            on_audio_done(offset + tally.total(), text)
    return results
