"""Exports: one function per format, all from the same transcript document.

`render(doc, fmt, options)` returns an `Export` (bytes, media type, file extension) for every format;
`bundle(docs, formats, options)` zips several transcripts (bulk export). A `Reader` puts the exports' own
words (headings, labels, dates) in a person's language; without one they are English.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.transcripts.exports.model import (
    ENGLISH,
    Digest,
    DigestItem,
    DigestSection,
    Document,
    ExportOptions,
    OptionsError,
    Reader,
)

__all__ = [
    "ENGLISH",
    "FORMATS",
    "Digest",
    "DigestItem",
    "DigestSection",
    "Document",
    "Export",
    "ExportOptions",
    "OptionsError",
    "Reader",
    "bundle",
    "render",
    "render_text",
]


@dataclass(frozen=True)
class Export:
    content: bytes
    media_type: str
    extension: str


def _registry() -> dict[str, tuple[Callable[..., bytes | str], str]]:
    from appliance.transcripts.exports import document_formats, subtitles, text

    return {
        "txt": (text.to_txt, "text/plain; charset=utf-8"),
        "md": (text.to_markdown, "text/markdown; charset=utf-8"),
        "csv": (text.to_csv, "text/csv; charset=utf-8"),
        "json": (text.to_json, "application/json"),
        "srt": (subtitles.to_srt, "application/x-subrip; charset=utf-8"),
        "vtt": (subtitles.to_vtt, "text/vtt; charset=utf-8"),
        "docx": (document_formats.to_docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "pdf": (document_formats.to_pdf, "application/pdf"),
    }


FORMATS = ("txt", "srt", "vtt", "json", "md", "csv", "docx", "pdf")
DIGEST_FORMATS = ("json", "md", "docx", "pdf")  # the formats that carry a summary when one is given
TEXT_FORMATS = ("txt", "srt", "vtt", "json", "md", "csv")


LABELLED_FORMATS = ("txt", "md", "csv", "docx", "pdf")  # the formats with words of their own (SRT, VTT, JSON: none)


def render(
    doc: Document,
    fmt: str,
    options: ExportOptions | None = None,
    digest: Digest | None = None,
    reader: Reader = ENGLISH,
) -> Export:
    registry = _registry()
    if fmt not in registry:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    function, media_type = registry[fmt]
    extra = {"reader": reader} if fmt in LABELLED_FORMATS else {}
    if fmt in DIGEST_FORMATS:
        content = function(doc, options or ExportOptions(), digest, **extra)
    else:
        content = function(doc, options or ExportOptions(), **extra)
    if fmt in ("pdf", "docx"):
        from appliance.core import memory

        memory.release()  # font tables and layout buffers: tens of MB per document
    return Export(content.encode("utf-8") if isinstance(content, str) else content, media_type, fmt)


def render_text(doc: Document, fmt: str, options: ExportOptions | None = None) -> str:
    """Text formats as a string (the CLI's standard output)."""
    if fmt not in TEXT_FORMATS:
        raise ValueError(f"{fmt} is not a text format")
    return render(doc, fmt, options).content.decode("utf-8")


def safe_stem(doc: Document) -> str:
    # The title people gave it (a public copy has only that); else the file name without its extension.
    stem = doc.title or doc.filename or "transcript"
    if stem == doc.filename:
        stem = stem.rsplit(".", 1)[0]
    stem = re.sub(r"[^\w\-. ]+", "_", stem, flags=re.UNICODE).strip(" .") or "transcript"
    return stem[:80]


class BundleStopped(Exception):
    """The bulk export was abandoned: the client left, or the zip grew past its size limit."""


def bundle(
    docs: Iterable[Document],
    formats: Iterable[str],
    options: ExportOptions | None = None,
    *,
    stop: Callable[[], bool] = lambda: False,
    max_bytes: int | None = None,
    reader: Reader = ENGLISH,
) -> bytes:
    """A zip with each transcript in each chosen format (each format once); names never collide.
    `stop` is asked between files (a client that went away); past `max_bytes` the work ends."""
    formats = list(dict.fromkeys(formats))
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for doc in docs:
            stem = safe_stem(doc)
            if stem in used:
                stem = f"{stem}-{doc.id[:8]}"
            used.add(stem)
            for fmt in formats:
                if stop():
                    raise BundleStopped("the client went away")
                archive.writestr(f"{stem}.{fmt}", render(doc, fmt, options, reader=reader).content)
                if max_bytes is not None and buffer.tell() > max_bytes:
                    raise BundleStopped(f"the zip would be larger than {max_bytes // 2**20} MB")
    return buffer.getvalue()
