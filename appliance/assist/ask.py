"""Questions about one transcript, answered from its own words: the most relevant segments are found by
lexical ranking (retrieval.rank) and only they go to the model, each with its number; the answer's
citations are checked against them. Nothing relevant found: "Not in this recording", and the model is
not asked at all (a small model asked anyway would invent an answer)."""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec

from appliance.assist.engine import Message, TextEngine
from appliance.assist.retrieval import rank, shared_words
from appliance.assist.summaries import _CITE, _NUM, language_name
from appliance.transcripts.document import Segment, Transcript

NOT_FOUND = "Not in this recording."
CONTEXT_SEGMENTS = 8
NEIGHBOURS = 1  # the segment before and after each hit: an answer is often in the next sentence


class Citation(msgspec.Struct, kw_only=True):
    segment: int
    start: float
    end: float
    text: str


class Answer(msgspec.Struct, kw_only=True):
    question: str
    answer: str
    citations: list[Citation] = msgspec.field(default_factory=list)
    found: bool = True  # False: nothing in the transcript answers it
    grounding: str = "cited"  # cited (by the model) | retrieved (the model cited nothing: the passages it was given)
    model: str | None = None


SYSTEM = (
    "You answer questions about a meeting using only the transcript lines given. Each line starts with its number in brackets, like [12]. "
    "Answer in one to three sentences and put the numbers of the lines you used in brackets after the sentence. "
    f"If the lines do not contain the answer, say exactly: {NOT_FOUND}"
)


def context_for(question: str, doc: Transcript) -> list[Segment]:
    segments = [s for s in doc.segments if s.text.strip()]
    hits = rank(question, segments, limit=CONTEXT_SEGMENTS)
    if not hits:
        return []
    by_pos = {s.id: i for i, s in enumerate(segments)}
    keep: set[int] = set()
    for _score, seg in hits:
        i = by_pos[seg.id]
        keep.update(range(max(0, i - NEIGHBOURS), min(len(segments), i + NEIGHBOURS + 1)))
    return [segments[i] for i in sorted(keep)]


def ask(
    doc: Transcript,
    question: str,
    engine: TextEngine,
    *,
    language: str | None = None,
    max_new_tokens: int = 200,
    cancelled: Callable[[], bool] = lambda: False,
) -> Answer:
    question = question.strip()
    context = context_for(question, doc)
    if not context:
        return Answer(question=question, answer=NOT_FOUND, found=False, model=engine.name)
    names = doc.speaker_names()
    lines = [f"[{s.id}] {names.get(s.speaker or '', '') + ': ' if s.speaker else ''}{s.text.strip()}" for s in context]
    messages = [
        Message("system", SYSTEM),
        Message(
            "user",
            "Transcript lines:\n"
            + "\n".join(lines)
            + f"\n\nQuestion: {question}\nAnswer in {language_name(language or doc.language)}.",
        ),
    ]
    text = "".join(engine.stream(messages, max_tokens=max_new_tokens, cancelled=cancelled)).strip()
    given = {s.id: s for s in context}
    cited = []
    for m in _CITE.finditer(text):
        for n in _NUM.findall(m.group(0)):
            if int(n) in given and int(n) not in cited:
                cited.append(int(n))
    answer = re.sub(r"\s+", " ", _CITE.sub("", text)).strip()
    if not answer or NOT_FOUND.lower().rstrip(".") in answer.lower():
        return Answer(question=question, answer=NOT_FOUND, found=False, model=engine.name)
    # A small model cites a line it was given that has nothing to do with its answer: a citation stays only
    # where the cited line shares a word with the question or the answer.
    cited = [i for i in cited if shared_words(f"{question} {answer}", given[i].text) >= 1]
    grounding = "cited"
    if not cited:
        # Nothing usable cited: show the best-ranked passages it was given that share words with its
        # answer (or the best-ranked one), so the reader can check the claim against the recording.
        grounding = "retrieved"
        ranked = [seg for _score, seg in rank(question, context, limit=CONTEXT_SEGMENTS)]
        cited = [s.id for s in ranked if shared_words(answer, s.text) >= 2][:3] or [ranked[0].id if ranked else context[0].id]
    return Answer(
        question=question,
        answer=answer,
        citations=[Citation(segment=i, start=given[i].start, end=given[i].end, text=given[i].text.strip()) for i in cited],
        grounding=grounding,
        model=engine.name,
    )
