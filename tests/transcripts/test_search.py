"""Full-text search: query building, escaping, filters and visibility (real SQLite file with FTS5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from appliance.core import migrations
from appliance.core.db import connect
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcription.diarization.merge import Speaker
from appliance.transcripts import editing, search
from appliance.transcripts import store as transcripts


def _store(db: sqlite_utils.Database, text: str, workspace: str, language: str = "en") -> str:
    words = [Word(i * 0.5, i * 0.5 + 0.4, " " + w, 0.9, "S1") for i, w in enumerate(text.split())]
    result = AsrResult([Segment(0.0, len(words) * 0.5, " " + text, words, speaker="S1")], language, 1.0, 10.0, 0.1)
    return transcripts.store(
        db,
        result,
        job_id=None,
        filename=f"{text[:10]}.wav",
        size_bytes=1,
        model="tiny.en",
        options={},
        timings={},
        speakers=[Speaker("S1", "Speaker 1")],
        workspace_id=workspace,
    )


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    db = connect(tmp_path / "s.db")
    migrations.apply(db)
    for wid in ("w1", "w2"):
        db.execute("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, '2026-01-01')", [wid, wid])
    return db


def test_query_words_become_quoted_terms_and_fts_syntax_is_inert() -> None:
    assert search.fts_query("budget review") == '"budget" "review"*'
    assert search.fts_query('NEAR(a b) OR "x" -y *') == '"NEAR" "a" "b" "OR" "x" "y"*'
    assert search.fts_query("  ,;!  ") is None


def test_snippets_are_escaped_before_marking() -> None:
    assert search.highlight("<script>\x02x\x03</script>") == "&lt;script&gt;<mark>x</mark>&lt;/script&gt;"


def test_search_finds_marks_links_and_respects_workspaces(db: sqlite_utils.Database) -> None:
    mine = _store(db, "the budget for the new <b>clinic</b> was approved", "w1")
    _store(db, "nobody mentioned the budget here", "w2")
    found = search.search(db, "budget", workspace_ids=["w1"])
    assert found["total"] == 1
    item = found["items"][0]
    assert item["transcript_id"] == mine and item["speaker_name"] == "Speaker 1"
    assert "<mark>budget</mark>" in item["snippet_html"] and "&lt;b&gt;clinic" in item["snippet_html"]
    assert item["link"] == f"/t/{mine}?t=0.00#s-{item['sid']}"
    assert search.search(db, "budget", workspace_ids=["w1", "w2"])["total"] == 2
    assert search.search(db, "budget", workspace_ids=[])["total"] == 0
    assert search.search(db, "budg", workspace_ids=["w1"])["total"] == 1  # prefix while typing


def test_filters_language_speaker_and_dates(db: sqlite_utils.Database) -> None:
    tid = _store(db, "weekly standup notes", "w1", language="de")
    assert search.search(db, "standup", workspace_ids=["w1"], language="en")["total"] == 0
    assert search.search(db, "standup", workspace_ids=["w1"], language="de")["total"] == 1
    editing.apply(
        db, tid, base_revision=1, ops=[{"op": "rename_speaker", "speaker": "S1", "name": "Dr. O'Neil 100%"}], user_id=None
    )
    assert search.search(db, "standup", workspace_ids=["w1"], speaker="o'neil 100%")["total"] == 1
    assert search.search(db, "standup", workspace_ids=["w1"], speaker="_")["total"] == 0  # LIKE wildcards are literal
    assert search.search(db, "standup", workspace_ids=["w1"], date_from="2999-01-01")["total"] == 0
    assert search.search(db, "standup", workspace_ids=["w1"], date_to="2000-01-01")["total"] == 0
    doc = transcripts.get(db, tid)
    assert doc is not None and doc.created_at is not None
    today = doc.created_at[:10]
    assert search.search(db, "standup", workspace_ids=["w1"], date_from=today, date_to=today)["total"] == 1


def test_private_rows_never_match(db: sqlite_utils.Database) -> None:
    tid = _store(db, "confidential diagnosis discussed", "w1")
    db.execute("UPDATE transcripts SET private = 1 WHERE id = ?", [tid])
    assert search.search(db, "diagnosis", workspace_ids=["w1"])["total"] == 0


@pytest.mark.parametrize(
    ("said", "other", "query"),
    [
        ("今天天气很好，我们去公园散步。", "明天下雨，我们在家看书。", "天气"),  # a two-character word inside a sentence
        ("今天天气很好，我们去公园散步。", "明天下雨，我们在家看书。", "公园"),
        ("今天天气很好，我们去公园散步。", "明天下雨，我们在家看书。", "去公园散步"),  # a longer phrase: the trigram index
        ("সমুদ্রের ধারে বালি আর ঝিনুক।", "আমি বাংলায় গান গাই।", "বালি"),
        ("અમે સાંજે ગીત ગાયું.", "હું ગુજરાતી બોલું છું.", "ગીત"),
        ("आज मौसम बहुत अच्छा है।", "कल बारिश होगी।", "मौसम"),
        ("東京で会議があります。", "大阪は雨です。", "会議"),
        ("سنذهب إلى السوق غدا صباحا", "الطقس جميل اليوم في المدينة", "السوق"),
        ("Мы обсуждали бюджет на следующий год.", "Погода сегодня хорошая.", "бюджет"),
        ("Le café était très fort ce matin.", "Nous avons parlé du budget annuel.", "café"),
    ],
)
def test_words_are_found_in_every_script_and_only_where_they_are(
    db: sqlite_utils.Database, said: str, other: str, query: str
) -> None:
    wanted = _store(db, said, "w1")
    _store(db, other, "w1")
    found = search.search(db, query, workspace_ids=["w1"])
    assert [item["transcript_id"] for item in found["items"]] == [wanted], (query, found)
    assert f"<mark>{query}" in found["items"][0]["snippet_html"] or "<mark>" in found["items"][0]["snippet_html"]


def test_scripts_mix_in_one_query_and_latin_words_stay_whole(db: sqlite_utils.Database) -> None:
    both = _store(db, "the budget meeting 会议 in Tokyo", "w1")
    _store(db, "the budget only", "w1")
    _store(db, "会议 only", "w1")
    assert [i["transcript_id"] for i in search.search(db, "budget 会议", workspace_ids=["w1"])["items"]] == [both]
    assert search.search(db, "udget", workspace_ids=["w1"])["total"] == 0  # Latin words match whole (or as a prefix)
    assert search.plan("বালি").grams == ["বালি"] and search.terms("বালি আর") == ["বালি", "আর"]


def test_deleting_a_transcript_leaves_no_trigram_of_it(db: sqlite_utils.Database, tmp_path: Path) -> None:
    tid = _store(db, "秘密の会議は水曜日です", "w1")
    assert search.search(db, "秘密の会議", workspace_ids=["w1"])["total"] == 1
    transcripts.delete(db, tid)
    assert search.search(db, "秘密の会議", workspace_ids=["w1"])["total"] == 0
    db.conn.close()
    raw = (tmp_path / "s.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    assert "秘密".encode() not in raw and "会議は".encode() not in raw
