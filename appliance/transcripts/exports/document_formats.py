"""Word (python-docx) and PDF (fpdf2 with HarfBuzz shaping and Noto fonts for every script)."""

from __future__ import annotations

import io
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from appliance.transcripts.exports.model import (
    ENGLISH,
    N_,
    Digest,
    DigestItem,
    Document,
    ExportOptions,
    Reader,
    metadata,
    speaker_table,
    speaker_table_head,
    stamp,
    title_of,
    turns,
)

# Debian's fonts-noto-core, fonts-noto-cjk and fonts-noto-color-emoji (the Docker image and scripts/test
# install them).
FONT_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/opentype/noto"))
FALLBACKS = {  # family -> file; tried in order for glyphs the main font lacks
    "cjk": "NotoSansCJK-Regular.ttc",
    "arabic": "NotoSansArabic-Regular.ttf",
    "hebrew": "NotoSansHebrew-Regular.ttf",
    "bengali": "NotoSansBengali-Regular.ttf",
    "gujarati": "NotoSansGujarati-Regular.ttf",
    "devanagari": "NotoSansDevanagari-Regular.ttf",
    "tamil": "NotoSansTamil-Regular.ttf",
    "thai": "NotoSansThai-Regular.ttf",
    "emoji": "NotoColorEmoji.ttf",  # fonts-noto-color-emoji
}


class FontsMissing(RuntimeError):
    """The PDF fonts are not installed; the message says which package brings them."""


def to_docx(doc: Document, options: ExportOptions, digest: Digest | None = None, reader: Reader = ENGLISH) -> bytes:
    from docx import Document as WordDocument
    from docx.shared import Pt, RGBColor

    word = WordDocument()
    word.core_properties.title = title_of(doc, reader)
    if reader.localised:
        word.core_properties.language = reader.tag
    word.add_heading(title_of(doc, reader), level=1)
    table = word.add_table(rows=0, cols=2)
    table.style = "Light List Accent 1"
    for key, value in metadata(doc, options, reader):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = key, value
    note_label = reader.text(N_("Note"))
    if doc.note.strip():
        word.add_heading(note_label, level=2)
        for line in doc.note.strip().splitlines():
            word.add_paragraph(line)
    if digest is not None:
        _docx_digest(word, digest, options, reader)
    rows = speaker_table(doc, options)
    if rows:
        word.add_heading(reader.text(N_("Speakers")), level=2)
        head = speaker_table_head(reader)
        speakers = word.add_table(rows=1, cols=len(head))
        speakers.style = "Light List Accent 1"
        for cell, text in zip(speakers.rows[0].cells, head, strict=True):
            cell.text = text
        for row in rows:
            for cell, text in zip(speakers.add_row().cells, row, strict=True):
                cell.text = text
    word.add_heading(reader.text(N_("Transcript")), level=2)
    for turn in turns(doc, options):
        paragraph = word.add_paragraph()
        if options.timestamps:
            run = paragraph.add_run(f"[{stamp(turn.start)}] ")
            run.font.color.rgb = RGBColor(0x66, 0x66, 0x66)
            run.font.size = Pt(9)
        if turn.speaker:
            paragraph.add_run(f"{turn.speaker}: ").bold = True
        paragraph.add_run(turn.text)
        for note in turn.notes:
            noted = word.add_paragraph(style="Intense Quote")
            noted.add_run(f"{note_label}: ").bold = True
            noted.add_run(note)
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


def _at(item: DigestItem) -> str:
    return "".join(f" [{stamp(t)}]" for t in item.at)


def _docx_digest(word: Any, digest: Digest, options: ExportOptions, reader: Reader) -> None:
    from docx.shared import Pt, RGBColor

    def cited(paragraph: Any, item: DigestItem) -> None:
        paragraph.add_run(item.text)
        if item.detail:
            paragraph.add_run(f" ({item.detail})").italic = True
        if item.at and options.timestamps:
            run = paragraph.add_run(_at(item))
            run.font.color.rgb = RGBColor(0x66, 0x66, 0x66)
            run.font.size = Pt(9)

    word.add_heading(reader.text(N_("Summary")), level=2)
    cited(word.add_paragraph(), digest.summary)
    for section in digest.sections:
        word.add_heading(section.title, level=3)
        for item in section.items:
            cited(word.add_paragraph(style="List Bullet"), item)
    if digest.footer:
        word.add_paragraph().add_run(digest.footer).italic = True


@lru_cache(maxsize=1)
def _font_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    wanted = {"regular": "NotoSans-Regular.ttf", "bold": "NotoSans-Bold.ttf", **FALLBACKS}
    for name, file in wanted.items():
        for folder in FONT_DIRS:
            if (folder / file).is_file():
                found[name] = folder / file
                break
    if "regular" not in found or "bold" not in found:
        raise FontsMissing("PDF export needs the Noto fonts: install the Debian packages fonts-noto-core and fonts-noto-cjk.")
    return found


@cache
def _coverage(path: Path) -> frozenset[int]:
    """The code points a font file has glyphs for (read once; the cmap only, not the glyphs)."""
    from fontTools.ttLib import TTFont  # fpdf2's own font parser

    font = TTFont(str(path), fontNumber=0, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


def _fallbacks_for(texts: list[str], fonts: dict[str, Path]) -> list[str]:
    """The fallback families this document's characters need, in FALLBACKS order.

    fpdf2 parses every font it is given: all nine fallbacks cost about 150 MB and 1.5 s per PDF, for
    glyphs most transcripts never use. A document in Latin script loads just the two main fonts.
    """
    missing = {ord(c) for text in texts for c in text if not c.isspace()} - _coverage(fonts["regular"])
    needed = []
    for family in FALLBACKS:
        if missing and family in fonts and missing & _coverage(fonts[family]):
            needed.append(family)
            missing -= _coverage(fonts[family])
    return needed


# Translators: one speaker's line in a PDF export's header, e.g. "Ada: 02:10.0 (45%), 12 turns, longest
# 00:41.5, 3 interruptions". Keep the names in %(…)s as they are.
PDF_SPEAKER_LINE = N_("%(name)s: %(talk)s (%(share)s), %(turns)s turns, longest %(longest)s, %(cuts)s interruptions")


def to_pdf(doc: Document, options: ExportOptions, digest: Digest | None = None, reader: Reader = ENGLISH) -> bytes:
    from fpdf import FPDF

    fonts = _font_files()
    title = title_of(doc, reader)
    note_label = reader.text(N_("Note"))
    header = [f"{key}: {value}" for key, value in metadata(doc, options, reader)]
    header += [f"{note_label}: {line}" for line in doc.note.strip().splitlines()]
    header += [
        reader.text(PDF_SPEAKER_LINE)
        % {"name": name, "talk": talk, "share": share, "turns": turns, "longest": longest, "cuts": cuts}
        for name, talk, share, turns, longest, cuts in speaker_table(doc, options)
    ]
    body = []
    if digest is not None:
        at = _at if options.timestamps else (lambda item: "")
        body.append((reader.text(N_("Summary")), digest.summary.text + at(digest.summary)))
        for section in digest.sections:
            lines = [f"• {i.text}" + (f" ({i.detail})" if i.detail else "") + at(i) for i in section.items]
            body.append((section.title, "\n".join(lines)))
        if digest.footer:
            body.append(("", digest.footer))
    for turn in turns(doc, options):
        head = (f"[{stamp(turn.start)}] " if options.timestamps else "") + (f"{turn.speaker}: " if turn.speaker else "")
        body.append((head.strip(), "\n".join([turn.text, *(f"{note_label}: {note}" for note in turn.notes)])))
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(title)
    if reader.localised:
        pdf.set_lang(reader.tag)
    pdf.set_creator("Sotto appliance")
    pdf.add_font("noto", "", fonts["regular"])
    pdf.add_font("noto", "B", fonts["bold"])
    fallbacks = _fallbacks_for([title, *header, *(h + t for h, t in body)], fonts)
    for family in fallbacks:
        pdf.add_font(family, "", fonts[family])
    pdf.set_fallback_fonts(fallbacks, exact_match=False)
    pdf.set_text_shaping(True)  # HarfBuzz: joined Arabic, Indic conjuncts, right-to-left runs
    pdf.add_page()
    pdf.set_font("noto", "B", 16)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("noto", "", 9)
    for line in header:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for head, text in body:
        if head:
            pdf.set_font("noto", "B", 10)
            pdf.multi_cell(0, 6, head, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("noto", "", 11)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())
