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


def _cue_text(segment: dict[str, Any]) -> str:
    text = " ".join(segment["text"].split())
    if segment.get("speaker"):
        text = f"{segment['speaker']}: {text}"
    return "\n".join(textwrap.wrap(text, LINE_WIDTH)) or text


def _cues(doc: Document) -> list[dict[str, Any]]:
    return [s for s in doc["segments"] if s["text"].strip()]


def to_txt(doc: Document) -> str:
    lines = []
    for seg in _cues(doc):
        prefix = f"{seg['speaker']}: " if seg.get("speaker") else ""
        lines.append(prefix + seg["text"].strip())
    return "\n".join(lines) + ("\n" if lines else "")


def to_srt(doc: Document) -> str:
    blocks = []
    for index, seg in enumerate(_cues(doc), start=1):
        end = max(seg["end"], seg["start"] + 0.001)
        blocks.append(f"{index}\n{_clock(seg['start'], ',')} --> {_clock(end, ',')}\n{_cue_text(seg)}\n")
    return "\n".join(blocks)


def to_vtt(doc: Document) -> str:
    blocks = ["WEBVTT\n"]
    for seg in _cues(doc):
        end = max(seg["end"], seg["start"] + 0.001)
        # "-->" inside cue text would end the cue early; WebVTT has no escape for it.
        text = _cue_text(seg).replace("-->", "->")
        blocks.append(f"{_clock(seg['start'], '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(blocks)


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
