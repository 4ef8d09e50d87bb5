"""Exports: one function per format, each from the same transcript document."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any

Document = dict[str, Any]
LINE_WIDTH = 42  # the common subtitle guideline: about 42 characters a line


def _clock(seconds: float, sep: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def _speaker_names(doc: Document) -> dict[str, str]:
    """Speaker id → what people see: the display name once someone set it, else "Speaker N"."""
    return {s["id"]: s.get("display_name") or s["label"] for s in doc.get("speakers") or []}


def _speaker(doc: Document, segment: dict[str, Any], names: dict[str, str] | None = None) -> str | None:
    key = segment.get("speaker")
    if key is None:
        return None
    return (names if names is not None else _speaker_names(doc)).get(key, key)


def _cue_text(doc: Document, segment: dict[str, Any], names: dict[str, str], name_prefix: bool = True) -> str:
    text = " ".join(segment["text"].split())
    speaker = _speaker(doc, segment, names)
    if speaker and name_prefix:
        text = f"{speaker}: {text}"
    return "\n".join(textwrap.wrap(text, LINE_WIDTH)) or text


def _stamp(seconds: float) -> str:
    """[mm:ss.s], or [h:mm:ss.s] past the hour, as transcripts show speaker turns."""
    tenths = max(0, round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    return f"{hours}:{minutes:02d}:{rest / 10:04.1f}" if hours else f"{minutes:02d}:{rest / 10:04.1f}"


def _cues(doc: Document) -> list[dict[str, Any]]:
    return [s for s in doc["segments"] if s["text"].strip()]


def to_txt(doc: Document) -> str:
    """Plain text; with speakers, one paragraph per speaker turn: `[00:07.3] Speaker 1: …`."""
    names = _speaker_names(doc)
    cues = _cues(doc)
    if not any(seg.get("speaker") for seg in cues):
        return "".join(seg["text"].strip() + "\n" for seg in cues)
    paragraphs: list[tuple[float, str | None, list[str]]] = []
    for seg in cues:
        speaker = _speaker(doc, seg, names)
        if paragraphs and paragraphs[-1][1] == speaker:
            paragraphs[-1][2].append(seg["text"].strip())
        else:
            paragraphs.append((seg["start"], speaker, [seg["text"].strip()]))
    return "".join(f"[{_stamp(start)}] {speaker or 'Unknown'}: {' '.join(parts)}\n" for start, speaker, parts in paragraphs)


def to_srt(doc: Document) -> str:
    names = _speaker_names(doc)
    blocks = []
    for index, seg in enumerate(_cues(doc), start=1):
        end = max(seg["end"], seg["start"] + 0.001)
        blocks.append(f"{index}\n{_clock(seg['start'], ',')} --> {_clock(end, ',')}\n{_cue_text(doc, seg, names)}\n")
    return "\n".join(blocks)


def to_vtt(doc: Document) -> str:
    names = _speaker_names(doc)
    blocks = ["WEBVTT\n"]
    for seg in _cues(doc):
        end = max(seg["end"], seg["start"] + 0.001)
        # Cue text is markup in WebVTT: escape & and <; "-->" would end the cue early.
        text = _vtt_escape(_cue_text(doc, seg, names, name_prefix=False)).replace("-->", "--&gt;")
        speaker = _speaker(doc, seg, names)
        if speaker:  # a voice tag: players show, style or filter by speaker
            text = f"<v {_vtt_escape(speaker)}>{text}"
        blocks.append(f"{_clock(seg['start'], '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_json(doc: Document) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


FORMATS: dict[str, tuple[Callable[[Document], str], str]] = {
    "txt": (to_txt, "text/plain; charset=utf-8"),
    "srt": (to_srt, "application/x-subrip; charset=utf-8"),
    "vtt": (to_vtt, "text/vtt; charset=utf-8"),
    "json": (to_json, "application/json"),
}


def render(doc: Document, fmt: str) -> str:
    try:
        return FORMATS[fmt][0](doc)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
