import pytest

from appliance.exports import render, to_srt, to_txt, to_vtt

DOC = {
    "segments": [
        {"start": 0.0, "end": 1.5, "text": " Hello there.", "speaker": None, "words": []},
        {"start": 61.25, "end": 3723.5, "text": "A --> B is an arrow & <b>this</b> line is long enough to wrap twice", "speaker": None, "words": []},
        {"start": 5.0, "end": 5.0, "text": "   ", "speaker": None, "words": []},
    ]
}
DIARIZED = {
    "speakers": [{"id": "S1", "label": "Speaker 1", "display_name": None}, {"id": "S2", "label": "Speaker 2", "display_name": "Dr. Ada"}],
    "segments": [
        {"start": 7.3, "end": 8.0, "text": "Hello?", "speaker": "S1", "words": []},
        {"start": 8.1, "end": 9.0, "text": "Is anyone there?", "speaker": "S1", "words": []},
        {"start": 3725.0, "end": 3726.0, "text": "Yes.", "speaker": "S2", "words": []},
    ],
}


def test_srt_numbering_clock_and_wrapping() -> None:
    blocks = to_srt(DOC).strip().split("\n\n")
    assert len(blocks) == 2  # the blank segment is not a cue
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:01,500\nHello there."
    lines = blocks[1].split("\n")
    assert lines[1] == "00:01:01,250 --> 01:02:03,500"
    assert all(len(line) <= 42 for line in lines[2:])


def test_vtt_header_and_escaping() -> None:
    vtt = to_vtt(DOC)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.")
    body = vtt.split("\n\n")[2]
    assert body.count("-->") == 1
    assert "&amp;" in body and "&lt;b&gt;" in body


def test_txt_plain_and_unknown_format() -> None:
    assert to_txt(DOC) == "Hello there.\nA --> B is an arrow & <b>this</b> line is long enough to wrap twice\n"
    assert to_txt({"segments": []}) == ""
    with pytest.raises(ValueError, match="unknown format"):
        render(DOC, "docx")


def test_speakers_in_every_format_use_display_names() -> None:
    assert to_txt(DIARIZED) == "[00:07.3] Speaker 1: Hello? Is anyone there?\n[1:02:05.0] Dr. Ada: Yes.\n"
    srt = to_srt(DIARIZED)
    assert "Speaker 1: Hello?" in srt and "Dr. Ada: Yes." in srt
    vtt = to_vtt(DIARIZED)
    assert "<v Speaker 1>Hello?" in vtt and "<v Dr. Ada>Yes." in vtt
