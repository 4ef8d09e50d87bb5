from pathlib import Path
from typing import Any

import jiwer
import pytest

from appliance.core.config import Settings
from appliance.transcription import pipeline
from appliance.transcription.asr import ModelRegistry, WhisperEngine
from appliance.transcription.options import parse
from benchmarks.wer import normalise
from tests.support import FORMATS, SENTENCE, FakeRecognizer


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(Settings().models)


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_container_transcribes_the_right_words(
    ext: str, converted: dict[str, Path], engine: WhisperEngine, tmp_path: Path
) -> None:
    options = parse({"language": "en"}, Settings(), ModelRegistry(tmp_path))
    outputs = pipeline.run(converted[ext].read_bytes(), options, engine, lambda p: None, lambda: False)
    text = " ".join(s.text for s in outputs[0].result.segments)
    # The tiny model mishears the synthetic voice a little differently per codec and per CPU (its int8
    # kernels differ with the instruction set): word error against the script, not exact words. A
    # decode that lost audio (a truncated or silent stream) misses a whole sentence, about 0.5.
    error = jiwer.wer(normalise(SENTENCE), normalise(text))
    assert error <= 0.35, (ext, text, error)
    assert normalise(text).endswith("with her"), (ext, text)


def test_pipeline_reports_progress_across_models(speech_bytes: bytes, tmp_path: Path) -> None:
    from appliance.transcription.asr import embedded_model_path

    copy = tmp_path / "second"
    copy.mkdir()
    for f in embedded_model_path().iterdir():  # type: ignore[union-attr]
        (copy / f.name).symlink_to(f)
    options = parse({"models": ["tiny.en", "second"]}, Settings(), ModelRegistry(tmp_path))
    fake = FakeRecognizer(delay=0.8)  # the job outlasts pipeline.SETTLE_SECONDS, so time left is estimated
    seen: list[pipeline.Progress] = []
    outputs = pipeline.run(speech_bytes, options, fake, seen.append, lambda: False)
    assert [o.model.name for o in outputs] == ["tiny.en", "second"]
    assert fake.calls == 2
    assert seen[0].stage == "decoding"
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(p.eta_seconds is not None for p in seen)
    assert all(p.duration and p.duration > 4 for p in seen[1:])


def _bursty_reports(batches: int, segments: int, seconds_per_batch: float) -> list[tuple[float, float, float]]:
    """(elapsed, fraction, true seconds left) as a batched recogniser reports them: every segment of a
    batch at once, when the whole batch is decoded; each batch is an equal share of the audio."""
    total = batches * seconds_per_batch
    reports = []
    for batch in range(batches):
        decoded_at = (batch + 1) * seconds_per_batch
        for k in range(segments):
            elapsed = decoded_at + k * 0.001
            reports.append((elapsed, (batch + (k + 1) / segments) / batches, max(0.0, total - elapsed)))
    return reports


def _written(reports: list[tuple[float, float, float]], estimate: Any) -> list[tuple[float | None, float]]:
    """What the worker writes: the first report after each PROGRESS_INTERVAL, the rest of a burst dropped."""
    from appliance.app.worker import PROGRESS_INTERVAL

    written, last = [], -1.0
    for elapsed, fraction, left in reports:
        eta = estimate(elapsed, fraction)
        if elapsed - last >= PROGRESS_INTERVAL:
            written.append((eta, left))
            last = elapsed
    return written


def test_time_left_is_honest_when_segments_come_in_bursts() -> None:
    reports = _bursty_reports(batches=5, segments=8, seconds_per_batch=6.0)
    # What the pipeline did before: elapsed / fraction from each report, written from the first of a burst.
    old = _written(reports, lambda elapsed, fraction: elapsed / fraction * (1 - fraction) if fraction > 0.02 else None)
    assert max(eta / left for eta, left in old if eta is not None and left > 0) > 5
    estimate = pipeline.TimeLeft()
    written = _written(reports, estimate.update)
    assert written[0][0] is None  # the first burst alone says nothing about the pace
    for eta, left in written[1:]:
        assert eta is not None and abs(eta - left) <= 0.1 * 30, (eta, left)  # within a tenth of the job


def test_time_left_restarts_for_each_model_and_counts_down_between_reports() -> None:
    estimate = pipeline.TimeLeft()
    assert estimate.update(2.0, 0.25) is None  # within the settling second
    assert estimate.update(4.0, 0.5) == pytest.approx(4.0)
    assert estimate.update(5.0, 0.5) == pytest.approx(3.0)  # no new report: a second has passed at the same pace
    estimate.next_model()
    assert estimate.update(12.0, 0.6) == pytest.approx(8.0)  # the second model's own pace: 12 s for 0.6


def test_kept_voices_follow_the_speakers_relabelled_s1_to_sn(
    dialogue: tuple[Path, list], engine: WhisperEngine, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    import numpy as np

    from appliance.transcription.audio import decode
    from appliance.transcription.diarization import DiarizationOptions
    from appliance.transcription.diarization.engines import DiarizationEngines

    path, truth = dialogue
    data = path.read_bytes()
    settings = Settings()
    options = parse({"diarize": True, "diarization_engine": "embedded", "language": "en"}, settings, ModelRegistry(tmp_path))
    engines = DiarizationEngines(settings)
    plain = pipeline.run(data, options, engine, lambda p: None, lambda: False, engines)
    assert plain[0].voices == {}  # not asked for: not taken
    (out,) = pipeline.run(data, options, engine, lambda p: None, lambda: False, engines, keep_voices=True)
    assert set(out.voices) == {s.id for s in out.speakers} == {"S1", "S2"}
    found = engines.engine("embedded").diarize_voices(decode(data).samples, DiarizationOptions())
    # S1 is whoever speaks first (the agent): its voice is the engine voice of the first turn's speaker.
    first = next(t.speaker for t in found.turns if t.end > truth[0][0] + 0.5)
    assert np.allclose(out.voices["S1"], found.voices[first])
    assert not np.allclose(out.voices["S2"], found.voices[first])
