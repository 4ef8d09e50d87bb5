"""SRT and WebVTT, with cue rules: characters per line, lines per cue, cue duration, gap between cues."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass

from appliance.transcripts.document import Segment
from appliance.transcripts.exports.model import Document, ExportOptions, clock, speaker_names, speaker_of


@dataclass
class Cue:
    start: float
    end: float
    text: str  # one line, not yet wrapped
    speaker: str | None


def _fits(text: str, options: ExportOptions) -> bool:
    lines = textwrap.wrap(text, options.max_chars_per_line, break_long_words=True)
    return len(lines) <= options.max_lines


def _words_of(seg: Segment) -> list[tuple[float, float, str]]:
    words = [(w.start, w.end, w.word.strip()) for w in seg.words if w.word.strip()]
    if words:
        return words
    # No word timings: spread the segment's words evenly over its time.
    tokens = seg.text.split()
    span = max(seg.end - seg.start, 0.001)
    total = sum(len(t) + 1 for t in tokens) or 1
    out, t = [], seg.start
    for token in tokens:
        d = span * (len(token) + 1) / total
        out.append((t, t + d, token))
        t += d
    return out


def build_cues(doc: Document, options: ExportOptions, prefix_names: bool) -> list[Cue]:
    names = speaker_names(doc)
    cues: list[Cue] = []
    for seg in doc.segments:
        speaker = speaker_of(seg, names) if options.speakers else None
        current: Cue | None = None
        for start, end, word in _words_of(seg):
            label = f"{speaker}: " if prefix_names and speaker else ""
            if current is None or not _fits(f"{current.text} {word}", options):
                # A token too long for a cue on its own (unspaced scripts, URLs) is cut into pieces.
                pieces = _pieces(label + word, options)
                if len(pieces) > 1:
                    if current is not None:
                        cues.append(current)
                        current = None
                    step = (end - start) / len(pieces)
                    for k, piece in enumerate(pieces):
                        text = piece[len(label) :] if k == 0 and label else piece
                        cues.append(Cue(start + k * step, start + (k + 1) * step, text, speaker))
                    continue
            if current is not None:
                candidate = f"{current.text} {word}"
                label = f"{speaker}: " if prefix_names and speaker and not cues_have_speaker(cues, current) else ""
                if _fits(label + candidate, options) and end - current.start <= options.max_cue_seconds:
                    current.text, current.end = candidate, end
                    continue
                cues.append(current)
            current = Cue(start, end, word, speaker)
        if current is not None:
            cues.append(current)
    _space(cues, options)
    return cues


def _pieces(text: str, options: ExportOptions) -> list[str]:
    """`text` cut so that each piece fits one cue (max_lines lines of max_chars_per_line)."""
    if _fits(text, options):
        return [text]
    lines = textwrap.wrap(text, options.max_chars_per_line, break_long_words=True)
    return [" ".join(lines[i : i + options.max_lines]) for i in range(0, len(lines), options.max_lines)]


def cues_have_speaker(cues: list[Cue], current: Cue) -> bool:
    """Whether the turn's name was already shown (only the first cue of a turn is prefixed)."""
    return bool(cues) and cues[-1].speaker == current.speaker


def _space(cues: list[Cue], options: ExportOptions) -> None:
    """Clamp durations and keep at least min_gap between cues, never letting a cue end before it starts."""
    for cue in cues:
        cue.end = min(max(cue.end, cue.start + 0.2), cue.start + options.max_cue_seconds)
    for current, following in itertools.pairwise(cues):
        following.start = max(following.start, current.start + 0.01)
        limit = following.start - options.min_gap_seconds
        if current.end > limit:
            current.end = max(limit, current.start + 0.001)
        if following.start - current.end < options.min_gap_seconds:
            following.start = current.end + options.min_gap_seconds
        following.end = max(following.end, following.start + 0.001)


def _lines(text: str, options: ExportOptions) -> list[str]:
    return textwrap.wrap(text, options.max_chars_per_line, break_long_words=True) or [text]


def to_srt(doc: Document, options: ExportOptions) -> str:
    blocks = []
    cues = build_cues(doc, options, prefix_names=True)
    for index, cue in enumerate(cues, start=1):
        shown = cue.text
        if cue.speaker and not (index > 1 and cues[index - 2].speaker == cue.speaker):
            shown = f"{cue.speaker}: {shown}"
        # SRT has no escaping, and some players take any line with "-->" for a timing line.
        body = "\n".join(_lines(shown, options)).replace("-->", "->")
        blocks.append(f"{index}\n{clock(cue.start, ',')} --> {clock(cue.end, ',')}\n{body}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(doc: Document, options: ExportOptions) -> str:
    voice = options.vtt_voice_tags
    cues = build_cues(doc, options, prefix_names=not voice)
    blocks = ["WEBVTT\n"]
    for index, cue in enumerate(cues):
        shown = cue.text
        new_turn = cue.speaker and not (index > 0 and cues[index - 1].speaker == cue.speaker)
        if cue.speaker and not voice and new_turn:
            shown = f"{cue.speaker}: {shown}"
        # Cue text is markup: & < > escaped, so "-->" can never end the cue early either.
        body = "\n".join(_vtt_escape(line) for line in _lines(shown, options))
        if cue.speaker and voice:
            body = f"<v {_vtt_escape(cue.speaker)}>{body}"
        blocks.append(f"{clock(cue.start, '.')} --> {clock(cue.end, '.')}\n{body}\n")
    return "\n".join(blocks)
