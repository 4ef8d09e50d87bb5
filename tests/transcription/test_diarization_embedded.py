"""The embedded engine on synthesised speech with known turns (real weights, real VAD)."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from appliance.transcription.audio import decode
from appliance.transcription.diarization import DiarizationOptions
from appliance.transcription.diarization.embedded import EmbeddedDiarizer


@pytest.fixture(scope="module")
def engine() -> EmbeddedDiarizer:
    engine = EmbeddedDiarizer()
    assert engine.available() is None, engine.available()
    return engine


def _changes(turns: list) -> list[float]:  # type: ignore[type-arg]
    return [b.start for a, b in itertools.pairwise(turns) if a.speaker != b.speaker]


def test_two_voices_found_with_turn_boundaries_within_half_a_second(
    engine: EmbeddedDiarizer, dialogue: tuple[Path, list]
) -> None:  # type: ignore[type-arg]
    path, truth = dialogue
    turns = engine.diarize(decode(path.read_bytes()).samples, DiarizationOptions())
    assert len({t.speaker for t in turns}) == 2
    true_changes = [b[0] for a, b in itertools.pairwise(truth)]
    found = _changes(turns)
    assert len(found) == len(true_changes), (found, true_changes)
    for got, want in zip(found, true_changes, strict=False):
        assert abs(got - want) <= 0.5, (got, want)
    # Each true turn is (almost) all one found speaker, and consecutive turns differ.
    owners = []
    for start, end, _voice in truth:
        spoken = {}
        for t in turns:
            overlap = min(end, t.end) - max(start, t.start)
            if overlap > 0:
                spoken[t.speaker] = spoken.get(t.speaker, 0) + overlap
        owner = max(spoken, key=spoken.get)
        assert spoken[owner] >= 0.9 * sum(spoken.values())
        owners.append(owner)
    assert owners[0] != owners[1] and owners[0] == owners[2] == owners[4] and owners[1] == owners[3]


@pytest.mark.parametrize(("voice", "pitch"), [("en-us", 30), ("en+f3", 85)])
def test_one_voice_is_one_speaker(engine: EmbeddedDiarizer, tmp_path: Path, voice: str, pitch: int) -> None:
    import subprocess

    from tests.support import DIALOGUE, need

    monologue = tmp_path / "monologue.wav"
    text = " ".join(line for _v, _p, line in DIALOGUE)
    subprocess.run([need("espeak-ng"), "-v", voice, "-p", str(pitch), "-s", "155", "-w", str(monologue), text], check=True)
    turns = engine.diarize(decode(monologue.read_bytes()).samples, DiarizationOptions())
    assert len({t.speaker for t in turns}) == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "Orange giraffes painted the lighthouse in Marseille yesterday.",
        "Seventeen violet umbrellas drifted across Amsterdam canals this morning.",
        "The quick brown fox jumps over the lazy dog.",
    ],
)
def test_one_short_sentence_is_one_speaker(engine: EmbeddedDiarizer, tmp_path: Path, sentence: str) -> None:
    # Regression: 13-18 overlapping windows used to split one voice into 3 or 4 time-local "speakers".
    from tests.support import speak

    turns = engine.diarize(decode(speak(tmp_path / "one.wav", sentence).read_bytes()).samples, DiarizationOptions())
    assert turns and len({t.speaker for t in turns}) == 1, turns


def test_exact_and_bounded_counts_are_honoured(engine: EmbeddedDiarizer, dialogue: tuple[Path, list]) -> None:  # type: ignore[type-arg]
    audio = decode(dialogue[0].read_bytes()).samples
    assert len({t.speaker for t in engine.diarize(audio, DiarizationOptions(num_speakers=3))}) == 3
    assert len({t.speaker for t in engine.diarize(audio, DiarizationOptions(num_speakers=1))}) == 1
    assert len({t.speaker for t in engine.diarize(audio, DiarizationOptions(min_speakers=2, max_speakers=2))}) == 2


def test_silence_and_a_one_second_clip(engine: EmbeddedDiarizer, speech_bytes: bytes) -> None:
    assert engine.diarize(np.zeros(16000 * 20, np.float32), DiarizationOptions()) == []
    one_second = decode(speech_bytes).samples[:16000]
    turns = engine.diarize(one_second, DiarizationOptions())
    assert len({t.speaker for t in turns}) <= 1
    assert all(0 <= t.start < t.end <= 1.01 for t in turns)
    assert engine.diarize(one_second, DiarizationOptions(num_speakers=5))  # more speakers than windows: no crash


def test_missing_weights_are_reported(tmp_path: Path) -> None:
    engine = EmbeddedDiarizer(weights=tmp_path / "nope.pt")
    assert "weights are missing" in (engine.available() or "")


def test_voices_are_unit_centroids_one_a_speaker_and_match_the_speaker_alone(
    engine: EmbeddedDiarizer, dialogue: tuple[Path, list], media_dir: Path
) -> None:  # type: ignore[type-arg]
    from tests.support import speak

    path, truth = dialogue
    found = engine.diarize_voices(decode(path.read_bytes()).samples, DiarizationOptions())
    assert set(found.voices) == {t.speaker for t in found.turns} and len(found.voices) == 2
    for v in found.voices.values():
        assert v.dtype == np.float32 and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    first = next(t.speaker for t in found.turns if t.start <= truth[0][0] + 0.5)  # the en-us voice, p30
    alone = engine.voice(
        decode(
            speak(media_dir / "agent_alone.wav", "Please hold the line while I look that up.", "en-us", pitch=30).read_bytes()
        ).samples
    )
    assert alone is not None
    scores = {k: float(np.dot(alone, v)) for k, v in found.voices.items()}
    assert max(scores, key=scores.__getitem__) == first, scores
    assert engine.voice(np.zeros(16000 * 2, np.float32)) is None  # silence: no voice
