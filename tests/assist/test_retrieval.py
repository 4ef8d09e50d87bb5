"""Lexical ranking: what grounds answers and matches uncited claims."""

from appliance.assist.retrieval import best_match, rank, words
from appliance.transcripts.document import Segment


def _segments(*texts: str) -> list[Segment]:
    return [Segment(id=i, start=float(i), end=i + 0.5, text=t) for i, t in enumerate(texts)]


def test_word_forms_meet_and_function_words_do_not_count() -> None:
    assert words("The giraffes painted it") == words("giraffe paint")
    segments = _segments("Orange giraffe paints the lighthouse.", "We ship on Friday.", "The the the.")
    assert [s.id for _score, s in rank("What did the giraffes paint?", segments)] == [0]
    assert rank("what is it", segments) == []  # nothing but function words: nothing to find


def test_a_claim_is_matched_only_when_it_shares_enough() -> None:
    segments = _segments("Bob will fix the Windows installer by Thursday.", "Carol writes the release notes.")
    assert best_match("Bob fixes the installer", segments) is segments[0]
    assert best_match("Buy a new espresso machine", segments) is None
    assert best_match("Release", segments) is None  # one shared word is not enough to point at a moment
