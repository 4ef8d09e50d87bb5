"""Full-text search over segment text (SQLite FTS5), limited to the workspaces a caller may see.

Private transcripts never have segment rows, so they can never match: the index holds no word of them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import sqlite_utils

from appliance.core.db import like_pattern

# Snippet markers that cannot occur in stored text (control characters are refused on input), so the
# snippet can be HTML-escaped first and the markers turned into <mark> after.
_OPEN, _CLOSE = "\x02", "\x03"
_TERM = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12


def fts_query(text: str) -> str | None:
    """People type words, not FTS5 syntax: each word becomes a quoted term (the last one a prefix, so
    results come while typing), all required. None when there is nothing to search for."""
    terms = _TERM.findall(text)[:MAX_TERMS]
    if not terms:
        return None
    quoted = [f'"{t}"' for t in terms]
    quoted[-1] += "*"
    return " ".join(quoted)


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
    query = fts_query(text)
    if query is None or not workspace_ids:
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
    sql_from = (
        f"FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid JOIN transcripts t ON t.id = s.transcript_id "
        f"WHERE segments_fts MATCH ? AND {' AND '.join(where)}"
    )
    total = next(iter(db.query(f"SELECT count(*) AS n {sql_from}", [query, *args])))["n"]
    rows = db.query(
        f"SELECT t.id AS transcript_id, coalesce(t.title, t.filename) AS title, t.language, t.created_at, s.id AS sid, "
        f"s.start, s.end, s.speaker, "
        f"(SELECT coalesce(display_name, label) FROM speakers WHERE transcript_id = t.id AND key = s.speaker) AS speaker_name, "
        f"snippet(segments_fts, 0, '{_OPEN}', '{_CLOSE}', '…', 16) AS snippet {sql_from} "
        f"ORDER BY rank LIMIT ? OFFSET ?",
        [query, *args, limit, offset],
    )
    items = []
    for r in rows:
        snippet = r.pop("snippet")
        items.append(
            {**r, "snippet_html": highlight(snippet), "link": f"/t/{r['transcript_id']}?t={r['start']:.2f}#s-{r['sid']}"}
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset, "query": text}
