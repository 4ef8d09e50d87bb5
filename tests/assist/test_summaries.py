"""Summaries: the tolerant reading of a model's answer and the citation check (fixed answers), then the
real generation code on the real SmolLM2-135M model, whole and map-reduced."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from appliance.assist import summaries
from appliance.assist.engine import LocalEngine, inspect_llm_dir
from appliance.transcripts.document import Segment, Speaker, Transcript
from tests.assist.meeting import LINES


def _doc() -> Transcript:
    segments = [Segment(id=i, start=i * 5.0, end=i * 5.0 + 4.0, text=t, speaker=s) for i, (s, t) in enumerate(LINES)]
    return Transcript(
        id="t",
        language="en",
        segments=segments,
        speakers=[
            Speaker(id="S1", label="Speaker 1", display_name="Alice"),
            Speaker(id="S2", label="Speaker 2", display_name="Bob"),
        ],
    )


def test_the_action_item_step_lines_are_read_with_checked_owners_dates_and_citations() -> None:
    doc = _doc()
    listed = (
        "[3] Bob: fix the Windows installer (Thursday)\n"
        "- [6] Carol: write the release notes\n"
        "[42] Zorro: invent a name (next Monday)\n"  # a line that does not exist, a person never named, a day never said
        "none\n"
        "[1] ok\n"
        "[5] Bob: Who writes the release notes for the customers?\n"  # a question repeated, not a task
    )
    items, dropped = summaries.read_actions("[" + listed[1:], doc, doc.segments)
    assert [(a.text, a.owner, a.due, a.segments) for a in items] == [
        ("fix the Windows installer", "Bob", "Thursday", [3]),
        ("write the release notes", "Carol", None, [6]),
        ("invent a name", None, None, []),
    ]
    assert dropped == 1
    # Merged with the summary's own: the same task about the same moment is not listed twice.
    own = summaries.Summary(
        summary="s", action_items=[summaries.ActionItem(text="Bob fixes the installer", owner="Bob", segments=[3])]
    )
    assert [a.text for a in summaries._with_actions(own, items)] == [
        "Bob fixes the installer",
        "write the release notes",
        "invent a name",
    ]


def test_citations_to_segments_that_do_not_exist_are_dropped() -> None:
    answer = (
        '{"summary": "The release ships on Friday [4].", "decisions": [{"text": "Ship on Friday", "segments": [4, 99]}],'
        ' "action_items": [{"text": "Fix the installer", "owner": "Bob", "due": "Thursday", "segments": ["[3]", 250]}],'
        ' "chapters": [{"title": "Release plan", "segment": 0}, {"title": "Nowhere", "segment": 77}]}'
    )
    s = summaries.read_answer(answer, _doc())
    assert s.summary == "The release ships on Friday." and s.summary_segments == [4]
    assert s.decisions[0].segments == [4]
    item = s.action_items[0]
    assert (item.owner, item.due, item.segments, item.matched) == ("Bob", "Thursday", [3], False)
    assert [c.title for c in s.chapters] == ["Release plan"] and s.chapters[0].start == 0.0
    assert s.dropped_citations == 3 and s.note == ""


def test_broken_json_is_repaired_and_said() -> None:
    # Cut off mid-list, a second object opened after the first was closed: what is complete is kept.
    answer = '{"summary": "Release on Friday."}\n{"key_points": "The installer fails on Windows [1]", "action_items": [{"text": "Carol writes the release notes", "owner": "Carol", "segments": [6]}, {"text": "half'
    s = summaries.read_answer(answer, _doc())
    assert s.summary == "Release on Friday."
    assert [(k.text, k.segments) for k in s.key_points] == [("The installer fails on Windows", [1])]
    assert [a.owner for a in s.action_items][:1] == ["Carol"] and s.action_items[0].segments == [6]
    assert "cut off or malformed" in s.note


def test_uncited_claims_get_the_moment_that_says_them_or_nothing() -> None:
    s = summaries.read_answer(
        '{"summary": "x", "decisions": ["We ship the release on Friday", "Buy a new espresso machine"]}', _doc()
    )
    shipped, coffee = s.decisions
    assert shipped.segments == [4] and shipped.matched
    assert coffee.segments == [] and not coffee.matched  # nothing in the meeting says it: left uncited


def test_plain_text_answer_falls_back_with_a_note() -> None:
    s = summaries.read_answer("The team will ship the release on Friday.", _doc())
    assert "ship the release on Friday" in s.summary and s.action_items == []
    assert "did not give the structured answer" in s.note


def test_real_model_summary_is_cited_only_with_real_moments(llm_dir: Path) -> None:
    engine = LocalEngine(inspect_llm_dir(llm_dir))
    doc = _doc()
    streamed: list[str] = []
    result = summaries.summarize(doc, engine, progress=summaries.Progress(on_text=streamed.append), max_new_tokens=160)
    assert result.summary.strip() and result.model == "smollm2-135m" and result.parts == 1
    assert len(streamed) > 10 and "".join(streamed).startswith(summaries.ANSWER_PREFIX)  # it streamed, piece by piece
    valid = {s.id for s in doc.segments}
    cited = (
        [c for claim in result.claims() for c in claim.segments] + result.summary_segments + [c.segment for c in result.chapters]
    )
    assert set(cited) <= valid
    # Talk time comes from the transcript, not from the model.
    assert {(s.name, round(s.talk_seconds)) for s in result.speakers} == {("Alice", 16), ("Bob", 16)}


def test_long_transcript_is_split_at_speaker_changes_and_merged(llm_dir: Path) -> None:
    info = dataclasses.replace(inspect_llm_dir(llm_dir), context_length=1100)  # force several parts
    engine = LocalEngine(info)
    doc = _doc()
    doc.segments = [Segment(id=i, start=i * 5.0, end=i * 5.0 + 4.0, text=t, speaker=s) for i, (s, t) in enumerate(LINES * 6)]
    parts = summaries.chunks(doc, engine, max_new_tokens=120)
    assert len(parts) >= 2 and sum(len(p) for p in parts) == len(doc.segments)
    assert all(p[0].speaker != prev[-1].speaker for prev, p in itertools.pairwise(parts))  # cut where the speaker changes
    seen_parts: list[tuple[int, int]] = []
    result = summaries.summarize(
        doc,
        engine,
        progress=summaries.Progress(on_part=lambda n, total: seen_parts.append((n, total))),
        max_new_tokens=120,
        action_step=False,  # the split and merge are the subject here; the action step has its own tests
    )
    assert result.parts == len(parts) and seen_parts[-1][0] == len(parts) + 1  # the reduce step ran
    assert result.summary.strip()
    valid = {s.id for s in doc.segments}
    assert set(result.summary_segments) <= valid and all(set(c.segments) <= valid for c in result.claims())


def test_cancel_stops_generation(llm_dir: Path) -> None:
    engine = LocalEngine(inspect_llm_dir(llm_dir))
    pieces: list[str] = []
    with pytest.raises(summaries.Cancelled):
        summaries.summarize(
            _doc(),
            engine,
            progress=summaries.Progress(on_text=pieces.append, cancelled=lambda: len(pieces) > 5),
            max_new_tokens=400,
        )
    assert len(pieces) <= 8
