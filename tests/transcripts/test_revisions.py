"""Revisions: every save keeps the version it replaced; view, restore (itself a revision), the retention
bound, and deletion that takes the history with it (real SQLite file, raw bytes scanned)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from appliance.accounts import users as accounts
from appliance.transcripts import editing, revisions
from appliance.transcripts import store as transcripts
from tests.transcripts.test_editing import _sids, _words, stored  # noqa: F401  (the fixture)


def _doc(db: sqlite_utils.Database, tid: str):  # type: ignore[no-untyped-def]
    doc = transcripts.get(db, tid)
    assert doc is not None
    return doc


def test_each_save_keeps_the_prior_version_with_who_and_what(stored: tuple[sqlite_utils.Database, str]) -> None:  # noqa: F811
    db, tid = stored
    s0, s1, s2 = _sids(db, tid)
    ed = accounts.create(db, "ed@example.org", "a long enough password", "member")
    words = [{"word": "Hullo", "start": 0.0, "end": 0.4}]
    editing.apply(db, tid, base_revision=1, user_id=ed.id, ops=[{"op": "segment", "sid": s0, "words": words, "note": "greeting"}])
    editing.apply(
        db,
        tid,
        base_revision=2,
        user_id=ed.id,
        ops=[{"op": "merge", "sid": s1}, {"op": "rename_speaker", "speaker": "S2", "name": "Ana"}],
    )
    listed = revisions.history(db, tid, limit=50)
    assert [(i.revision, i.current, i.viewable) for i in listed.items] == [(3, True, True), (2, False, True), (1, False, True)]
    assert listed.items[0].description == "Merged two segments, renamed a speaker" and listed.items[0].by == "ed@example.org"
    assert listed.items[1].description == "Edited 1 segment"
    assert listed.items[2].description == revisions.ORIGINAL and listed.items[2].by is None
    first = revisions.at_revision(db, tid, 1)
    assert [s.text.strip() for s in first.segments] == ["hello there friend", "how are you", "fine thanks"]
    assert first.segments[0].note == "" and first.speakers[1].display_name is None
    second = revisions.at_revision(db, tid, 2)
    assert second.segments[0].note == "greeting" and len(second.segments) == 3
    with pytest.raises(revisions.NotKept):
        revisions.at_revision(db, tid, 7)
    assert s2  # three segments before the merge


def test_restore_brings_back_text_speakers_notes_timing_and_is_itself_undoable(
    stored: tuple[sqlite_utils.Database, str],  # noqa: F811
) -> None:
    db, tid = stored
    s0, s1, _ = _sids(db, tid)
    before = _doc(db, tid)
    editing.apply(
        db,
        tid,
        base_revision=1,
        user_id=None,
        ops=[
            {"op": "segment", "sid": s0, "note": "n", "start": 0.2, "speaker": "S2"},
            {"op": "merge", "sid": s1},
            {"op": "title", "text": "Standup"},
            {"op": "rename_speaker", "speaker": "S1", "name": "Bo"},
        ],
    )
    edited = _doc(db, tid)
    assert len(edited.segments) == 2 and edited.title == "Standup"
    assert revisions.restore(db, tid, 1, user_id=None, limit=50) == 3
    back = _doc(db, tid)
    assert back.revision == 3 and back.title == before.title and back.text == before.text
    assert [(s.start, s.end, s.speaker, s.note, s.text) for s in back.segments] == [
        (s.start, s.end, s.speaker, s.note, s.text) for s in before.segments
    ]
    assert [(w.word, w.start, w.speaker) for s in back.segments for w in s.words] == [
        (w.word, w.start, w.speaker) for s in before.segments for w in s.words
    ]
    assert [(s.id, s.display_name) for s in back.speakers] == [("S1", None), ("S2", None)]
    assert back.segments[0].speaker_confidence == 0.6  # the engine's figures come back too
    assert revisions.history(db, tid, limit=50).items[0].description == "Restored revision 1"
    # The version the restore replaced is kept: restoring it undoes the restore.
    revisions.restore(db, tid, 2, user_id=None, limit=50)
    again = _doc(db, tid)
    assert again.title == "Standup" and len(again.segments) == 2 and again.speakers[0].display_name == "Bo"
    # The editor keeps working on the restored segments (their sids are new).
    editing.apply(db, tid, base_revision=4, user_id=None, ops=[{"op": "split", "sid": _sids(db, tid)[1], "at": 1}])
    assert len(_doc(db, tid).segments) == 3
    with pytest.raises(revisions.NotKept, match="already the current"):
        revisions.restore(db, tid, 5, user_id=None, limit=50)


def test_a_restore_conflicts_with_a_save_based_on_an_older_revision(stored: tuple[sqlite_utils.Database, str]) -> None:  # noqa: F811
    db, tid = stored
    s0 = _sids(db, tid)[0]
    editing.apply(db, tid, base_revision=1, user_id=None, ops=[{"op": "note", "text": "a"}])
    revisions.restore(db, tid, 1, user_id=None, limit=50)
    with pytest.raises(editing.Conflict):
        editing.apply(db, tid, base_revision=2, user_id=None, ops=[{"op": "segment", "sid": s0, "note": "stale"}])


def test_retention_keeps_only_the_newest_copies(stored: tuple[sqlite_utils.Database, str]) -> None:  # noqa: F811
    db, tid = stored
    for revision in range(1, 8):
        editing.apply(
            db, tid, base_revision=revision, user_id=None, ops=[{"op": "note", "text": f"n{revision}"}], keep_revisions=3
        )
    listed = revisions.history(db, tid, limit=3)
    assert listed.current == 8
    assert [i.revision for i in listed.items if i.viewable] == [8, 7, 6, 5]
    assert [i.revision for i in listed.items if not i.viewable] == [4, 3, 2]  # still named in the history, no longer kept
    assert db.execute("SELECT count(*) FROM transcript_revisions WHERE transcript_id = ?", [tid]).fetchone()[0] == 3
    with pytest.raises(revisions.NotKept):
        revisions.restore(db, tid, 2, user_id=None, limit=3)
    # A long history names only a few of the revisions whose copies are gone.
    for revision in range(8, 30):
        editing.apply(
            db, tid, base_revision=revision, user_id=None, ops=[{"op": "note", "text": f"n{revision}"}], keep_revisions=3
        )
    listed = revisions.history(db, tid, limit=3)
    assert len(listed.items) == 3 + 1 + revisions.OLDER_SHOWN
    assert listed.older == 29 - len(listed.items)  # revisions 2 to 30 are named; the transcription's copy is gone
    assert [i.revision for i in listed.items][:4] == [30, 29, 28, 27] and all(i.viewable for i in listed.items[:4])


def test_deleting_the_transcript_deletes_every_revision_from_the_file_and_wal(
    stored: tuple[sqlite_utils.Database, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    db, tid = stored
    sid = _sids(db, tid)[0]
    for i, word in enumerate(["Quokkacanary", "Wombatcanary", "Numbatcanary"]):
        editing.apply(
            db,
            tid,
            base_revision=i + 1,
            user_id=None,
            ops=[{"op": "segment", "sid": sid, "words": [{"word": word, "start": 0, "end": 1}]}],
        )
    db.conn.commit()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert b"Quokkacanary" in raw and b"Wombatcanary" in raw  # only in the kept revisions now: the scan can see them
    assert transcripts.delete(db, tid)
    assert db.execute("SELECT count(*) FROM transcript_revisions").fetchone()[0] == 0
    db.conn.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    for word in (b"Quokkacanary", b"Wombatcanary", b"Numbatcanary", b"friend"):
        assert word not in raw


def test_describe_names_what_changed() -> None:
    assert (
        revisions.describe([{"op": "segment", "sid": 1}, {"op": "segment", "sid": 1}, {"op": "segment", "sid": 2}])
        == "Edited 2 segments"
    )
    assert (
        revisions.describe([{"op": "title", "text": "x"}, {"op": "note", "text": "y"}]) == "Changed the note, changed the title"
    )
    assert revisions.describe([{"op": "split", "sid": 1, "at": 1}, {"op": "add_speaker"}]) == "Split a segment, added a speaker"
