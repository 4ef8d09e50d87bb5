"""Recognition a window at a time: the same words as the whole recording, in order, at the right times;
a job alone runs its pieces side by side on idle lanes, and a job that has company does not."""

from __future__ import annotations

import io
import itertools
import time
import wave

import jiwer
import numpy as np
import pytest

from appliance.core.config import Settings
from appliance.transcription import streaming
from appliance.transcription.asr import (
    EMBEDDED_MODEL,
    AsrOptions,
    Cancelled,
    ModelInfo,
    ModelRegistry,
    WhisperEngine,
)
from appliance.transcription.audio import SAMPLE_RATE, AudioStream, decode
from appliance.transcription.lanes import Lanes
from benchmarks.wer import normalise
from tests.support import Overlap, speak

SENTENCES = [
    "The first meeting starts at nine in the morning.",
    "Please send the budget report to the finance team.",
    "Our new office opens next spring near the river.",
    "The doctor will call you back after lunch today.",
    "We should book the train tickets before Friday.",
    "Remember to water the plants on the balcony.",
]


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """About 95 s: the six sentences four times, each followed by 0.7 s of silence."""
    folder = tmp_path_factory.mktemp("long")
    parts, script = [], []
    for n, sentence in enumerate(SENTENCES * 4):
        voice = decode(speak(folder / f"{n}.wav", sentence).read_bytes()).samples
        parts += [voice, np.zeros(int(0.7 * SAMPLE_RATE), np.float32)]
        script.append(sentence)
    return wav_bytes(np.concatenate(parts)), " ".join(script)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[WhisperEngine, ModelInfo]:
    settings = Settings()
    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    return WhisperEngine(settings.models, num_workers=2, cpu_threads=1), registry.get(EMBEDDED_MODEL)


def test_windows_are_the_whole_recording_cut_at_pauses(long_speech: tuple[bytes, str]) -> None:
    data, _ = long_speech
    whole = decode(data).samples
    reserved: list[int] = []
    stream = AudioStream(data, window_seconds=45, reserve=reserved.append)
    assert stream.declared_seconds == pytest.approx(len(whole) / SAMPLE_RATE, abs=0.01)
    parts, offsets = [], []
    for window in stream:
        offsets.append(window.offset)
        parts.append(window.samples.copy())
    assert len(parts) >= 3 and offsets[0] == 0.0
    assert all(25 * SAMPLE_RATE <= len(p) <= 45 * SAMPLE_RATE for p in parts[:-1])  # cut in the last 20 s
    assert np.array_equal(np.concatenate(parts), whole)  # nothing lost, nothing twice
    assert stream.seconds == pytest.approx(len(whole) / SAMPLE_RATE)
    assert sum(reserved) == 45 * SAMPLE_RATE * 4  # one window buffer, not the recording
    # Each cut lands in a pause: the 0.2 s around it is far quieter than the recording's speech.
    loud = float(np.sqrt(np.mean(whole[np.abs(whole) > 0.01] ** 2)))
    for end in np.cumsum([len(p) for p in parts])[:-1]:
        around = whole[end - 1600 : end + 1600]
        assert float(np.sqrt(np.mean(around**2))) < loud / 20


def test_a_long_recording_is_never_decoded_whole() -> None:
    """Thirty minutes are 115 MB as float32; streaming them holds one window (traced by numpy)."""
    import tracemalloc

    rng = np.random.default_rng(1)
    data = wav_bytes(rng.normal(0, 0.05, 30 * 60 * SAMPLE_RATE).astype(np.float32))
    tracemalloc.start()
    try:
        seconds = sum(len(w.samples) for w in AudioStream(data, window_seconds=120)) / SAMPLE_RATE
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds == pytest.approx(1800)
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB held while streaming"


def test_a_recording_over_the_limit_stops_while_streaming(long_speech: tuple[bytes, str]) -> None:
    from appliance.transcription.audio import TooLong

    with pytest.raises(TooLong, match="longer than this appliance accepts"):
        for _ in AudioStream(long_speech[0], window_seconds=45, max_seconds=60):
            pass


def test_not_audio_is_refused_when_the_stream_opens() -> None:
    from appliance.transcription.audio import AudioError

    with pytest.raises(AudioError, match="could not be read as audio"):
        AudioStream(b"plain text, not a recording\n" * 100)


def test_streamed_words_match_the_script_in_order(tiny: tuple[WhisperEngine, ModelInfo], long_speech: tuple[bytes, str]) -> None:
    engine, model = tiny
    data, script = long_speech
    lanes = Lanes(2)
    lanes.enter()
    reports: list[float] = []
    result = streaming.recognise(
        engine, model, AudioStream(data, window_seconds=45), AsrOptions(), lambda s, t="": reports.append(s), lambda: False, lanes
    )
    text = " ".join(s.text for s in result.segments)
    assert jiwer.wer(normalise(script), normalise(text)) < 0.2, text
    starts = [w.start for s in result.segments for w in s.words]
    assert starts == sorted(starts) and starts[0] >= 0 and starts[-1] < result.duration
    # Every sentence is heard near where it was spoken: "finance" is heard once in each quarter.
    finance = [w.start for s in result.segments for w in s.words if "finance" in w.word.lower()]
    assert len(finance) == 4, text
    assert all(b - a == pytest.approx(result.duration / 4, abs=2) for a, b in itertools.pairwise(finance))
    assert result.language == "en" and reports and max(reports) <= result.duration + 0.01
    assert lanes.idle == 1  # what it borrowed was given back


def _model(tiny: tuple[WhisperEngine, ModelInfo]) -> ModelInfo:
    return tiny[1]


def test_a_job_alone_borrows_idle_lanes_and_a_busy_appliance_lends_none(
    tiny: tuple[WhisperEngine, ModelInfo], long_speech: tuple[bytes, str]
) -> None:
    data, _ = long_speech
    alone, lanes = Overlap(), Lanes(2)
    lanes.enter()
    result = streaming.recognise(
        alone, _model(tiny), AudioStream(data, window_seconds=100), AsrOptions(), lambda *a: None, lambda: False, lanes
    )
    assert alone.most == 2 and alone.pieces_at_once == 2  # two pieces side by side, each told to halve its batch
    assert round(result.segments[0].start) == 0 and result.segments[1].start > 30

    shared, lanes = Overlap(), Lanes(2)
    lanes.enter(), lanes.enter()  # a second job is running
    streaming.recognise(
        shared, _model(tiny), AudioStream(data, window_seconds=100), AsrOptions(), lambda *a: None, lambda: False, lanes
    )
    assert shared.most == 1 and shared.pieces_at_once == 1


def test_a_cancel_reaches_the_pieces_on_other_lanes(
    tiny: tuple[WhisperEngine, ModelInfo], long_speech: tuple[bytes, str]
) -> None:
    lanes = Lanes(2)
    lanes.enter()
    asked = time.monotonic()
    with pytest.raises(Cancelled):
        streaming.recognise(
            Overlap(0.5),
            _model(tiny),
            AudioStream(long_speech[0], window_seconds=100),
            AsrOptions(),
            lambda *a: None,
            lambda: time.monotonic() - asked > 0.2,
            lanes,
        )
    assert lanes.idle == 1


def test_pieces_cut_at_pauses_and_cover_the_window(long_speech: tuple[bytes, str]) -> None:
    samples = decode(long_speech[0]).samples
    bounds = streaming.pieces(samples, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(samples) and len(bounds) == 3
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert all(end - start >= 20 * SAMPLE_RATE for start, end in bounds)
    assert streaming.pieces(samples[: 40 * SAMPLE_RATE], 4) == [(0, 40 * SAMPLE_RATE)]  # too short to split
