"""Sentence-sized segments, and speaker turns that change only where there is evidence for it.

The batched decoder returns one segment per 30-second window (about 70 words: a wall of text in the
editor and a cue nobody can read), and a speaker engine's turns can flip every second or two in the
middle of a sentence. Both are fixed here, from the word timings, for every model and every engine:

1. Each decoder segment is cut at sentence ends (pysbd, a rule-based segmenter for 22 languages that
   knows "Dr." and "3.50" are not ends; a punctuation rule elsewhere), at long silences, and where a
   piece would still be longer than a readable length (at the comma or pause that best divides it).
2. Within a sentence a speaker change is believed only at a pause between words or at a comma (or
   another phrase mark the decoder wrote); elsewhere the words
   go to the sentence's majority speaker (by speaking time), and the segment records how much of its
   speech the engine gave to that speaker (`speaker_confidence`), so a doubtful one can be shown so.

Segments are only ever split, never joined across decoder segments, so every piece keeps its decoder's
scores (avg_logprob, no_speech_prob, ...), as pieces of a speaker split always have.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache

from appliance.transcription.asr import Segment, Word

MAX_WORDS = 32  # about two lines of subtitles twice over; the editor shows it as one short paragraph
MAX_SECONDS = 12.0
LONG_PAUSE = 1.2  # silence (s) that ends a segment even without punctuation
TURN_PAUSE = 0.25  # a speaker change inside a sentence is believed only at a pause this long (s)
# Sentence-final punctuation in the scripts Whisper writes: Latin, CJK full-width, Arabic, Devanagari
# and Bengali danda, Urdu full stop, ellipsis.
# A phrase boundary the decoder marked: a speaker change there is believed even without a pause
# ("Oh, I'm from Chicago too" where "Oh," was the other person's).
_PHRASE_END = re.compile(r"[,;:—–、，；：]$")
_FINAL = re.compile(r"[.?!…。？！؟।॥۔]+[\"'”’)\]»]*$")


@dataclass(frozen=True)
class Settings:
    max_words: int = MAX_WORDS
    max_seconds: float = MAX_SECONDS
    long_pause: float = LONG_PAUSE
    turn_pause: float = TURN_PAUSE


@lru_cache(maxsize=32)
def _segmenter(language: str) -> object | None:
    import pysbd
    import pysbd.languages

    if language not in pysbd.languages.LANGUAGE_CODES:
        return None
    return pysbd.Segmenter(language=language, clean=False, char_span=True)


def sentence_ends(words: list[Word], language: str | None) -> set[int]:
    """Indexes of the words that end a sentence (the last word always does)."""
    if not words:
        return set()
    ends = {len(words) - 1}
    segmenter = _segmenter((language or "en").split("-")[0].lower())
    if segmenter is None:
        ends.update(i for i, w in enumerate(words) if _FINAL.search(w.word.strip()))
        return ends
    text, offsets = "", []
    for word in words:
        text += word.word
        offsets.append(len(text.rstrip()))  # where this word's last visible character ends
    for span in segmenter.segment(text):  # type: ignore[attr-defined]
        stop = span.start + len(span.sent.rstrip())
        # The word whose last character closes the span; pysbd never cuts inside a word we gave it.
        index = next((i for i, end in enumerate(offsets) if end >= stop), len(words) - 1)
        ends.add(index)
    return ends


def _gap(words: list[Word], i: int) -> float:
    """Silence between word i and word i + 1."""
    return max(0.0, words[i + 1].start - words[i].end)


def _cut_long(words: list[Word], settings: Settings) -> list[list[Word]]:
    """A piece too long to read is cut where a comma or a pause best divides it, recursively."""
    too_long = len(words) > settings.max_words or words[-1].end - words[0].start > settings.max_seconds
    if not too_long or len(words) < 2:
        return [words]
    low, high = max(1, len(words) // 5), max(2, len(words) - len(words) // 5)

    def score(i: int) -> float:  # cut after word i - 1
        comma = 0.5 if re.search(r"[,;:、，；：]$", words[i - 1].word.strip()) else 0.0
        balance = 0.2 * (1 - abs(i - len(words) / 2) / (len(words) / 2))
        return _gap(words, i - 1) + comma + balance

    cut = max(range(low, high), key=score)
    return _cut_long(words[:cut], settings) + _cut_long(words[cut:], settings)


def _pieces(words: list[Word], language: str | None, settings: Settings) -> list[list[Word]]:
    ends = sentence_ends(words, language)
    pieces: list[list[Word]] = []
    current: list[Word] = []
    for i, word in enumerate(words):
        current.append(word)
        if i in ends or (i + 1 < len(words) and _gap(words, i) >= settings.long_pause):
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return [cut for piece in pieces for cut in _cut_long(piece, settings)]


def _turns_within(words: list[Word], settings: Settings) -> list[tuple[list[Word], str | None, float | None]]:
    """A sentence's words split only at evidenced speaker changes; each part with its majority speaker
    and the share of its speech the engine gave that speaker."""
    parts: list[list[Word]] = [[words[0]]]
    for i in range(1, len(words)):
        changed = words[i].speaker != words[i - 1].speaker
        if changed and (_gap(words, i - 1) >= settings.turn_pause or _PHRASE_END.search(words[i - 1].word.strip())):
            parts.append([])
        parts[-1].append(words[i])
    out: list[tuple[list[Word], str | None, float | None]] = []
    for part in parts:
        time: dict[str | None, float] = {}
        for w in part:
            time[w.speaker] = time.get(w.speaker, 0.0) + max(w.end - w.start, 0.01)
        speaker, spoken = max(time.items(), key=lambda item: item[1])
        confidence = None if speaker is None else round(spoken / sum(time.values()), 3)
        if out and out[-1][1] == speaker:  # the change between them did not survive the vote
            merged = out[-1][0] + part
            out[-1] = (merged, speaker, _share(merged, speaker))
        else:
            out.append((part, speaker, confidence))
    return out


def _share(words: list[Word], speaker: str | None) -> float | None:
    if speaker is None:
        return None
    total = sum(max(w.end - w.start, 0.01) for w in words)
    return round(sum(max(w.end - w.start, 0.01) for w in words if w.speaker == speaker) / total, 3)


def _segment(words: list[Word], parent: Segment, speaker: str | None, confidence: float | None) -> Segment:
    whole = len(words) == len(parent.words)
    scores = parent.scores if whole or parent.scores is None else dataclasses.replace(parent.scores, tokens=None)
    words = [dataclasses.replace(w, speaker=speaker) for w in words]
    return Segment(
        words[0].start,
        words[-1].end,
        "".join(w.word for w in words).strip(),
        words,
        speaker,
        parent.avg_logprob,
        parent.no_speech_prob,
        scores,
        speaker_confidence=confidence,
    )


def resegment(segments: list[Segment], language: str | None, settings: Settings = Settings()) -> list[Segment]:
    """Sentence-sized segments with stable speakers, from segments whose words carry the engine's raw
    speaker (or None). A segment without word timings is kept as it is."""
    out: list[Segment] = []
    for parent in segments:
        if not parent.words:
            out.append(parent)
            continue
        for piece in _pieces(parent.words, language, settings):
            for words, speaker, confidence in _turns_within(piece, settings):
                out.append(_segment(words, parent, speaker, confidence))
    return out
