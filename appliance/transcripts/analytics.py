"""Who spoke how much: talk time, turns, the longest monologue and interruptions, per speaker, from the
transcript document (so they follow every edit and rename).

A turn is a run of consecutive segments with one speaker. An interruption is a turn that starts while
the previous speaker's turn is still going (overlapping speech), or within a breath of it (INTERRUPT_GAP)
when that turn had not reached the end of a sentence: the other person was cut off.
"""

from __future__ import annotations

import re

import msgspec

from appliance.transcripts.document import Segment, Transcript

INTERRUPT_GAP = 0.2  # seconds
_SENTENCE_END = re.compile(r"[.?!…。？！؟।॥۔][\"'”’)\]»]*$")


class SpeakerStats(msgspec.Struct, kw_only=True):
    speaker: str  # the speaker's id ("S1")
    name: str  # what people see
    talk_seconds: float
    share: float  # of all speech in the transcript, 0..1
    turns: int
    words: int
    longest_turn_seconds: float  # the longest monologue
    interruptions: int  # turns this speaker started by cutting another off
    words_per_minute: float


class SpeakerAnalytics(msgspec.Struct, kw_only=True):
    speakers: list[SpeakerStats]
    turns: int  # speaker changes + 1 (0 without speakers)
    speaking_seconds: float  # speech of every speaker together


def _turns(segments: list[Segment]) -> list[list[Segment]]:
    turns: list[list[Segment]] = []
    for seg in segments:
        if seg.speaker is None or not seg.text.strip():
            continue
        if turns and turns[-1][0].speaker == seg.speaker:
            turns[-1].append(seg)
        else:
            turns.append([seg])
    return turns


def speaker_analytics(doc: Transcript) -> SpeakerAnalytics:
    turns = _turns(doc.segments)
    names = doc.speaker_names()
    talk: dict[str, float] = {}
    words: dict[str, int] = {}
    count: dict[str, int] = {}
    longest: dict[str, float] = {}
    interruptions: dict[str, int] = {}
    for i, turn in enumerate(turns):
        key = turn[0].speaker
        assert key is not None
        spoken = sum(max(0.0, s.end - s.start) for s in turn)
        talk[key] = talk.get(key, 0.0) + spoken
        words[key] = words.get(key, 0) + sum(len(s.words) or len(s.text.split()) for s in turn)
        count[key] = count.get(key, 0) + 1
        longest[key] = max(longest.get(key, 0.0), turn[-1].end - turn[0].start)
        if i:
            before = turns[i - 1][-1]
            overlapped = turn[0].start < before.end
            cut_off = turn[0].start - before.end < INTERRUPT_GAP and not _SENTENCE_END.search(before.text.strip())
            if overlapped or cut_off:
                interruptions[key] = interruptions.get(key, 0) + 1
    total = sum(talk.values())
    order = [s.id for s in doc.speakers if s.id in talk] + [k for k in talk if k not in {s.id for s in doc.speakers}]
    stats = [
        SpeakerStats(
            speaker=key,
            name=names.get(key, key),
            talk_seconds=round(talk[key], 2),
            share=round(talk[key] / total, 3) if total else 0.0,
            turns=count[key],
            words=words[key],
            longest_turn_seconds=round(longest[key], 2),
            interruptions=interruptions.get(key, 0),
            words_per_minute=round(words[key] / (talk[key] / 60), 1) if talk[key] > 0 else 0.0,
        )
        for key in order
    ]
    return SpeakerAnalytics(speakers=stats, turns=len(turns), speaking_seconds=round(total, 2))
