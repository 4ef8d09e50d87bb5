"""Plain text, Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import re

from appliance.transcripts.document import to_builtins
from appliance.transcripts.exports.model import (
    ENGLISH,
    JSON_SCHEMA,
    N_,
    Digest,
    DigestItem,
    Document,
    ExportOptions,
    Reader,
    speaker_names,
    speaker_of,
    speaker_table,
    speaker_table_head,
    stamp,
    title_of,
    turns,
)


def to_txt(doc: Document, options: ExportOptions, reader: Reader = ENGLISH) -> str:
    """One paragraph per speaker turn (or segment): `[00:07.3] Speaker 1: …`, parts optional; notes follow
    the paragraph they belong to, and the transcript's own note comes first."""
    note_label = reader.text(N_("Note"))
    lines = [f"{note_label}: {line}" for line in doc.note.strip().splitlines()]
    if lines:
        lines.append("")
    for turn in turns(doc, options):
        prefix = f"[{stamp(turn.start)}] " if options.timestamps else ""
        prefix += f"{turn.speaker}: " if turn.speaker else ""
        lines.append(prefix + turn.text)
        lines += [f"    {note_label}: {note}" for note in turn.notes]
    return "".join(line + "\n" for line in lines)


# Escaped wherever they stand: emphasis, code, links, inline HTML, tables, strikethrough.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
# Only meaningful at the start of a line (">" is escaped above): headings, list items ("- ", "+ ", "1. ").
_MD_LINE_START = re.compile(r"^(\s*)(?:([#+\-])|(\d+)([.)]))")


def _md(text: str) -> str:
    def line_start(m: re.Match[str]) -> str:
        return f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}"

    return _MD_LINE_START.sub(line_start, _MD_INLINE.sub(r"\\\1", text))


def to_markdown(doc: Document, options: ExportOptions, digest: Digest | None = None, reader: Reader = ENGLISH) -> str:
    out = [f"# {_md(title_of(doc, reader))}", ""]
    created = doc.created_at or ""
    meta = [
        (N_("Duration"), stamp(doc.duration or 0)),
        (N_("Language"), reader.language(doc.language) if doc.language else reader.text(N_("unknown"))),
        (N_("Model"), doc.model or ""),
        (N_("Created"), reader.moment(created) if created and reader.localised else created),
    ]
    if options.speakers and doc.speakers:
        meta.append((N_("Speakers"), ", ".join(speaker_names(doc).values())))
    out += [f"- **{_md(reader.text(k))}:** {_md(str(v))}" for k, v in meta if v] + [""]
    if doc.note.strip():
        out += [f"> {_md(line)}" if line.strip() else ">" for line in doc.note.strip().splitlines()] + [""]
    if digest is not None:

        def line(item: DigestItem) -> str:
            times = " ".join(f"`{stamp(t)}`" for t in item.at) if options.timestamps else ""
            return " ".join(x for x in (_md(item.text), f"*({_md(item.detail)})*" if item.detail else "", times) if x)

        out += [f"## {_md(reader.text(N_('Summary')))}", "", line(digest.summary), ""]
        for section in digest.sections:
            out += [f"### {_md(section.title)}", ""] + [f"- {line(i)}" for i in section.items] + [""]
        if digest.footer:
            out += [f"*{_md(digest.footer)}*", ""]
        out += [f"## {_md(reader.text(N_('Transcript')))}", ""]
    rows = speaker_table(doc, options)
    if rows:
        columns = speaker_table_head(reader)
        out += ["| " + " | ".join(_md(h) for h in columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(_md(cell).replace("|", "\\|") for cell in row) + " |" for row in rows] + [""]
    for turn in turns(doc, options):
        head = f"`{stamp(turn.start)}` " if options.timestamps else ""
        head += f"**{_md(turn.speaker)}:** " if turn.speaker else ""
        out += [head + _md(turn.text), ""]
        out += [f"> *{_md(reader.text(N_('Note')))}:* {_md(note)}" for note in turn.notes] + ([""] if turn.notes else [])
    return "\n".join(out)


def _cell(value: object) -> object:
    # A leading =, +, - or @ is a formula to a spreadsheet: keep it text.
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# Translators: the CSV export's column names (a spreadsheet's header row): start and end time in seconds,
# speaker, the spoken text, a note people left on it.
CSV_HEADER = (N_("start"), N_("end"), N_("speaker"), N_("text"), N_("note"))


def to_csv(doc: Document, options: ExportOptions, reader: Reader = ENGLISH) -> str:
    """One row per segment: start, end (seconds), speaker, text, note. The header row is English for a
    program (the names it matches on) and in the reader's language for a person."""
    names = speaker_names(doc)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([reader.text(h) if reader.localised else h for h in CSV_HEADER])
    for seg in doc.segments:
        speaker = speaker_of(seg, names) if options.speakers else None
        writer.writerow(
            [
                f"{seg.start:.3f}",
                f"{seg.end:.3f}",
                _cell(speaker or ""),
                _cell(" ".join(seg.text.split())),
                _cell(seg.note.strip()),
            ]
        )
    return out.getvalue()


def to_json(doc: Document, options: ExportOptions, digest: Digest | None = None) -> str:
    """The full transcript document with its schema id (docs/transcript-json.md, docs/transcript.schema.json),
    and its latest summary under "summary" when one is given (the summaries API's document). A document
    for programs: its keys are the schema's, in no reader's language."""
    extra = {"summary": dict(digest.data)} if digest is not None and digest.data is not None else {}
    return json.dumps({"schema": JSON_SCHEMA, **to_builtins(doc), **extra}, ensure_ascii=False, indent=2) + "\n"
