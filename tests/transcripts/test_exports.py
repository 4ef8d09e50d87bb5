"""Every export format on one fixed transcript with speakers, several scripts and hostile text.

Golden files live in tests/data/golden/; after an intended change, regenerate them with
`UPDATE_GOLDEN=1 scripts/test tests/transcripts/test_exports.py` and review the diff.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from msgspec.structs import replace

from appliance.transcripts import exports
from appliance.transcripts.document import from_builtins
from appliance.transcripts.exports import ExportOptions, OptionsError

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
CJK = "今天天气很好，我们去公园散步。"
BENGALI = "আমি বাংলায় গান গাই।"
GUJARATI = "હું ગુજરાતી બોલું છું."
ARABIC = "مرحبا بكم في الاجتماع"
RUSSIAN = "Съешь же ещё этих мягких французских булок."
TRICKY = "A --> B is <b>bold</b> & fun 🎉 = SUM(1) and שלום עולם right-to-left."


def _seg(i: int, start: float, end: float, text: str, speaker: str) -> dict:
    tokens = text.split()
    step = (end - start) / len(tokens)
    words = [
        {
            "start": round(start + k * step, 3),
            "end": round(start + (k + 1) * step - 0.02, 3),
            "word": f" {w}",
            "probability": 0.9,
            "speaker": speaker,
        }
        for k, w in enumerate(tokens)
    ]
    return {"id": i, "start": start, "end": end, "text": text, "speaker": speaker, "words": words}


DOC = from_builtins(
    {
        "id": "0123456789abcdef",
        "job_id": None,
        "filename": "board meeting – März.wav",
        "size_bytes": 1234,
        "model": "tiny.en",
        "task": "transcribe",
        "language": "en",
        "language_probability": 0.98,
        "duration": 3725.0,
        "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:00:00.000Z",
        "workspace_id": "w",
        "created_by": "u",
        "text": "",
        "note": "Figures to check before the minutes go out.",
        "options": {},
        "timings": {},
        "diarization": {"engine": "embedded", "speakers": 2, "turns": 5},
        "speakers": [
            {"id": "S1", "label": "Speaker 1", "display_name": None},
            {"id": "S2", "label": "Speaker 2", "display_name": "Dr. Ada Ó'Brien"},
        ],
        "segments": [
            _seg(
                0,
                7.3,
                11.0,
                "Good morning everyone, thank you for joining the quarterly review of our clinical results today.",
                "S1",
            ),
            {**_seg(1, 11.5, 14.0, TRICKY, "S1"), "note": "Ask Ada about slide 4"},
            _seg(2, 14.2, 20.0, f"{CJK} {RUSSIAN}", "S2"),
            _seg(3, 20.5, 24.0, f"{BENGALI} {GUJARATI}", "S2"),
            _seg(
                4,
                3700.0,
                3725.0,
                f"{ARABIC} and a very long closing sentence that goes on and on well past what one subtitle cue may hold on the screen.",
                "S1",
            ),
        ],
    }
)
TEXT_FORMATS = ("txt", "srt", "vtt", "json", "md", "csv")


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_golden_files(fmt: str) -> None:
    export = exports.render(DOC, fmt)
    path = GOLDEN / f"transcript.{fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(export.content)
    assert export.content == path.read_bytes(), f"{fmt} changed; review and regenerate with UPDATE_GOLDEN=1"


def test_srt_parses_with_the_srt_package_and_obeys_cue_rules() -> None:
    import srt

    options = ExportOptions()
    cues = list(srt.parse(exports.render(DOC, "srt").content.decode()))
    assert len(cues) >= 8
    for previous, cue in itertools.pairwise(cues):
        assert (cue.start - previous.end).total_seconds() >= options.min_gap_seconds - 0.001
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= options.max_lines and all(len(line) <= options.max_chars_per_line for line in lines), lines
        assert 0 < (cue.end - cue.start).total_seconds() <= options.max_cue_seconds
    assert cues[0].content.startswith("Speaker 1: Good morning")
    assert any("Dr. Ada Ó'Brien:" in c.content for c in cues)
    assert any(CJK[:4] in c.content for c in cues) and any(ARABIC.split(maxsplit=1)[0] in c.content for c in cues)


def test_vtt_parses_with_webvtt_py_and_obeys_cue_rules() -> None:
    import webvtt

    options = ExportOptions()
    captions = webvtt.from_buffer(io.StringIO(exports.render(DOC, "vtt").content.decode()))
    assert len(captions) >= 8
    for caption in captions:
        lines = caption.raw_text.split("\n")
        assert len(lines) <= options.max_lines
        plain = [line.split(">", 1)[1] if line.startswith("<v ") else line for line in lines]
        assert all(
            len(line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")) <= options.max_chars_per_line
            for line in plain
        )
        assert caption.raw_text.count("-->") == 0  # escaped, so it cannot end the cue
    assert captions[0].voice == "Speaker 1"
    assert any(c.voice == "Dr. Ada Ó'Brien" for c in captions)
    prefixed = exports.render(DOC, "vtt", ExportOptions(vtt_voice_tags=False)).content.decode()
    assert "<v " not in prefixed and "Speaker 1: Good morning" in prefixed


def test_cue_rules_are_options() -> None:
    import srt

    options = ExportOptions(max_chars_per_line=20, max_lines=1, max_cue_seconds=2.0, min_gap_seconds=0.2)
    cues = list(srt.parse(exports.render(DOC, "srt", options).content.decode()))
    for previous, cue in itertools.pairwise(cues):
        assert (cue.start - previous.end).total_seconds() >= 0.199
    for cue in cues:
        assert "\n" not in cue.content and len(cue.content) <= 20 and (cue.end - cue.start).total_seconds() <= 2.0


def test_text_options_and_markdown_csv_json() -> None:
    plain = exports.render_text(DOC, "txt", ExportOptions(timestamps=False, speakers=False))
    assert "[" not in plain.splitlines()[0] and "Speaker" not in plain
    md = exports.render_text(DOC, "md")
    assert md.startswith("# board meeting – März.wav") and "**Dr. Ada Ó'Brien:**" in md  # no needless escapes
    assert "\\<b\\>bold\\</b\\>" in md  # markup in speech never becomes markup in the document
    rows = exports.render_text(DOC, "csv").splitlines()
    assert rows[0] == "start,end,speaker,text,note" and len(rows) == 6
    data = json.loads(exports.render_text(DOC, "json"))
    assert data["schema"] == "sotto.transcript/v1" and data["segments"][2]["text"].startswith(CJK)


def test_every_format_carries_the_notes() -> None:
    from docx import Document

    for fmt in ("txt", "md", "csv", "json"):
        text = exports.render_text(DOC, fmt)
        assert "Ask Ada about slide 4" in text, fmt
        assert fmt == "csv" or "Figures to check before the minutes go out." in text, fmt
    word = Document(io.BytesIO(exports.render(DOC, "docx").content))
    paragraphs = "\n".join(p.text for p in word.paragraphs)
    assert "Figures to check before the minutes go out." in paragraphs and "Note: Ask Ada about slide 4" in paragraphs


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("- not a list", "\\- not a list"),
        ("1. not a list either", "1\\. not a list either"),
        ("# not a heading", "\\# not a heading"),
        ("plain prose, with (brackets) and 3.5 percent!", "plain prose, with (brackets) and 3.5 percent!"),
        ("*stars* and _underscores_ and [links](x)", "\\*stars\\* and \\_underscores\\_ and \\[links\\](x)"),
    ],
)
def test_markdown_escapes_only_what_markdown_would_read(said: str, written: str) -> None:
    from appliance.transcripts.exports.text import _md

    assert _md(said) == written


def test_csv_neutralises_formulas() -> None:
    doc = replace(DOC, segments=[from_builtins({"id": "x", "segments": [_seg(0, 0, 1, "=HYPERLINK(evil)", "S1")]}).segments[0]])
    assert "'=HYPERLINK" in exports.render_text(doc, "csv")


def test_docx_reads_back() -> None:
    from docx import Document

    word = Document(io.BytesIO(exports.render(DOC, "docx").content))
    text = "\n".join(p.text for p in word.paragraphs)
    assert "board meeting – März.wav" in text
    assert "[00:07.3] Speaker 1: Good morning everyone" in text
    assert "Dr. Ada Ó'Brien: " + CJK in text and BENGALI in text and ARABIC in text and "🎉" in text
    table = {row.cells[0].text: row.cells[1].text for row in word.tables[0].rows}
    assert table["Language"] == "en" and table["Duration"] == "1:02:05.0" and "Dr. Ada Ó'Brien" in table["Speakers"]


def test_pdf_text_extracts_every_script(tmp_path: Path) -> None:
    pdf = tmp_path / "t.pdf"
    pdf.write_bytes(exports.render(DOC, "pdf").content)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    squashed = "".join(text.split())
    for sentence in (CJK, BENGALI, GUJARATI, RUSSIAN):
        assert "".join(sentence.split()) in squashed, sentence
    # pdftotext re-orders some Gujarati vowel signs and Arabic runs; check their words survive.
    for word in ("ગુજરાતી", "مرحبا", "Speaker", "Ó'Brien"):
        assert word in text, word
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "NotoSans" in fonts and "NotoSansCJK" in fonts and "Bengali" in fonts
    assert "Type 3" in fonts  # the colour emoji, drawn as embedded glyph images
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:] if line.strip())  # every font embedded


def test_pdf_loads_only_the_fallback_fonts_its_text_needs() -> None:
    from appliance.transcripts.exports.document_formats import _fallbacks_for, _font_files

    fonts = _font_files()
    assert _fallbacks_for(["Plain English, déjà vu — “quoted” 12:30"], fonts) == []
    assert _fallbacks_for(["Shalom: שלום", "Hello"], fonts) == ["hebrew"]
    assert _fallbacks_for([CJK, ARABIC, "🎉"], fonts) == ["cjk", "arabic", "emoji"]


def test_bulk_zip_has_every_transcript_in_every_format() -> None:
    other = replace(DOC, id="fedcba9876543210")  # same file name: the second gets an id suffix
    archive = zipfile.ZipFile(io.BytesIO(exports.bundle([DOC, other], ["txt", "srt", "docx"])))
    names = sorted(archive.namelist())
    # File names in the zip keep letters of any script; punctuation outside the safe set becomes "_".
    assert len(names) == 6 and "board meeting _ März.txt" in names and "board meeting _ März-fedcba98.srt" in names


def test_bulk_zip_renders_each_format_once_and_stops_when_asked() -> None:
    rendered: list[str] = []
    original = exports.render

    def counting(doc, fmt, options=None, reader=exports.ENGLISH):  # type: ignore[no-untyped-def]
        rendered.append(fmt)
        return original(doc, fmt, options, reader=reader)

    exports.render = counting  # type: ignore[assignment]
    try:
        archive = zipfile.ZipFile(io.BytesIO(exports.bundle([DOC], ["pdf", "txt", "pdf", "txt"] * 1000)))
        assert sorted(archive.namelist()) == ["board meeting _ März.pdf", "board meeting _ März.txt"]
        assert sorted(rendered) == ["pdf", "txt"]
        rendered.clear()
        asked = iter([False, True])
        with pytest.raises(exports.BundleStopped, match="went away"):
            exports.bundle([DOC, replace(DOC, id="x")], ["txt"], stop=lambda: next(asked))
        assert rendered == ["txt"]  # the second file was never rendered
        with pytest.raises(exports.BundleStopped, match="larger than"):
            exports.bundle([DOC] * 20, ["docx"], max_bytes=20_000)
    finally:
        exports.render = original  # type: ignore[assignment]


def test_options_are_validated() -> None:
    with pytest.raises(OptionsError, match="unknown export option"):
        ExportOptions.parse({"colour": "red"})
    with pytest.raises(OptionsError, match="max_lines"):
        ExportOptions.parse({"max_lines": "9"})
    with pytest.raises(OptionsError, match="bad value"):
        ExportOptions.parse({"timestamps": "perhaps"})
    assert ExportOptions.parse({"timestamps": "false", "max_cue_seconds": "3.5"}) == ExportOptions(
        timestamps=False, max_cue_seconds=3.5
    )
    with pytest.raises(ValueError, match="unknown format"):
        exports.render(DOC, "exe")
