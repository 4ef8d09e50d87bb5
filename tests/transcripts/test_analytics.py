"""Speaker analytics from the typed document: talk time, turns, longest monologue, interruptions."""

from __future__ import annotations

import pytest

from appliance.transcripts.analytics import speaker_analytics
from appliance.transcripts.document import Segment, Speaker, Transcript


def _doc(*turns: tuple[str | None, float, float, str]) -> Transcript:
    segments = [Segment(id=i, start=s, end=e, text=t, speaker=who) for i, (who, s, e, t) in enumerate(turns)]
    speakers = [Speaker(id="S1", label="Speaker 1", display_name="Ada"), Speaker(id="S2", label="Speaker 2")]
    return Transcript(id="t", speakers=speakers, segments=segments)


def test_talk_time_turns_longest_and_words_per_minute() -> None:
    stats = speaker_analytics(
        _doc(
            ("S1", 0.0, 10.0, "Good morning, everyone."),
            ("S1", 10.5, 20.0, "Let us begin with the budget."),
            ("S2", 21.0, 26.0, "Thank you."),
            ("S1", 27.0, 30.0, "Next item."),
        )
    )
    ada, bob = stats.speakers
    assert (ada.name, ada.turns, ada.talk_seconds, ada.longest_turn_seconds) == ("Ada", 2, 22.5, 20.0)
    assert (bob.name, bob.turns, bob.talk_seconds, bob.words) == ("Speaker 2", 1, 5.0, 2)
    assert stats.turns == 3 and stats.speaking_seconds == 27.5
    assert ada.share == pytest.approx(22.5 / 27.5, abs=0.001) and bob.words_per_minute == 24.0
    assert ada.interruptions == bob.interruptions == 0  # every turn began after the other had finished


def test_overlap_or_a_cut_off_sentence_is_an_interruption() -> None:
    stats = speaker_analytics(
        _doc(
            ("S1", 0.0, 5.0, "I was saying that we"),  # not finished...
            ("S2", 5.1, 8.0, "No, wait."),  # ...and Bob starts a breath later: an interruption
            ("S1", 7.5, 9.0, "Let me finish."),  # starts before Bob ends: another
            ("S2", 10.0, 11.0, "Fine."),  # after a finished sentence and a pause: not one
        )
    )
    ada, bob = stats.speakers
    assert (ada.interruptions, bob.interruptions) == (1, 1)


def test_no_speakers_no_figures() -> None:
    stats = speaker_analytics(_doc((None, 0.0, 3.0, "Nobody labelled this.")))
    assert stats.speakers == [] and stats.turns == 0
