"""What every exporter shares: the document type, options, time formats, speaker names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from appliance.transcripts.analytics import speaker_analytics
from appliance.transcripts.document import SCHEMA_ID as JSON_SCHEMA
from appliance.transcripts.document import Segment
from appliance.transcripts.document import Transcript as Document

__all__ = ["ENGLISH", "JSON_SCHEMA", "Document", "Reader"]


def N_(message: str) -> str:
    """Marks an export's own word for the UI's catalogs (scripts/i18n-update); `Reader.text` translates it."""
    return message


def _same(text: str) -> str:
    return text


def _context_same(context: str, text: str) -> str:
    return text


def _iso_minute(iso: str) -> str:
    return iso[:19].replace("T", " ")


@dataclass(frozen=True)
class Reader:
    """Whose language an export's own words are in (headings, labels, the created date, the language's
    name); the transcript's text is never touched. The web layer makes one from the UI's catalogs
    (appliance/web/i18n.py, `export_reader`); the default is English with sortable dates, byte for byte
    what programs with an API key have always been given."""

    text: Callable[[str], str] = _same  # gettext
    pgettext: Callable[[str, str], str] = _context_same  # for a word whose meaning a context settles
    moment: Callable[[str], str] = _iso_minute  # an ISO timestamp as the reader writes dates
    language: Callable[[str], str] = _same  # a language code as a name the reader knows
    # A person's export rather than a program's: the CSV's column names are translated too, and
    # Markdown's created date is written as the reader writes dates rather than as the stored ISO text.
    localised: bool = False
    tag: str = "en"  # BCP 47: the DOCX's and PDF's document language (screen readers, hyphenation)


ENGLISH = Reader()


class OptionsError(ValueError):
    """An export option is not valid; the message names it."""


@dataclass(frozen=True)
class ExportOptions:
    timestamps: bool = True  # TXT, Markdown, DOCX, PDF: [mm:ss.s] before each paragraph
    speakers: bool = True  # speaker names in every format that can show them
    max_chars_per_line: int = 42  # subtitles: the usual guideline
    max_lines: int = 2
    max_cue_seconds: float = 7.0
    min_gap_seconds: float = 0.084  # about two frames at 24 fps, so players never merge cues
    vtt_voice_tags: bool = True  # VTT: <v Name> (else a "Name: " prefix like SRT)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ExportOptions:
        """From query parameters or CLI flags; unknown names and bad values are refused."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                raise OptionsError(f"unknown export option {name!r}; known: {', '.join(sorted(known))}")
            default = getattr(cls, name)
            try:
                if isinstance(default, bool):
                    text = str(value).strip().lower()
                    if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                        raise ValueError
                    values[name] = text in {"1", "true", "yes", "on"}
                elif isinstance(default, int):
                    values[name] = int(value)
                else:
                    values[name] = float(value)
            except ValueError:
                raise OptionsError(f"export option {name} has a bad value: {value!r}") from None
        options = cls(**values)
        if not 10 <= options.max_chars_per_line <= 200:
            raise OptionsError("max_chars_per_line must be from 10 to 200")
        if not 1 <= options.max_lines <= 5:
            raise OptionsError("max_lines must be from 1 to 5")
        if not 0.5 <= options.max_cue_seconds <= 60:
            raise OptionsError("max_cue_seconds must be from 0.5 to 60")
        if not 0 <= options.min_gap_seconds <= 2:
            raise OptionsError("min_gap_seconds must be from 0 to 2")
        return options


@dataclass(frozen=True)
class DigestItem:
    text: str
    at: tuple[float, ...] = ()  # the cited moments' start times, seconds
    detail: str = ""  # an action item's owner and due date


@dataclass(frozen=True)
class DigestSection:
    title: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class Digest:
    """A summary as the document exports show it (made by appliance/assist from its stored summary, so
    this layer needs nothing of the AI): the summary, titled lists with cited times, a closing line."""

    summary: DigestItem
    sections: tuple[DigestSection, ...] = ()
    footer: str = ""  # version, made by which model or edited; any note about the answer
    data: Mapping[str, Any] | None = None  # the stored summary document, for the JSON export


def speaker_names(doc: Document) -> dict[str, str]:
    """Speaker id → what people see: the display name once someone set it, else "Speaker N"."""
    return doc.speaker_names()


def speaker_of(segment: Segment, names: Mapping[str, str]) -> str | None:
    key = segment.speaker
    return None if key is None else names.get(key, key)


def clock(seconds: float, sep: str) -> str:
    """HH:MM:SS<sep>mmm, as SRT (",") and WebVTT (".") require."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def stamp(seconds: float) -> str:
    """[mm:ss.s], or [h:mm:ss.s] past the hour."""
    tenths = max(0, round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    return f"{hours}:{minutes:02d}:{rest / 10:04.1f}" if hours else f"{minutes:02d}:{rest / 10:04.1f}"


@dataclass(frozen=True)
class Turn:
    """A paragraph: consecutive segments of one speaker joined, with the notes people left on them."""

    start: float
    speaker: str | None
    text: str
    notes: tuple[str, ...] = ()


def turns(doc: Document, options: ExportOptions) -> list[Turn]:
    names = speaker_names(doc)
    out: list[tuple[float, str | None, list[str], list[str]]] = []
    for seg in doc.segments:
        text = " ".join(seg.text.split())
        note = seg.note.strip()
        if not text and not note:
            continue
        speaker = speaker_of(seg, names) if options.speakers else None
        if out and out[-1][1] == speaker and speaker is not None:
            out[-1][2].append(text)
            out[-1][3].append(note)
        else:
            out.append((seg.start, speaker, [text], [note]))
    return [
        Turn(start, speaker, " ".join(t for t in parts if t), tuple(n for n in notes if n))
        for start, speaker, parts, notes in out
    ]


def title_of(doc: Document, reader: Reader = ENGLISH) -> str:
    return doc.title or doc.filename or reader.text(N_("Transcript"))


def metadata(doc: Document, options: ExportOptions, reader: Reader = ENGLISH) -> list[tuple[str, str]]:
    """The document exports' header rows, label and value, in the reader's language."""
    rows = [
        (N_("File"), doc.filename or ""),
        (N_("Duration"), stamp(doc.duration or 0)),
        (N_("Language"), reader.language(doc.language) if doc.language else reader.text(N_("unknown"))),
        (N_("Model"), doc.model or ""),
        (N_("Created"), reader.moment(doc.created_at) if doc.created_at else ""),
    ]
    if options.speakers and doc.speakers:
        rows.append((N_("Speakers"), ", ".join(speaker_names(doc).values())))
    return [(reader.text(k), v) for k, v in rows if v or k != "File"]  # a shared copy has no file name to show


def speaker_table(doc: Document, options: ExportOptions) -> list[tuple[str, str, str, str, str, str]]:
    """Rows of the exports' speaker summary: name, talk time, share, turns, longest turn, interruptions."""
    if not options.speakers:
        return []
    return [
        (
            s.name,
            stamp(s.talk_seconds),
            f"{round(s.share * 100)}%",
            str(s.turns),
            stamp(s.longest_turn_seconds),
            str(s.interruptions),
        )
        for s in speaker_analytics(doc).speakers
    ]


def speaker_table_head(reader: Reader = ENGLISH) -> tuple[str, ...]:
    return (
        reader.text(N_("Speaker")),
        reader.text(N_("Talk time")),
        # Translators: a speaker's share of the talk time, in per cent (not "share a link").
        reader.pgettext("talk time", "Share"),
        reader.text(N_("Turns")),
        reader.text(N_("Longest turn")),
        reader.text(N_("Interruptions")),
    )
