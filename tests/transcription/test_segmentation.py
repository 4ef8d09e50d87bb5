"""Sentence-sized segments and stable speaker turns: rules on exact word timings, then the real tiny
Whisper (batched, 30-second windows) and the real embedded speaker engine on synthesised speech."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import numpy as np
import pytest

from appliance.core.config import Settings
from appliance.transcription.asr import AsrOptions, Segment, SegmentScores, WhisperEngine, Word, embedded_model_path
from appliance.transcription.segmentation import MAX_SECONDS, MAX_WORDS, resegment, sentence_ends
from tests.support import speak


def _words(
    text: str, *, step: float = 0.35, speakers: dict[int, str] | None = None, pauses: dict[int, float] | None = None
) -> list[Word]:
    out, t = [], 0.0
    for i, token in enumerate(text.split()):
        t += (pauses or {}).get(i, 0.0)
        out.append(Word(t, t + step - 0.05, f" {token}", 0.9, (speakers or {}).get(i, "A")))
        t += step
    return out


def _segment(words: list[Word]) -> Segment:
    scores = SegmentScores(seek=0, temperature=0.0, compression_ratio=1.2, tokens=(1, 2, 3))
    return Segment(words[0].start, words[-1].end, "".join(w.word for w in words).strip(), words, None, -0.3, 0.01, scores)


def test_sentence_ends_know_abbreviations_and_numbers() -> None:
    words = _words("Hello Dr. Smith, it costs 3.50 today. Is that fine? Yes! Okay then")
    assert [words[i].word.strip() for i in sorted(sentence_ends(words, "en"))] == ["today.", "fine?", "Yes!", "then"]


def test_scripts_pysbd_lacks_fall_back_to_their_punctuation() -> None:
    words = [Word(i, i + 0.5, w, 0.9) for i, w in enumerate(["আমি", "গান", "গাই।", "তুমি", "শোনো।"])]
    assert sentence_ends(words, "bn") == {2, 4}
    chinese = [Word(i, i + 0.5, w, 0.9) for i, w in enumerate(["今天", "天气", "很好。", "我们", "去", "公园。"])]
    assert sentence_ends(chinese, "zh") == {2, 5}


def test_a_window_of_sentences_becomes_one_segment_a_sentence_with_its_scores() -> None:
    parent = _segment(_words("Good morning everyone. Thank you for coming today. Let us begin with the budget."))
    pieces = resegment([parent], "en")
    assert [p.text for p in pieces] == ["Good morning everyone.", "Thank you for coming today.", "Let us begin with the budget."]
    assert all(p.avg_logprob == -0.3 and p.scores is not None and p.scores.tokens is None for p in pieces)
    assert [w for p in pieces for w in p.words] == parent.words  # nothing lost, nothing reordered


def test_long_silence_ends_a_segment_and_run_ons_are_cut_at_a_comma() -> None:
    silence = resegment([_segment(_words("so we waited and then nothing happened", pauses={4: 2.0}))], "en")
    assert [p.text for p in silence] == ["so we waited and", "then nothing happened"]
    run_on = " ".join(f"word{i}" for i in range(25)) + ", " + " ".join(f"more{i}" for i in range(25))
    pieces = resegment([_segment(_words(run_on))], "en")
    assert len(pieces) == 2 and pieces[0].text.endswith("word24,")
    assert all(len(p.words) <= MAX_WORDS and p.end - p.start <= MAX_SECONDS for p in pieces)


def test_a_flicker_inside_a_sentence_is_voted_away_and_marked_less_certain() -> None:
    words = _words("I think we should move the launch to next week because the tests are not ready.", speakers={6: "B", 7: "B"})
    (piece,) = resegment([_segment(words)], "en")
    assert piece.speaker == "A" and {w.speaker for w in piece.words} == {"A"}
    assert piece.speaker_confidence is not None and 0.8 < piece.speaker_confidence < 1.0


def test_a_change_at_a_pause_is_believed_even_mid_sentence() -> None:
    text = "so what do you think about it well I am not sure yet"
    words = _words(text, speakers={i: "B" for i in range(7, 13)}, pauses={7: 0.5})
    pieces = resegment([_segment(words)], "en")
    assert [(p.speaker, p.text) for p in pieces] == [("A", "so what do you think about it"), ("B", "well I am not sure yet")]
    assert all(p.speaker_confidence == 1.0 for p in pieces)


def test_segments_without_word_timings_are_kept_as_they_are() -> None:
    plain = Segment(0.0, 30.0, "Many words without any timings at all.", [])
    assert resegment([plain], "en") == [plain]


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sentences = [
        "The committee met on Monday to review the budget.",
        "Several members asked about the cost of the new building.",
        "The treasurer explained that prices had risen since the spring.",
        "After a short break, the discussion turned to staffing.",
        "Everyone agreed to meet again in two weeks.",
    ]
    return speak(tmp_path_factory.mktemp("talk") / "talk.wav", " ".join(sentences * 4), speed=165)


def test_real_batched_whisper_gives_sentence_sized_segments(settings: Settings, long_talk: Path) -> None:
    """The batched decoder's 30-second windows (about 70 words each) come out as readable sentences."""
    from appliance.transcription.audio import decode
    from appliance.transcription.options import parse
    from appliance.transcription.pipeline import run

    assert embedded_model_path() is not None
    engine = WhisperEngine(settings.models)
    audio = decode(long_talk.read_bytes()).samples
    assert len(audio) / 16000 > 60
    registry_model = parse({}, settings, _registry(settings)).models[0]
    raw = engine.transcribe(registry_model, np.asarray(audio), AsrOptions(language="en"), lambda *_: None, lambda: False)
    (out,) = run(
        long_talk.read_bytes(), parse({"language": "en"}, settings, _registry(settings)), engine, lambda p: None, lambda: False
    )
    before = [len(s.words) for s in raw.segments]
    after = [len(s.words) for s in out.result.segments]
    assert sum(before) == sum(after)  # the same words, only cut differently
    assert max(after) <= MAX_WORDS and statistics.median(after) < statistics.median(before)
    ends = sum(s.text.rstrip().endswith((".", "?", "!")) for s in out.result.segments)
    assert ends >= 0.8 * len(out.result.segments), [s.text for s in out.result.segments]


def _registry(settings: Settings):  # type: ignore[no-untyped-def]
    from appliance.transcription.asr import ModelRegistry

    return ModelRegistry(settings.models.models_dir)


def test_real_dialogue_turns_follow_the_speakers_not_the_flicker(
    settings: Settings, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    """Five real turns, two voices, the embedded engine told there are 2: every segment is one sentence
    of one speaker, and the transcript has no more speaker changes than the recording has turns."""
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import parse
    from appliance.transcription.pipeline import run

    path, truth = dialogue
    options = parse(
        {"language": "en", "diarize": True, "diarization_engine": "embedded", "num_speakers": 2}, settings, _registry(settings)
    )
    (out,) = run(
        path.read_bytes(), options, WhisperEngine(settings.models), lambda p: None, lambda: False, DiarizationEngines(settings)
    )
    speakers = [s.speaker for s in out.result.segments]
    changes = sum(a != b for a, b in itertools.pairwise(speakers))
    assert changes <= len(truth) - 1, [(s.speaker, s.text) for s in out.result.segments]
    assert len(out.speakers) == 2
    assert all(s.speaker_confidence is not None for s in out.result.segments)
