from appliance.transcription.asr import Segment, Word
from appliance.transcription.diarization import Turn
from appliance.transcription.diarization.merge import assign, speaker_for


def _seg(*words: tuple[float, float, str]) -> Segment:
    ws = [Word(s, e, f" {t}", 0.9) for s, e, t in words]
    return Segment(ws[0].start, ws[-1].end, "".join(w.word for w in ws).strip(), ws)


def test_word_straddling_a_turn_goes_to_the_larger_overlap() -> None:
    turns = [Turn(0.0, 1.0, "a"), Turn(1.0, 3.0, "b")]
    assert speaker_for(0.8, 1.5, turns) == "b"  # 0.2 s with a, 0.5 s with b
    assert speaker_for(0.5, 1.1, turns) == "a"


def test_overlapping_turns_pick_the_greatest_overlap() -> None:
    turns = [Turn(0.0, 2.0, "a"), Turn(1.0, 3.0, "b")]
    assert speaker_for(1.2, 2.6, turns) == "b"
    assert speaker_for(0.5, 1.4, turns) == "a"


def test_word_outside_every_turn_takes_the_nearest() -> None:
    turns = [Turn(0.0, 1.0, "a"), Turn(5.0, 6.0, "b")]
    assert speaker_for(1.5, 1.8, turns) == "a"
    assert speaker_for(4.0, 4.5, turns) == "b"


def test_no_turns_leaves_words_unlabelled() -> None:
    segments, speakers = assign([_seg((0, 1, "hi"), (1, 2, "there"))], [])
    assert speakers == []
    assert segments[0].speaker is None and all(w.speaker is None for w in segments[0].words)


def test_one_word() -> None:
    segments, speakers = assign([_seg((0.2, 0.6, "yes"))], [Turn(0.0, 1.0, "x")])
    assert [s.label for s in speakers] == ["Speaker 1"]
    assert segments[0].speaker == "S1" and segments[0].words[0].speaker == "S1"


def test_segments_split_at_speaker_changes_and_labels_follow_first_appearance() -> None:
    turns = [Turn(0.0, 2.0, "spk7"), Turn(2.0, 4.0, "spk3"), Turn(4.0, 6.0, "spk7")]
    seg = _seg((0.1, 0.5, "hello"), (0.6, 1.0, "there"), (2.1, 2.5, "hi"), (2.6, 3.0, "back"), (4.2, 4.8, "bye"))
    segments, speakers = assign([seg], turns)
    assert [s.text for s in segments] == ["hello there", "hi back", "bye"]
    assert [s.speaker for s in segments] == ["S1", "S2", "S1"]
    assert [(s.id, s.label) for s in speakers] == [("S1", "Speaker 1"), ("S2", "Speaker 2")]
    assert segments[1].start == 2.1 and segments[1].end == 3.0


def test_segment_without_words_gets_a_segment_speaker() -> None:
    segments, speakers = assign([Segment(2.0, 3.5, "no word timings")], [Turn(0, 2.2, "a"), Turn(2.2, 9, "b")])
    assert segments[0].speaker == "S1" and speakers[0].label == "Speaker 1"


def test_split_pieces_keep_their_parents_scores_but_not_its_tokens() -> None:
    from appliance.transcription.asr import SegmentScores
    from appliance.transcription.diarization import Turn
    from appliance.transcription.diarization.merge import assign

    scores = SegmentScores(seek=0, temperature=0.0, compression_ratio=1.3, tokens=(1, 2, 3, 4))
    words = [Word(0.0, 0.4, " hello", 0.9), Word(1.0, 1.4, " there", 0.9)]
    whole = Segment(0.0, 1.4, "hello there", words, avg_logprob=-0.2, no_speech_prob=0.01, scores=scores)
    pieces, _ = assign([whole], [Turn(0.0, 0.7, "a"), Turn(0.9, 3.0, "b")])
    assert len(pieces) == 2
    assert all(p.avg_logprob == -0.2 and p.scores is not None and p.scores.compression_ratio == 1.3 for p in pieces)
    assert all(p.scores is not None and p.scores.tokens is None for p in pieces)
    kept, _ = assign([whole], [Turn(0.0, 3.0, "a")])
    assert kept[0].scores == scores
