"""Saving edits against a revision: every operation, validation, rebase and conflict (real SQLite file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from appliance.core import migrations
from appliance.core.db import connect
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcription.diarization.merge import Speaker
from appliance.transcripts import editing
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript


def _result() -> AsrResult:
    def seg(start: float, words: list[str], speaker: str) -> Segment:
        ws = [Word(start + i * 0.5, start + i * 0.5 + 0.4, " " + w, 0.9, speaker) for i, w in enumerate(words)]
        return Segment(start, start + len(words) * 0.5, " " + " ".join(words), ws, speaker=speaker, speaker_confidence=0.6)

    segments = [
        seg(0.0, ["hello", "there", "friend"], "S1"),
        seg(2.0, ["how", "are", "you"], "S2"),
        seg(4.0, ["fine", "thanks"], "S1"),
    ]
    return AsrResult(segments, "en", 1.0, 6.0, 0.1)


@pytest.fixture
def stored(tmp_path: Path) -> tuple[sqlite_utils.Database, str]:
    db = connect(tmp_path / "t.db")
    migrations.apply(db)
    tid = transcripts.store(
        db,
        _result(),
        job_id=None,
        filename="talk.wav",
        size_bytes=1,
        model="tiny.en",
        options={},
        timings={},
        speakers=[Speaker("S1", "Speaker 1"), Speaker("S2", "Speaker 2")],
    )
    return db, tid


def _sids(db: sqlite_utils.Database, tid: str) -> list[int]:
    doc = transcripts.get(db, tid)
    assert doc is not None
    return [s.sid for s in doc.segments if s.sid is not None]


def _words(doc: Transcript, i: int) -> list[str]:
    return [w.word.strip() for w in doc.segments[i].words]


def test_a_word_edit_updates_words_text_and_revision(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    sid = _sids(db, tid)[0]
    words = [
        {"word": "hello", "start": 0.0, "end": 0.4},
        {"word": "dear", "start": 0.5, "end": 0.9, "edited": True},
        {"word": "friend", "start": 1.0, "end": 1.4},
    ]
    result = editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": sid, "words": words}], user_id=None)
    assert result["revision"] == 2
    doc = transcripts.get(db, tid)
    assert doc is not None and doc.revision == 2
    assert _words(doc, 0) == ["hello", "dear", "friend"] and doc.segments[0].text.strip() == "hello dear friend"
    assert doc.segments[0].words[1].edited is True and doc.segments[0].words[0].edited is False
    assert doc.text.startswith("hello dear friend how are you")
    # The search index follows the edit: the new word is found, the old one is not.
    assert [r["rowid"] for r in db.query("SELECT rowid FROM segments_fts WHERE segments_fts MATCH 'dear'")] == [sid]
    assert not list(db.query("SELECT rowid FROM segments_fts WHERE segments_fts MATCH 'there'"))


def test_speakers_rename_add_merge_and_reassign(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    _s0, s1, _s2 = _sids(db, tid)
    editing.apply(db, tid, base_revision=1, ops=[{"op": "rename_speaker", "speaker": "S1", "name": "Alice"}], user_id=None)
    editing.apply(
        db,
        tid,
        base_revision=2,
        ops=[{"op": "add_speaker", "key": "S3", "name": "Carol"}, {"op": "segment", "sid": s1, "speaker": "S3"}],
        user_id=None,
    )
    doc = transcripts.get(db, tid)
    assert doc is not None
    assert {s.id: s.display_name for s in doc.speakers} == {"S1": "Alice", "S2": None, "S3": "Carol"}
    assert doc.segments[1].speaker == "S3" and {w.speaker for w in doc.segments[1].words} == {"S3"}
    editing.apply(db, tid, base_revision=3, ops=[{"op": "merge_speakers", "from": "S3", "into": "S1"}], user_id=None)
    doc = transcripts.get(db, tid)
    assert doc is not None and [s.speaker for s in doc.segments] == ["S1", "S1", "S1"]
    assert [s.id for s in doc.speakers] == ["S1", "S2"]


def test_split_and_merge_keep_words_and_order(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    s0, _s1, s2 = _sids(db, tid)
    editing.apply(db, tid, base_revision=1, ops=[{"op": "split", "sid": s0, "at": 1}], user_id=None)
    doc = transcripts.get(db, tid)
    assert doc is not None and [len(s.words) for s in doc.segments] == [1, 2, 3, 2]
    assert doc.segments[0].sid == s0 and doc.segments[1].start == 0.5
    editing.apply(db, tid, base_revision=2, ops=[{"op": "merge", "sid": s0}], user_id=None)
    doc = transcripts.get(db, tid)
    assert doc is not None and _words(doc, 0) == ["hello", "there", "friend"] and len(doc.segments) == 3
    with pytest.raises(editing.EditError, match="last segment"):
        editing.apply(db, tid, base_revision=3, ops=[{"op": "merge", "sid": s2}], user_id=None)


def test_notes_title_and_timing(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    s0 = _sids(db, tid)[0]
    editing.apply(
        db,
        tid,
        base_revision=1,
        user_id=None,
        ops=[
            {"op": "note", "text": "Check the budget figure"},
            {"op": "title", "text": "Board meeting"},
            {"op": "segment", "sid": s0, "note": "unclear", "start": 0.1, "end": 1.6},
        ],
    )
    doc = transcripts.get(db, tid)
    assert doc is not None and doc.note == "Check the budget figure" and doc.title == "Board meeting"
    assert doc.segments[0].note == "unclear" and (doc.segments[0].start, doc.segments[0].end) == (0.1, 1.6)


@pytest.mark.parametrize(
    "op, message",
    [
        ({"op": "segment", "sid": 99999}, "no segment"),
        ({"op": "segment", "sid": "1"}, "sid must be"),
        ({"op": "segment", "sid": None, "start": 2.0, "end": 1.0}, "sid must be"),
        ({"op": "explode"}, "ops[1].op must be"),
        ({"op": "title", "text": "   "}, "cannot be empty"),
        ({"op": "note", "text": "bell\x07"}, "control characters"),
        ({"op": "rename_speaker", "speaker": "S9", "name": "x"}, "no speaker"),
        ({"op": "add_speaker", "key": "S1"}, "unused speaker key"),
        ({"op": "add_speaker", "key": "../etc"}, "unused speaker key"),
        ({"op": "merge_speakers", "from": "S1", "into": "S1"}, "two different"),
        ({"op": "split", "sid": None, "at": 0}, "sid must be"),
    ],
)
def test_malformed_operations_are_refused_and_nothing_changes(
    stored: tuple[sqlite_utils.Database, str], op: dict[str, Any], message: str
) -> None:
    db, tid = stored
    before = transcripts.get(db, tid)
    ops = [{"op": "note", "text": "first op is fine"}, op]  # all or nothing: the good op is not kept either
    with pytest.raises(editing.EditError) as caught:
        editing.apply(db, tid, base_revision=1, ops=ops, user_id=None)
    assert message in str(caught.value)
    assert transcripts.get(db, tid) == before


def test_bad_words_are_refused(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    sid = _sids(db, tid)[0]
    for words, message in [
        ([{"word": "two words", "start": 0, "end": 1}], "one word"),
        ([{"word": "x", "start": 1, "end": 0.5}], "ends before"),
        ([{"word": "x", "start": 0, "end": 999}], "within the recording"),
        ([{"word": "x", "start": float("nan"), "end": 1}], "number of seconds"),
        ("not a list", "must be a list"),
    ]:
        with pytest.raises(editing.EditError, match=message):
            editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": sid, "words": words}], user_id=None)


def test_stale_edits_rebase_on_other_segments_and_conflict_on_the_same(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    s0, s1, _ = _sids(db, tid)
    editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": s0, "note": "tab A"}], user_id=None)
    # Tab B still on revision 1: a different segment is applied on top.
    rebased = editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": s1, "note": "tab B"}], user_id=None)
    assert rebased["revision"] == 3 and rebased["rebased_over"] == [f"s:{s0}"]
    # The same segment from revision 1 conflicts, names the current revision and writes nothing.
    with pytest.raises(editing.Conflict) as caught:
        editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": s0, "note": "tab B too"}], user_id=None)
    assert caught.value.current_revision == 3
    doc = transcripts.get(db, tid)
    assert doc is not None and doc.segments[0].note == "tab A" and doc.revision == 3
    # A structural change conflicts with anything done meanwhile; "keep mine" forces it through.
    with pytest.raises(editing.Conflict):
        editing.apply(db, tid, base_revision=2, ops=[{"op": "merge", "sid": s1}], user_id=None)
    assert (
        editing.apply(db, tid, base_revision=1, ops=[{"op": "segment", "sid": s0, "note": "mine"}], user_id=None, force=True)[
            "revision"
        ]
        == 4
    )
    with pytest.raises(editing.EditError, match="not a revision"):
        editing.apply(db, tid, base_revision=9, ops=[{"op": "note", "text": "x"}], user_id=None)


def test_deleting_an_edited_transcript_leaves_no_word_in_the_search_index(
    stored: tuple[sqlite_utils.Database, str], tmp_path: Path
) -> None:
    db, tid = stored
    sid = _sids(db, tid)[0]
    editing.apply(
        db,
        tid,
        base_revision=1,
        user_id=None,
        ops=[{"op": "segment", "sid": sid, "words": [{"word": "Zanzibarquux", "start": 0, "end": 1}]}],
    )
    assert transcripts.delete(db, tid)
    db.conn.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    for word in (b"Zanzibarquux", b"zanzibarquux", b"friend"):
        assert word not in raw


def test_naming_the_speaker_settles_the_engines_doubt(stored: tuple[sqlite_utils.Database, str]) -> None:
    db, tid = stored
    s0, s1, _s2 = _sids(db, tid)
    ops = [{"op": "segment", "sid": s0, "note": "kept speaker"}, {"op": "segment", "sid": s1, "speaker": "S1"}]
    editing.apply(db, tid, base_revision=1, ops=ops, user_id=None)
    doc = transcripts.get(db, tid)
    assert doc is not None
    assert doc.segments[0].speaker_confidence == 0.6  # an edit that leaves the speaker leaves the doubt
    assert doc.segments[1].speaker_confidence is None  # a person chose the speaker
