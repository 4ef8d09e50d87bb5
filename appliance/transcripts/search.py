"""Full-text search over segment text (SQLite FTS5), limited to the workspaces a caller may see.

Private transcripts never have segment rows, so they can never match: the index holds no word of them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.core.db import like_pattern

# Snippet markers that cannot occur in stored text (control characters are refused on input), so the
# snippet can be HTML-escaped first and the markers turned into <mark> after.
_OPEN, _CLOSE = "\x02", "\x03"
MAX_TERMS = 12
# Scripts written without spaces between words (CJK, kana, Thai, Lao, Khmer, Myanmar, Tibetan) or with
# vowel signs the word index treats as separators (the Indic scripts): their words are matched as
# substrings, in the trigram index, instead of as whole words.
_SUBSTRING_SCRIPTS = (
    (0x0900, 0x0DFF),  # Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam, Sinhala
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
)
TRIGRAM = 3  # the trigram index finds substrings of at least this many characters


def _in_substring_script(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _SUBSTRING_SCRIPTS)


def terms(text: str) -> list[str]:
    """The words people typed: runs of letters, digits and combining marks (a Bengali vowel sign belongs
    to its word), everything else a separator. FTS5 syntax typed in is just text."""
    out, current = [], []
    for char in text:
        if unicodedata.category(char)[0] in "LNM" or char == "_":
            current.append(char)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out[:MAX_TERMS]


@dataclass(frozen=True)
class Plan:
    words: list[str]  # the word index: whole words, the last one a prefix (results come while typing)
    grams: list[str]  # the trigram index: substrings of three characters or more
    short: list[str]  # substrings too short for trigrams (a two-character Chinese word): LIKE over the rows

    @property
    def empty(self) -> bool:
        return not (self.words or self.grams or self.short)


def plan(text: str) -> Plan:
    words: list[str] = []
    grams: list[str] = []
    short: list[str] = []
    for term in terms(text):
        if any(_in_substring_script(c) for c in term):
            (grams if len(term) >= TRIGRAM else short).append(term)
        else:
            words.append(term)
    return Plan(words, grams, short)


def fts_query(text: str) -> str | None:
    """Each word a quoted term (the last one a prefix), all required. None when there is nothing to search for."""
    words = plan(text).words
    if not words:
        return None
    quoted = [f'"{t}"' for t in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _grams_query(grams: list[str]) -> str:
    return " ".join(f'"{g}"' for g in grams)


def _mark(text: str, needles: list[str], width: int = 60) -> str:
    """A snippet around the first match, marked as snippet() would (for rows no index marked)."""
    folded = text.casefold()
    hits = [(folded.find(n.casefold()), n) for n in needles]
    hits = [(i, n) for i, n in hits if i >= 0]
    if not hits:
        return text[: width * 2]
    first = min(i for i, _ in hits)
    start = max(0, first - width)
    piece = text[start : first + width * 2]
    for needle in {n for _, n in hits}:
        piece = re.sub(re.escape(needle), lambda m: f"{_OPEN}{m.group(0)}{_CLOSE}", piece, flags=re.IGNORECASE)
    return ("…" if start else "") + piece


def highlight(snippet: str) -> str:
    """Escape the snippet, then mark the matched words: safe to put in a page as HTML."""
    return html.escape(snippet).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")


def search(
    db: sqlite_utils.Database,
    text: str,
    *,
    workspace_ids: list[str],
    language: str | None = None,
    speaker: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Matching segments, best first: transcript, segment sid, time, speaker and a marked snippet."""
    query = plan(text)
    if query.empty or not workspace_ids:
        return {"items": [], "total": 0, "limit": limit, "offset": offset, "query": text}
    where = [f"t.workspace_id IN ({', '.join('?' for _ in workspace_ids)})", "t.private = 0"]
    args: list[Any] = [*workspace_ids]
    if language:
        where.append("t.language = ?")
        args.append(language)
    if date_from:
        where.append("t.created_at >= ?")
        args.append(date_from)
    if date_to:
        where.append("t.created_at < date(?, '+1 day')")
        args.append(date_to)
    if speaker:
        where.append(
            "s.speaker IN (SELECT key FROM speakers WHERE transcript_id = t.id AND "
            "(display_name LIKE ? ESCAPE '\\' OR label LIKE ? ESCAPE '\\'))"
        )
        pattern = like_pattern(speaker)
        args += [pattern, pattern]
    # The most selective index drives the query (and ranks and marks); the others filter.
    if query.words:
        driver, match = "segments_fts", fts_query(text)
    elif query.grams:
        driver, match = "segments_grams", _grams_query(query.grams)
    else:
        driver, match = None, None
    if driver == "segments_fts" and query.grams:
        where.append("s.id IN (SELECT rowid FROM segments_grams WHERE segments_grams MATCH ?)")
        args.append(_grams_query(query.grams))
    for needle in query.short:
        where.append("s.text LIKE ? ESCAPE '\\'")
        args.append(like_pattern(needle))
    if driver is not None:
        sql_from = (
            f"FROM {driver} JOIN segments s ON s.id = {driver}.rowid JOIN transcripts t ON t.id = s.transcript_id "
            f"WHERE {driver} MATCH ? AND {' AND '.join(where)}"
        )
        head: list[Any] = [match]
        snippet_sql, order = f"snippet({driver}, 0, '{_OPEN}', '{_CLOSE}', '…', 16)", "rank"
    else:
        sql_from = f"FROM segments s JOIN transcripts t ON t.id = s.transcript_id WHERE {' AND '.join(where)}"
        head = []
        snippet_sql, order = "s.text", "t.created_at DESC, s.position"
    total = next(iter(db.query(f"SELECT count(*) AS n {sql_from}", [*head, *args])))["n"]
    rows = db.query(
        f"SELECT t.id AS transcript_id, coalesce(t.title, t.filename) AS title, t.language, t.created_at, s.id AS sid, "
        f"s.start, s.end, s.speaker, "
        f"(SELECT coalesce(display_name, label) FROM speakers WHERE transcript_id = t.id AND key = s.speaker) AS speaker_name, "
        f"{snippet_sql} AS snippet {sql_from} "
        f"ORDER BY {order} LIMIT ? OFFSET ?",
        [*head, *args, limit, offset],
    )
    items = []
    for r in rows:
        snippet = r.pop("snippet")
        if driver is None or query.short:
            snippet = _mark(snippet.replace(_OPEN, "").replace(_CLOSE, ""), [*query.short, *query.grams, *query.words])
        items.append(
            {**r, "snippet_html": highlight(snippet), "link": f"/t/{r['transcript_id']}?t={r['start']:.2f}#s-{r['sid']}"}
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset, "query": text}


@dataclass(frozen=True)
class Passage:
    """A segment found for a library-wide question, with the transcript it belongs to."""

    transcript_id: str
    title: str
    segment: int  # its position in the transcript (Segment.id): what the transcript page links to
    sid: int
    start: float
    end: float
    text: str
    speaker_name: str | None
    score: float  # the word index's bm25 rank of the hit it belongs to (lower is better; neighbours share it)


def passages(
    db: sqlite_utils.Database, words: list[str], *, workspace_ids: list[str], limit: int = 8, neighbours: int = 1
) -> list[Passage]:
    """Segments holding ANY of `words` (each a prefix: "paint" finds "painted"), best first by the word
    index's bm25, in the workspaces given and never in a private transcript, each with the `neighbours`
    segments before and after it (an answer is often in the next sentence). Unlike search(), which
    wants every word typed, a question's words are alternatives: "who fixes the installer" must find
    "Bob will fix the installer". Words only: scripts written without spaces (the trigram index) are not
    searched here."""
    terms = [w for w in dict.fromkeys(words) if w and not any(_in_substring_script(c) for c in w)][:MAX_TERMS]
    if not terms or not workspace_ids:
        return []
    marks = ", ".join("?" for _ in workspace_ids)
    match = " OR ".join(f'"{t}"*' for t in terms)
    hits = list(
        db.query(
            "SELECT s.id, s.transcript_id, s.position, segments_fts.rank AS score FROM segments_fts "
            "JOIN segments s ON s.id = segments_fts.rowid JOIN transcripts t ON t.id = s.transcript_id "
            f"WHERE segments_fts MATCH ? AND t.workspace_id IN ({marks}) AND t.private = 0 "
            "ORDER BY segments_fts.rank LIMIT ?",
            [match, *workspace_ids, limit],
        )
    )
    out: dict[int, Passage] = {}
    for hit in hits:
        rows = db.query(
            "SELECT s.id, s.transcript_id, s.position, s.start, s.end, s.text, coalesce(t.title, t.filename) AS title, "
            "(SELECT coalesce(display_name, label) FROM speakers WHERE transcript_id = t.id AND key = s.speaker) AS speaker_name "
            "FROM segments s JOIN transcripts t ON t.id = s.transcript_id "
            "WHERE s.transcript_id = ? AND s.position BETWEEN ? AND ? ORDER BY s.position",
            [hit["transcript_id"], hit["position"] - neighbours, hit["position"] + neighbours],
        )
        for r in rows:
            if r["id"] not in out and r["text"].strip():
                out[r["id"]] = Passage(
                    transcript_id=r["transcript_id"],
                    title=r["title"],
                    segment=r["position"],
                    sid=r["id"],
                    start=r["start"],
                    end=r["end"],
                    text=r["text"].strip(),
                    speaker_name=r["speaker_name"],
                    score=hit["score"],
                )
    # Grouped by recording and in spoken order within it, best recording first: the model reads a
    # conversation, not shuffled lines.
    best: dict[str, float] = {}
    for p in out.values():
        best[p.transcript_id] = min(best.get(p.transcript_id, 0.0), p.score)
    return sorted(out.values(), key=lambda p: (best[p.transcript_id], p.transcript_id, p.segment))
