"""The channel engine on a stereo file built here: a different sentence on each channel."""

from pathlib import Path

import numpy as np
import pytest

from appliance.transcription.audio import decode
from appliance.transcription.diarization import DiarizationError, DiarizationOptions
from appliance.transcription.diarization.channel import ChannelDiarizer
from tests.support import ffmpeg, speak


@pytest.fixture(scope="module")
def stereo_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Left: agent speaks from 0.5 s; right: caller answers after the agent ends. Light crosstalk."""
    d = tmp_path_factory.mktemp("call")
    agent = speak(d / "agent.wav", "Thank you for calling. How can I help you today?", voice="en-us")
    caller = speak(d / "caller.wav", "My internet connection keeps dropping every evening.", voice="en+f3")
    a = decode(agent.read_bytes()).samples
    b = decode(caller.read_bytes()).samples
    first_end = 0.5 + len(a) / 16000
    total = int((first_end + 0.7 + len(b) / 16000 + 0.5) * 16000)
    left, right = np.zeros(total, np.float32), np.zeros(total, np.float32)
    left[8000 : 8000 + len(a)] = a
    start_b = int((first_end + 0.7) * 16000)
    right[start_b : start_b + len(b)] = b
    left += 0.03 * right  # the agent's headset hears the caller faintly
    raw = d / "raw.f32"
    raw.write_bytes(np.stack([left, right], axis=1).astype("<f4").tobytes())
    out = d / "call.wav"
    ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "2", "-i", str(raw), "-c:a", "pcm_s16le", str(out))
    return out, first_end


def test_each_channel_is_a_speaker(stereo_call: tuple[Path, float]) -> None:
    path, first_end = stereo_call
    audio = decode(path.read_bytes(), keep_channels=True)
    assert audio.channels is not None and audio.channels.shape[0] == 2
    turns = ChannelDiarizer().diarize(audio.channels, DiarizationOptions())
    speakers = [t.speaker for t in turns]
    assert set(speakers) == {"channel1", "channel2"}
    left = [t for t in turns if t.speaker == "channel1"]
    right = [t for t in turns if t.speaker == "channel2"]
    assert abs(left[0].start - 0.5) < 0.3
    assert abs(right[0].start - (first_end + 0.7)) < 0.3
    assert max(t.end for t in left) < right[0].start + 0.2  # the crosstalk did not become agent speech


def test_mono_is_refused_clearly(speech_bytes: bytes) -> None:
    audio = decode(speech_bytes, keep_channels=True)
    with pytest.raises(DiarizationError, match="one speaker per channel"):
        ChannelDiarizer().diarize(audio.channels, DiarizationOptions())
