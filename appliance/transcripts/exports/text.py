"""Plain text, Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import re

from appliance.transcripts.exports.model import JSON_SCHEMA, Document, ExportOptions, speaker_names, speaker_of, stamp, turns


def to_txt(doc: Document, options: ExportOptions) -> str:
    """One paragraph per speaker turn (or segment): `[00:07.3] Speaker 1: …`, parts optional."""
    lines = []
    for start, speaker, text in turns(doc, options):
        prefix = f"[{stamp(start)}] " if options.timestamps else ""
        prefix += f"{speaker}: " if speaker else ""
        lines.append(prefix + text)
    return "".join(line + "\n" for line in lines)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(doc: Document, options: ExportOptions) -> str:
    title = doc.get("title") or doc.get("filename") or "Transcript"
    out = [f"# {_md(title)}", ""]
    meta = [
        ("Duration", stamp(doc.get("duration") or 0)),
        ("Language", doc.get("language") or "unknown"),
        ("Model", doc.get("model") or ""),
        ("Created", doc.get("created_at") or ""),
    ]
    if options.speakers and doc.get("speakers"):
        meta.append(("Speakers", ", ".join(speaker_names(doc).values())))
    out += [f"- **{k}:** {_md(str(v))}" for k, v in meta if v] + [""]
    for start, speaker, text in turns(doc, options):
        head = f"`{stamp(start)}` " if options.timestamps else ""
        head += f"**{_md(speaker)}:** " if speaker else ""
        out += [head + _md(text), ""]
    return "\n".join(out)


def _cell(value: object) -> object:
    # A leading =, +, - or @ is a formula to a spreadsheet: keep it text.
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(doc: Document, options: ExportOptions) -> str:
    """One row per segment: start, end (seconds), speaker, text."""
    names = speaker_names(doc)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["start", "end", "speaker", "text"])
    for seg in doc.get("segments", []):
        speaker = speaker_of(seg, names) if options.speakers else None
        writer.writerow([f"{seg['start']:.3f}", f"{seg['end']:.3f}", _cell(speaker or ""), _cell(" ".join(seg["text"].split()))])
    return out.getvalue()


def to_json(doc: Document, options: ExportOptions) -> str:
    """The full transcript document with its schema id (docs/transcript-json.md)."""
    return json.dumps({"schema": JSON_SCHEMA, **doc}, ensure_ascii=False, indent=2) + "\n"
