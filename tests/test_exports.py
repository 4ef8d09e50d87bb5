from appliance.exports import render, to_srt, to_txt, to_vtt

DOC = {
    "segments": [
        {"start": 0.0, "end": 1.5, "text": " Hello there.", "speaker": None, "words": []},
        {"start": 61.25, "end": 3723.5, "text": "A --> B is an arrow and this line is long enough to wrap twice over", "speaker": "Speaker 1", "words": []},
        {"start": 5.0, "end": 5.0, "text": "   ", "speaker": None, "words": []},
    ]
}


def test_srt_numbering_clock_and_wrapping() -> None:
    srt = to_srt(DOC)
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == 2  # the blank segment is not a cue
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:01,500\nHello there."
    lines = blocks[1].split("\n")
    assert lines[1] == "00:01:01,250 --> 01:02:03,500"
    assert lines[2].startswith("Speaker 1: A --> B")
    assert all(len(line) <= 42 for line in lines[2:])


def test_vtt_header_and_no_arrow_in_cue_text() -> None:
    vtt = to_vtt(DOC)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.")
    body = vtt.split("\n\n")[2]
    assert body.count("-->") == 1


def test_txt_and_unknown_format() -> None:
    assert to_txt(DOC) == "Hello there.\nSpeaker 1: A --> B is an arrow and this line is long enough to wrap twice over\n"
    assert to_txt({"segments": []}) == ""
    import pytest

    with pytest.raises(ValueError, match="unknown format"):
        render(DOC, "docx")
