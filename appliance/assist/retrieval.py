"""Lexical ranking of a transcript's segments against a question or a claim: what grounds an answer, and
what a claim the model left uncited is matched to (only when they share enough words to be checked)."""

from __future__ import annotations

import math
import re
from collections import Counter

from appliance.transcripts.document import Segment

_WORD = re.compile(r"\w+", re.UNICODE)
# Short function words in the languages most meetings here are held in; they say nothing about a topic.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "my",
        "your",
        "his",
        "our",
        "their",
        "what",
        "who",
        "whom",
        "which",
        "when",
        "where",
        "why",
        "how",
        "do",
        "does",
        "did",
        "done",
        "not",
        "no",
        "yes",
        "so",
        "than",
        "then",
        "there",
        "here",
        "will",
        "would",
        "can",
        "could",
        "should",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "about",
        "into",
        "over",
        "just",
        "also",
        "very",
        "all",
        "any",
        "some",
        "such",
        "only",
        "own",
        "same",
        "too",
        "more",
        "most",
        "other",
        "again",
        "up",
        "down",
        "out",
        "off",
        "once",
        "let",
        "lets",
        "der",
        "die",
        "das",
        "und",
        "oder",
        "ein",
        "eine",
        "ist",
        "sind",
        "war",
        "nicht",
        "zu",
        "mit",
        "von",
        "den",
        "dem",
        "des",
        "le",
        "la",
        "les",
        "et",
        "ou",
        "un",
        "une",
        "est",
        "de",
        "du",
        "des",
        "en",
        "el",
        "los",
        "las",
        "y",
    ]
)


def _stem(word: str) -> str:
    """A light English suffix strip, so "painted" finds "paint" and "giraffes" "giraffe"; a stem keeps at
    least four letters, and words in other scripts are left whole."""
    if not word.isascii() or not word.isalpha():
        return word
    for suffix in ("ing", "ed", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    return [
        _stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    ]


def rank(query: str, segments: list[Segment], *, limit: int = 8) -> list[tuple[float, Segment]]:
    """BM25 over the segments (each one a document), best first, only segments sharing a word."""
    terms = set(words(query))
    if not terms or not segments:
        return []
    docs = [words(s.text) for s in segments]
    n = len(docs)
    avg = sum(len(d) for d in docs) / n or 1.0
    df = Counter(t for d in docs for t in set(d) if t in terms)
    scored = []
    for seg, doc in zip(segments, docs, strict=True):
        tf = Counter(t for t in doc if t in terms)
        if not tf:
            continue
        score = 0.0
        for term, f in tf.items():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            score += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * len(doc) / avg))
        scored.append((score, seg))
    scored.sort(key=lambda p: (-p[0], p[1].id))
    return scored[:limit]


def shared_words(a: str, b: str) -> int:
    return len(set(words(a)) & set(words(b)))


def best_match(claim: str, segments: list[Segment], *, min_shared: int = 2) -> Segment | None:
    """The segment a claim most plausibly comes from, when it shares at least `min_shared` content words."""
    for _score, seg in rank(claim, segments, limit=3):
        if shared_words(claim, seg.text) >= min_shared:
            return seg
    return None
