from pathlib import Path

import numpy as np
import pytest

from appliance.transcription.audio import SAMPLE_RATE, AudioError, decode, probe
from tests.support import FORMATS, VIDEO_FORMATS, ffmpeg


def test_decode_wav_to_16k_mono_float(speech_wav: Path) -> None:
    audio = decode(speech_wav.read_bytes())
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert 4.0 < audio.duration < 10.0
    assert np.abs(audio.samples).max() <= 1.0
    assert audio.container == "wav"


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_decode_every_container(ext: str, converted: dict[str, Path], speech_wav: Path) -> None:
    reference = decode(speech_wav.read_bytes())
    audio = decode(converted[ext].read_bytes())
    # Lossy codecs pad a few frames; the speech itself must all be there.
    assert abs(audio.duration - reference.duration) < 0.2, (ext, audio.duration, reference.duration)
    assert audio.had_video == (ext in VIDEO_FORMATS)
    rms = float(np.sqrt(np.mean(audio.samples**2)))
    assert rms > 0.01, f"{ext} decoded to near silence"


def test_decode_stereo_48k_mixes_down(media_dir: Path, speech_wav: Path) -> None:
    stereo = media_dir / "stereo48k.wav"
    ffmpeg("-i", str(speech_wav), "-ac", "2", "-ar", "48000", str(stereo))
    audio = decode(stereo.read_bytes())
    assert abs(audio.duration - decode(speech_wav.read_bytes()).duration) < 0.05
    assert len(audio.samples) == pytest.approx(audio.duration * SAMPLE_RATE)


def test_decode_empty_is_clear() -> None:
    with pytest.raises(AudioError, match="empty"):
        decode(b"")


def test_decode_text_file_is_clear() -> None:
    with pytest.raises(AudioError, match="could not be read as audio"):
        decode(b"Dear team,\nthis is a plain text note, not a recording.\n" * 50)


def test_probe_png_renamed_wav_has_no_audio(media_dir: Path) -> None:
    png = media_dir / "picture.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(png))
    with pytest.raises(AudioError, match="(no audio track|not a recording)"):
        probe(png.read_bytes())
    with pytest.raises(AudioError):
        decode(png.read_bytes())


def test_decode_truncated_mp3_keeps_what_is_there(converted: dict[str, Path]) -> None:
    data = converted["mp3"].read_bytes()
    full = decode(data)
    half = decode(data[: len(data) // 2])
    assert 0.3 * full.duration < half.duration < 0.7 * full.duration


def test_decode_header_only_mp3_is_clear(converted: dict[str, Path]) -> None:
    with pytest.raises(AudioError):
        decode(converted["mp3"].read_bytes()[:200])


def test_probe_accepts_audio(converted: dict[str, Path]) -> None:
    name, seconds = probe(converted["flac"].read_bytes())
    assert name == "flac"
    assert seconds and seconds > 4
