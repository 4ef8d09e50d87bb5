"""Questions across the whole library a person may see: the transcripts' own words found by the full-text
index (transcripts.search.passages, limited to the caller's workspaces and never a private transcript),
the best of them numbered [1], [2], … for the model, its citations checked as for one transcript's
questions (ask.py). Nothing found: "Not in your transcripts", and the model is not asked."""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec

from appliance.assist.engine import Message, TextEngine
from appliance.assist.retrieval import STOPWORDS, _stem, shared_words
from appliance.assist.summaries import _CITE, _NUM, language_name
from appliance.transcripts.search import Passage

NOT_FOUND = "Not in your transcripts."
MAX_PASSAGES = 16  # lines shown to the model: 8 hits and their neighbours, as for one transcript


class LibraryCitation(msgspec.Struct, kw_only=True):
    transcript_id: str
    title: str
    segment: int
    start: float
    end: float
    text: str
    link: str  # the transcript page at that moment


class LibraryAnswer(msgspec.Struct, kw_only=True):
    question: str
    answer: str
    citations: list[LibraryCitation] = msgspec.field(default_factory=list)
    found: bool = True  # False: no transcript the caller may see is about it
    grounding: str = "cited"  # cited (by the model) | retrieved (the model cited nothing usable)
    searched: int = 0  # passages the model was shown
    model: str | None = None


SYSTEM = (
    "You answer questions using only the numbered lines given, which come from several recorded meetings. "
    "Each line starts with its number in brackets, like [3], then the recording's title. "
    "Answer in one to three sentences and put the numbers of the lines you used in brackets after the sentence. "
    f"If the lines do not contain the answer, say exactly: {NOT_FOUND}"
)


def search_words(question: str) -> list[str]:
    """The question's content words for the index, each also as its stem (both are prefixes there)."""
    raw = [w.lower() for w in re.findall(r"\w+", question)]
    out: list[str] = []
    for w in raw:
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        out += [w, _stem(w)]
    return list(dict.fromkeys(out))


def _citation(p: Passage) -> LibraryCitation:
    return LibraryCitation(
        transcript_id=p.transcript_id,
        title=p.title,
        segment=p.segment,
        start=p.start,
        end=p.end,
        text=p.text,
        link=f"/t/{p.transcript_id}?t={p.start:.2f}#s-{p.sid}",
    )


def answer(
    question: str,
    passages: list[Passage],
    engine: TextEngine,
    *,
    language: str | None = None,
    max_new_tokens: int = 200,
    cancelled: Callable[[], bool] = lambda: False,
) -> LibraryAnswer:
    question = question.strip()
    given = passages[:MAX_PASSAGES]
    if not given:
        return LibraryAnswer(question=question, answer=NOT_FOUND, found=False, model=engine.name)
    lines = [f"[{n}] ({p.title}) {p.speaker_name + ': ' if p.speaker_name else ''}{p.text}" for n, p in enumerate(given, 1)]
    messages = [
        Message("system", SYSTEM),
        Message(
            "user",
            "Lines:\n"
            + "\n".join(lines)
            + f"\n\nQuestion: {question}\nAnswer in {language_name(language) if language else 'the language of the question'}.",
        ),
    ]
    text = "".join(engine.stream(messages, max_tokens=max_new_tokens, cancelled=cancelled)).strip()
    cited: list[int] = []
    for m in _CITE.finditer(text):
        for n in _NUM.findall(m.group(0)):
            if 1 <= int(n) <= len(given) and int(n) not in cited:
                cited.append(int(n))
    said = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", _CITE.sub("", text))).strip()
    if not said or NOT_FOUND.lower().rstrip(".") in said.lower():
        return LibraryAnswer(question=question, answer=NOT_FOUND, found=False, searched=len(given), model=engine.name)
    # As for one transcript: a cited line stays only where it shares a word with the question or answer.
    cited = [n for n in cited if shared_words(f"{question} {said}", given[n - 1].text) >= 1]
    grounding = "cited"
    if not cited:
        grounding = "retrieved"
        cited = [n for n, p in enumerate(given, 1) if shared_words(said, p.text) >= 2][:3] or [1]
    return LibraryAnswer(
        question=question,
        answer=said,
        citations=[_citation(given[n - 1]) for n in cited],
        grounding=grounding,
        searched=len(given),
        model=engine.name,
    )
