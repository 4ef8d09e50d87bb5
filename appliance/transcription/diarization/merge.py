"""Merge speaker turns into a transcript: every word gets a speaker, segments split where it changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.transcription.asr import Segment, Word
from appliance.transcription.diarization.base import Turn
from appliance.transcription.segmentation import resegment


@dataclass(frozen=True)
class Speaker:
    id: str  # stable key stored on words and segments ("S1")
    label: str  # "Speaker 1"; a display name set later lives beside it, words are never rewritten
    engine_key: str | None = None  # the engine's own label it was keyed from: finds the engine's voice for it


def speaker_for(start: float, end: float, turns: list[Turn]) -> str | None:
    """The turn speaker overlapping [start, end] the most; the nearest turn when none overlaps."""
    if not turns:
        return None
    best, best_overlap = None, 0.0
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > best_overlap:
            best, best_overlap = turn.speaker, overlap
    if best is not None:
        return best
    middle = (start + end) / 2
    nearest = min(turns, key=lambda t: 0.0 if t.start <= middle <= t.end else min(abs(middle - t.start), abs(middle - t.end)))
    return nearest.speaker


def assign(
    segments: list[Segment], turns: list[Turn], language: str | None = None, *, sentences: bool = True
) -> tuple[list[Segment], list[Speaker]]:
    """Return new segments with speakers and the speakers in order of first appearance in the
    transcript, labelled Speaker 1..N. With `sentences` (the default) segments are sentence-sized and a
    speaker change inside a sentence needs a pause (segmentation.py); without, a segment is split at
    every change of the turn speaker under its words."""
    with_speakers: list[Segment] = []
    for seg in segments:
        words = [Word(w.start, w.end, w.word, w.probability, speaker_for(w.start, w.end, turns)) for w in seg.words]
        speaker = speaker_for(seg.start, seg.end, turns) if not words else None
        with_speakers.append(dataclasses.replace(seg, words=words, speaker=speaker))
    return finish(with_speakers, language, sentences=sentences)


def finish(
    segments: list[Segment], language: str | None, *, sentences: bool = True, labels: Mapping[str, str] | None = None
) -> tuple[list[Segment], list[Speaker]]:
    """From segments whose words carry the engine's own speaker keys: cut (sentences, or at every change),
    then key the speakers S1..N in order of first appearance, labelled from `labels` (engine key → name)
    or "Speaker N"."""
    if sentences:
        raw = resegment(segments, language)
    else:
        raw = []
        for seg in segments:
            group: list[Word] = []
            for word in seg.words:
                if group and word.speaker != group[-1].speaker:
                    raw.append(_segment_of(group, seg))
                    group = []
                group.append(word)
            raw.append(_segment_of(group, seg) if group else seg)

    ids: dict[str, Speaker] = {}
    for seg in raw:
        for key in [w.speaker for w in seg.words] or [seg.speaker]:
            if key is not None and key not in ids:
                n = len(ids) + 1
                ids[key] = Speaker(f"S{n}", (labels or {}).get(key) or f"Speaker {n}", key)
    relabel = {key: speaker.id for key, speaker in ids.items()}
    for seg in raw:
        seg.speaker = relabel.get(seg.speaker) if seg.speaker is not None else None
        for word in seg.words:
            word.speaker = relabel.get(word.speaker) if word.speaker is not None else None
    return raw, list(ids.values())


def _segment_of(words: list[Word], parent: Segment) -> Segment:
    text = "".join(w.word for w in words).strip()
    # A piece of a split segment keeps its parent's scores, except the tokens, which were the whole parent's.
    scores = (
        parent.scores
        if len(words) == len(parent.words) or parent.scores is None
        else dataclasses.replace(parent.scores, tokens=None)
    )
    return Segment(
        words[0].start, words[-1].end, text, words, words[0].speaker, parent.avg_logprob, parent.no_speech_prob, scores
    )
