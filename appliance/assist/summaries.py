"""Summaries with cited moments: the prompt, the robust reading of what a model answers, the citation
check, and map-reduce over recordings longer than the model's context.

Segments are cited by their position in the transcript (`Segment.id`), written `[12]` in the prompt.
Whatever the model says, a citation survives only if that segment exists; a claim keeps its text even
when all its citations were dropped (it is then shown uncited). Talk time comes from the transcript's
own analytics, never from the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from appliance.assist.engine import EngineError, Message, TextEngine
from appliance.assist.retrieval import best_match, shared_words
from appliance.transcripts.analytics import speaker_analytics
from appliance.transcripts.document import Segment, Transcript

MAX_NEW_TOKENS = 700
ANSWER_PREFIX = '{"summary": "'
_CITE = re.compile(r"\[\s*(?:S|#|seg(?:ment)?\s*)?(\d{1,6})(?:\s*[,;]\s*(?:S|#)?\d{1,6})*\s*\]", re.IGNORECASE)
_NUM = re.compile(r"\d{1,6}")


class Cited(msgspec.Struct, kw_only=True):
    text: str
    segments: list[int] = msgspec.field(default_factory=list)  # cited segment ids, checked to exist
    # True when the model cited nothing usable and the segment was found by shared words instead
    # (retrieval.best_match): still a real moment that says it, shown as "matched" rather than "cited".
    matched: bool = False


class ActionItem(Cited, kw_only=True):
    owner: str | None = None
    due: str | None = None  # as said ("Friday", "by the 12th"); never invented


class Chapter(msgspec.Struct, kw_only=True):
    title: str
    segment: int  # the segment it starts at
    start: float  # seconds: that segment's start


class SpeakerShare(msgspec.Struct, kw_only=True):
    speaker: str
    name: str
    talk_seconds: float
    share: float
    turns: int
    contributions: int  # claims of this summary citing this speaker's segments


class Summary(msgspec.Struct, kw_only=True):
    summary: str
    summary_segments: list[int] = msgspec.field(default_factory=list)
    summary_matched: bool = False
    key_points: list[Cited] = msgspec.field(default_factory=list)
    decisions: list[Cited] = msgspec.field(default_factory=list)
    action_items: list[ActionItem] = msgspec.field(default_factory=list)
    open_questions: list[Cited] = msgspec.field(default_factory=list)
    chapters: list[Chapter] = msgspec.field(default_factory=list)
    speakers: list[SpeakerShare] = msgspec.field(default_factory=list)
    language: str | None = None
    model: str | None = None
    parts: int = 1  # map steps (1: the whole transcript fitted in one prompt)
    dropped_citations: int = 0  # cited segments that do not exist, removed
    note: str = ""  # said to the reader when the answer had to be repaired or fell back to plain text
    # The workspace's instructions version the prompt carried (workspace_settings); None: none were set.
    instructions_version: int | None = None

    def claims(self) -> list[Cited]:
        return [*self.key_points, *self.decisions, *self.action_items, *self.open_questions]


def language_name(code: str | None) -> str:
    if not code:
        return "the language of the transcript"
    try:
        from babel import Locale

        return str(Locale.parse(code.replace("-", "_")).get_display_name("en"))
    except Exception:  # an unknown code is still a usable hint
        return code


SYSTEM = (
    "You summarise meeting transcripts. Each transcript line starts with its segment number in brackets, like [12]. "
    "Answer with one JSON object only, no other text, with these keys: "
    '"summary" (2 to 4 sentences, the bottom line first), '
    '"key_points", "decisions", "open_questions" (lists of {"text": ..., "segments": [numbers of the lines it comes from]}), '
    '"action_items" (list of {"text": ..., "owner": the person who will do it or null, "due": the date or day said or null, "segments": [...]}), '
    '"chapters" (list of {"title": a short title, "segment": the number of the line where the topic starts}). '
    "Use only what the transcript says; cite the segment numbers for every item; use people's names only as they appear."
)


def transcript_lines(doc: Transcript, segments: list[Segment] | None = None) -> list[str]:
    names = doc.speaker_names()
    out = []
    for seg in segments if segments is not None else doc.segments:
        text = seg.text.strip()
        if not text:
            continue
        who = names.get(seg.speaker or "", "") if seg.speaker else ""
        out.append(f"[{seg.id}] {who}: {text}" if who else f"[{seg.id}] {text}")
    return out


def system_prompt(instructions: str = "") -> str:
    """The summary prompt, with a workspace's own instructions after it. They come after the format rules
    and are told not to change them: an instruction such as "answer in bullet points" must not cost the
    JSON the citations are read from."""
    if not instructions.strip():
        return SYSTEM
    return (
        f"{SYSTEM}\nThis workspace's admins also ask you to follow these instructions, "
        f"within the JSON form above:\n{instructions.strip()}"
    )


def messages_for(lines: list[str], language: str | None, instructions: str = "") -> list[Message]:
    return [
        Message("system", system_prompt(instructions)),
        Message("user", f"Transcript:\n{chr(10).join(lines)}\n\nWrite the JSON in {language_name(language)}."),
    ]


def chunks(
    doc: Transcript, engine: TextEngine, *, max_new_tokens: int = MAX_NEW_TOKENS, instructions: str = ""
) -> list[list[Segment]]:
    """Consecutive runs of segments that fit the model's context with room for the answer, cut at a
    speaker change (or, failing that, a pause) near the end of each run rather than mid-conversation."""
    overhead = engine.count_tokens(system_prompt(instructions)) + 80
    budget = engine.context_length - max_new_tokens - overhead
    if budget < 64:
        raise EngineError(f"the model's context ({engine.context_length} tokens) is too small to summarise with")
    names = doc.speaker_names()
    segments = [s for s in doc.segments if s.text.strip()]
    cost = [engine.count_tokens(f"[{s.id}] {names.get(s.speaker or '', '')}: {s.text.strip()}\n") for s in segments]
    if sum(cost) <= budget:
        return [segments] if segments else []
    out: list[list[Segment]] = []
    current: list[Segment] = []
    used = 0
    for seg, c in zip(segments, cost, strict=True):
        if current and used + c > budget:
            cut = _boundary(current)
            out.append(current[:cut])
            current = current[cut:]
            used = sum(cost[segments.index(s)] for s in current)
        current.append(seg)
        used += c
    if current:
        out.append(current)
    return out


def _boundary(run: list[Segment]) -> int:
    """Where to end a full run: the last speaker change in its final third, else its longest pause there."""
    low = max(1, len(run) * 2 // 3)
    for i in range(len(run) - 1, low - 1, -1):
        if run[i].speaker != run[i - 1].speaker:
            return i
    gaps = [(run[i].start - run[i - 1].end, i) for i in range(low, len(run))]
    return max(gaps)[1] if gaps else len(run)


# Reading what the model wrote ------------------------------------------------------------------------


def repair_json(text: str) -> Any:
    """The first JSON object in `text`, repaired where a small model left it broken (cut off mid-way,
    a trailing comma, unclosed brackets): complete values are kept, a dangling one is dropped. None when
    nothing usable is there."""
    start = text.find("{")
    if start < 0:
        return None
    text = text[start:]
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    try:
        value, end = decoder.raw_decode(text)  # a complete object followed by chatter...
    except ValueError:
        return _repair_one(text)
    if isinstance(value, dict):
        # ...or by more objects: small models often close the object after one key and open another.
        rest = text[end:]
        while isinstance(value, dict) and (nxt := rest.find("{")) >= 0:
            try:
                more, used = decoder.raw_decode(rest[nxt:])
                rest = rest[nxt + used :]
            except ValueError:
                more, rest = _repair_one(rest[nxt:]), ""
            if isinstance(more, dict):
                value = {**more, **value}
    return value


def _repair_one(text: str) -> Any:
    # Walk the text once, remembering each point where the structure so far could be closed cleanly.
    stack: list[str] = []
    in_string = escaped = False
    cuts: list[tuple[int, str]] = []
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                cuts.append((i + 1, "".join(reversed(stack))))
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack:
                stack.pop()
            cuts.append((i + 1, "".join(reversed(stack))))
            if not stack:
                break
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
        elif ch.isdigit() or ch in "el":  # the end of a number, true, false, null
            cuts.append((i + 1, "".join(reversed(stack))))
    if in_string:  # cut off inside a string: close it and keep what it says
        try:
            return json.loads(text + '"' + "".join(reversed(stack)))
        except ValueError:
            pass
    for cut, closers in reversed(cuts[-400:]):
        candidate = text[:cut].rstrip().rstrip(",").rstrip() + closers
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def _segments_of(raw: Any) -> list[int]:
    if raw is None:
        return []
    if isinstance(raw, int) and not isinstance(raw, bool):
        return [raw]
    if isinstance(raw, str):
        return [int(n) for n in _NUM.findall(raw)]
    if isinstance(raw, list):
        return [n for item in raw for n in _segments_of(item)]
    return []


def _text_and_cites(text: str) -> tuple[str, list[int]]:
    cites = [int(n) for m in _CITE.finditer(text) for n in _NUM.findall(m.group(0))]
    clean = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", _CITE.sub("", text))).strip()
    return clean, cites


def _item(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str):
        text, cites = _text_and_cites(raw)
        return {"text": text, "segments": cites} if text else None
    if not isinstance(raw, dict):
        return None
    text_raw = next(
        (raw[k] for k in ("text", "item", "task", "point", "decision", "question", "title") if isinstance(raw.get(k), str)), ""
    )
    text, cites = _text_and_cites(text_raw)
    if not text:
        return None
    for key in ("segments", "segment", "cite", "citations", "sources", "source", "lines"):
        cites += _segments_of(raw.get(key))
    out: dict[str, Any] = {"text": text, "segments": cites}
    for key in ("owner", "due"):
        value = raw.get(key)
        out[key] = (
            value.strip()
            if isinstance(value, str) and value.strip() and value.strip().lower() not in {"null", "none", "n/a"}
            else None
        )
    return out


def _dedupe(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = re.sub(r"\W+", " ", item.text.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


@dataclass
class _Checker:
    valid: set[int]
    dropped: int = 0

    def keep(self, cites: list[int]) -> list[int]:
        out: list[int] = []
        for c in cites:
            if c in self.valid:
                if c not in out:
                    out.append(c)
            else:
                self.dropped += 1
        return out


def attribute(summary: Summary, pool: list[Segment]) -> Summary:
    """Give claims the model left uncited the moment that says the same thing, where one clearly does."""
    for claim in summary.claims():
        if not claim.segments and (seg := best_match(claim.text, pool)) is not None:
            claim.segments, claim.matched = [seg.id], True
    if not summary.summary_segments and summary.summary:
        found = []
        for sentence in re.split(r"(?<=[.!?。])\s+", summary.summary):
            seg = best_match(sentence, pool)
            if seg is not None and seg.id not in found:
                found.append(seg.id)
        summary.summary_segments, summary.summary_matched = found, bool(found)
    return summary


def read_answer(text: str, doc: Transcript, segments: list[Segment] | None = None) -> Summary:
    """A Summary from the model's raw answer (with ANSWER_PREFIX in front), citations checked against
    `segments` (default: the whole transcript)."""
    pool = segments if segments is not None else doc.segments
    checker = _Checker({s.id for s in pool})
    start_of = {s.id: s.start for s in doc.segments}
    raw = repair_json(text)
    note = ""
    if not isinstance(raw, dict) or not isinstance(raw.get("summary"), str):
        # Not the asked-for form at all: keep the model's words as a plain summary, cited where it cited.
        plain = text[len(ANSWER_PREFIX) :] if text.startswith(ANSWER_PREFIX) else text
        plain = re.sub(r'[{}"\[\]]+(?!\d)', " ", plain)
        summary, cites = _text_and_cites(plain)
        return attribute(
            Summary(
                summary=summary[:2000],
                summary_segments=checker.keep(cites),
                dropped_citations=checker.dropped,
                note="The model did not give the structured answer; this is its plain text, without action items or chapters.",
            ),
            pool,
        )
    try:
        json.loads(text[text.find("{") :])
    except ValueError:
        note = "The model's answer was cut off or malformed; what could be read is shown."
    summary, cites = _text_and_cites(raw["summary"])

    def cited(key: str) -> list[Cited]:
        found = raw.get(key)
        found = [found] if isinstance(found, str) else found if isinstance(found, list) else []
        items = [_item(r) for r in found]
        return _dedupe([Cited(text=i["text"], segments=checker.keep(i["segments"])) for i in items if i])

    actions = []
    for r in raw.get("action_items") or [] if isinstance(raw.get("action_items"), list) else []:
        i = _item(r)
        if i:
            actions.append(
                ActionItem(text=i["text"], owner=i.get("owner"), due=i.get("due"), segments=checker.keep(i["segments"]))
            )
    chapters = []
    for r in raw.get("chapters") or [] if isinstance(raw.get("chapters"), list) else []:
        if not isinstance(r, dict):
            continue
        title = r.get("title") if isinstance(r.get("title"), str) else None
        at = checker.keep(_segments_of(r.get("segment", r.get("start_segment", r.get("segments")))))
        if title and title.strip() and at:
            chapters.append(Chapter(title=_text_and_cites(title)[0], segment=at[0], start=start_of[at[0]]))
    chapters.sort(key=lambda c: c.segment)
    return attribute(
        Summary(
            summary=summary,
            summary_segments=checker.keep(cites),
            key_points=cited("key_points"),
            decisions=cited("decisions"),
            action_items=_dedupe(actions),
            open_questions=cited("open_questions"),
            chapters=[c for i, c in enumerate(chapters) if i == 0 or c.segment != chapters[i - 1].segment],
            dropped_citations=checker.dropped,
            note=note,
        ),
        pool,
    )


# The whole run ---------------------------------------------------------------------------------------


@dataclass
class Progress:
    on_text: Callable[[str], None] = lambda text: None  # generated text as it comes
    on_part: Callable[[int, int], None] = lambda part, parts: None  # map step (1-based) of parts
    cancelled: Callable[[], bool] = lambda: False
    before_step: Callable[[], None] = lambda: None  # the scheduler's turn: may wait (transcription first)


class Cancelled(Exception):
    pass


def _run(engine: TextEngine, messages: list[Message], progress: Progress, max_new_tokens: int, prefix: str) -> str:
    progress.before_step()
    parts = [prefix]
    progress.on_text(prefix)
    for piece in engine.stream(messages, max_tokens=max_new_tokens, answer_prefix=prefix, cancelled=progress.cancelled):
        parts.append(piece)
        progress.on_text(piece)
    if progress.cancelled():
        raise Cancelled()
    return "".join(parts)


ACTIONS_SYSTEM = (
    "You find the tasks people in a meeting agreed to do. Each transcript line starts with its number in brackets, like [12]. "
    "Write one task per line, in this form: [line number] Owner: what they will do (when, if a day or date was said). "
    "The owner is the person who will do it, by the name used in the transcript. Write only the tasks. If there are none, write: none"
)
ACTIONS_PREFIX = "["
ACTIONS_MAX_TOKENS = 200
_ACTION_LINE = re.compile(r"^\s*[-*•\d.)]*\s*(?P<cites>(?:\[[^\]]*\]\s*)*)(?P<body>.+?)\s*$")
_DUE = re.compile(r"\(([^()]{1,40})\)\s*\.?$")


def read_actions(text: str, doc: Transcript, segments: list[Segment]) -> tuple[list[ActionItem], int]:
    """Action items from the dedicated step's lines ("[4] Bob: fix the installer (Thursday)"), citations
    checked against the part; an owner kept only when the part names that person (a speaker's name or a
    word said in it), a due date only when its words were said. Returns the items and the dropped
    citations."""
    checker = _Checker({s.id for s in segments})
    said = " ".join(s.text for s in segments).lower()
    names = {n.lower() for n in doc.speaker_names().values() if n}
    items: list[ActionItem] = []
    for line in text.splitlines():
        m = _ACTION_LINE.match(line)
        if not m or m.group("body").strip().lower().rstrip(".") in {"none", "no tasks", "n/a"}:
            continue
        if re.search(r'[{}]|"\s*:', line):  # the summary's JSON again (a model that ignored the question)
            continue
        body, cites = _text_and_cites(m.group("cites") + m.group("body"))
        owner: str | None = None
        if ":" in body[:40]:
            head, body = (x.strip() for x in body.split(":", 1))
            if head and (head.lower() in names or head.lower() in said):
                owner = head
        due = None
        if (d := _DUE.search(body)) is not None:
            body = body[: d.start()].rstrip(" .")
            if all(w.lower() in said for w in re.findall(r"\w+", d.group(1)) if len(w) > 2):
                due = d.group(1).strip()
        if len(body.split()) < 2 or body.rstrip().endswith(("?", "？", "؟")):  # a question asked is no task
            continue
        # As for questions: a small model cites a neighbouring line; a citation stays only where the line
        # shares a word with the task (an item left uncited is then matched by its words, or stays uncited).
        text_of = {seg.id: seg.text for seg in segments}
        kept = [c for c in checker.keep(cites) if shared_words(body, text_of[c]) >= 1]
        items.append(ActionItem(text=body, owner=owner, due=due, segments=kept))
    return items, checker.dropped


def _with_actions(found: Summary, extra: list[ActionItem]) -> list[ActionItem]:
    """The summary's own action items, then the dedicated step's that say something new: not one citing
    the same moment with a content word in common, nor one sharing two content words."""
    out = list(found.action_items)
    for item in extra:
        if any(shared_words(item.text, a.text) >= (1 if set(item.segments) & set(a.segments) else 2) for a in out):
            continue
        out.append(item)
    return _dedupe(out)


REDUCE_SYSTEM = (
    "You merge partial summaries of one long meeting into one summary of 3 to 5 sentences, the bottom line first. "
    "Keep the segment numbers in brackets, like [12], after the sentences they support. Plain text only."
)


def summarize(
    doc: Transcript,
    engine: TextEngine,
    *,
    language: str | None = None,
    progress: Progress | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
    instructions: str = "",
    instructions_version: int | None = None,
    action_step: bool = True,
) -> Summary:
    """`instructions`: the workspace's own (workspace_settings), added to every map step's prompt; the
    reduce step only merges the parts' summaries, so it does not need them."""
    progress = progress or Progress()
    language = language or doc.language
    runs = chunks(doc, engine, max_new_tokens=max_new_tokens, instructions=instructions)
    if not runs:
        raise EngineError("the transcript has no text to summarise")
    partials: list[Summary] = []
    for n, run in enumerate(runs, 1):
        progress.on_part(n, len(runs))
        if n > 1:
            progress.on_text("\n\n")
        lines = transcript_lines(doc, run)
        answer = _run(engine, messages_for(lines, language, instructions), progress, max_new_tokens, ANSWER_PREFIX)
        part = read_answer(answer, doc, run)
        if action_step:
            # A second, simpler question for the action items alone: small models asked for the whole JSON
            # object return few or none of them (docs/benchmarks.md), and a line a task is easier to write.
            progress.on_text("\n\n")
            asked = [
                Message("system", ACTIONS_SYSTEM),
                Message("user", f"Transcript:\n{chr(10).join(lines)}\n\nWrite the tasks in {language_name(language)}."),
            ]
            listed = _run(engine, asked, progress, min(max_new_tokens, ACTIONS_MAX_TOKENS), ACTIONS_PREFIX)
            extra, dropped = read_actions(listed, doc, run)
            part.action_items = _with_actions(part, extra)
            part.dropped_citations += dropped
            attribute(part, run)
        partials.append(part)
    result = partials[0] if len(partials) == 1 else _merge(doc, engine, partials, language, progress, max_new_tokens)
    result.language = language
    result.model = engine.name
    result.parts = len(runs)
    result.instructions_version = instructions_version if instructions.strip() else None
    result.speakers = _speakers(doc, result)
    return result


def _merge(
    doc: Transcript, engine: TextEngine, partials: list[Summary], language: str | None, progress: Progress, max_new_tokens: int
) -> Summary:
    """The reduce step: lists are joined (their citations already checked); the summary is rewritten by
    the model from the parts' summaries."""
    checker = _Checker({s.id for s in doc.segments})
    bodies = [f"Part {i}: {p.summary} " + " ".join(f"[{c}]" for c in p.summary_segments[:4]) for i, p in enumerate(partials, 1)]
    messages = [
        Message("system", REDUCE_SYSTEM),
        Message("user", "\n".join(bodies) + f"\n\nWrite it in {language_name(language)}."),
    ]
    progress.on_part(len(partials) + 1, len(partials) + 1)
    progress.on_text("\n\n")
    text = _run(engine, messages, progress, min(max_new_tokens, 300), "")
    summary, cites = _text_and_cites(text)
    if not summary:  # an empty reduce answer: the parts' own summaries, in order
        summary = " ".join(p.summary for p in partials)
        cites = [c for p in partials for c in p.summary_segments]
    notes = {p.note for p in partials if p.note}
    return Summary(
        summary=summary,
        summary_segments=checker.keep(cites) or [c for p in partials for c in p.summary_segments][:6],
        key_points=_dedupe([c for p in partials for c in p.key_points]),
        decisions=_dedupe([c for p in partials for c in p.decisions]),
        action_items=_dedupe([c for p in partials for c in p.action_items]),
        open_questions=_dedupe([c for p in partials for c in p.open_questions]),
        chapters=[c for p in partials for c in p.chapters],
        dropped_citations=checker.dropped + sum(p.dropped_citations for p in partials),
        note=" ".join(sorted(notes)),
    )


def _speakers(doc: Transcript, summary: Summary) -> list[SpeakerShare]:
    by_segment = {s.id: s.speaker for s in doc.segments}
    contributions: dict[str, int] = {}
    for claim in summary.claims():
        for who in {by_segment.get(c) for c in claim.segments} - {None}:
            contributions[str(who)] = contributions.get(str(who), 0) + 1
    return [
        SpeakerShare(
            speaker=s.speaker,
            name=s.name,
            talk_seconds=s.talk_seconds,
            share=s.share,
            turns=s.turns,
            contributions=contributions.get(s.speaker, 0),
        )
        for s in speaker_analytics(doc).speakers
    ]


def to_markdown(summary: Summary, doc: Transcript) -> str:
    """The summary as Markdown with [mm:ss] citation times (the MD export and the CLI)."""
    start = {s.id: s.start for s in doc.segments}

    def at(ids: list[int]) -> str:
        return "".join(f" [{_clock(start[i])}]" for i in ids if i in start)

    lines = ["## Summary", "", summary.summary + at(summary.summary_segments), ""]
    sections: list[tuple[str, list[Any]]] = [
        ("Key points", summary.key_points),
        ("Decisions", summary.decisions),
        ("Action items", summary.action_items),
        ("Open questions", summary.open_questions),
    ]
    for title, items in sections:
        if items:
            lines += [f"### {title}", ""]
            for item in items:
                extra = ""
                if isinstance(item, ActionItem):
                    extra = "".join(
                        f" ({label}: {value})" for label, value in (("owner", item.owner), ("due", item.due)) if value
                    )
                lines.append(f"- {item.text}{extra}{at(item.segments)}")
            lines.append("")
    if summary.chapters:
        lines += ["### Chapters", ""] + [f"- [{_clock(c.start)}] {c.title}" for c in summary.chapters] + [""]
    if summary.note:
        lines += [f"_{summary.note}_", ""]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"
