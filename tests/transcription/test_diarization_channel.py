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


AGENT = "Thank you for calling the support line. How can I help you today?"
CALLER = "My internet connection keeps dropping every single evening."


@pytest.fixture(scope="module")
def overlapping_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both talk at once for most of the call (the caller starts one second in), and each headset hears
    the other side 20 dB down: the case a mixed recognition garbles."""
    d = tmp_path_factory.mktemp("overlap")
    a = decode(speak(d / "a.wav", AGENT, voice="en-us").read_bytes()).samples
    b = decode(speak(d / "b.wav", CALLER, voice="en+f3").read_bytes()).samples
    total = int(16000 * 1.5) + max(len(a), 16000 + len(b))
    left, right = np.zeros(total, np.float32), np.zeros(total, np.float32)
    left[8000 : 8000 + len(a)] = a
    right[24000 : 24000 + len(b)] = b
    left, right = left + 0.1 * right, right + 0.1 * left
    raw = d / "raw.f32"
    raw.write_bytes(np.stack([left, right], axis=1).astype("<f4").tobytes())
    out = d / "overlap.wav"
    ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "2", "-i", str(raw), "-c:a", "pcm_s16le", str(out))
    return out


def _wer(reference: str, hypothesis: str) -> float:
    import re

    import jiwer

    def norm(text: str) -> str:
        return re.sub(r"[^a-z ]", "", text.lower())

    return float(jiwer.wer(norm(reference), norm(hypothesis)))


def test_overlapping_speech_is_recognised_channel_by_channel(settings, overlapping_call: Path) -> None:  # type: ignore[no-untyped-def]
    """Each channel through the real tiny Whisper on its own, words interleaved by time, bleed dropped,
    speakers named from channel_names."""
    from appliance.transcription.asr import ModelRegistry, WhisperEngine
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import parse
    from appliance.transcription.pipeline import run

    raw = {"language": "en", "diarize": True, "diarization_engine": "channel", "channel_names": "Agent, Customer"}
    options = parse(raw, settings, ModelRegistry(settings.models.models_dir))
    (out,) = run(
        overlapping_call.read_bytes(),
        options,
        WhisperEngine(settings.models),
        lambda p: None,
        lambda: False,
        DiarizationEngines(settings),
    )
    names = {s.id: s.label for s in out.speakers}
    assert sorted(names.values()) == ["Agent", "Customer"]
    said = {
        label: " ".join(s.text for s in out.result.segments if names.get(s.speaker or "") == label) for label in names.values()
    }
    assert _wer(AGENT, said["Agent"]) <= 0.25, said
    assert _wer(CALLER, said["Customer"]) <= 0.25, said
    starts = [s.start for s in out.result.segments]
    assert starts == sorted(starts)  # one conversation in time order
    assert {s.speaker for s in out.result.segments[:1]} == {next(k for k, v in names.items() if v == "Agent")}


def test_channel_options_are_checked_before_any_work(settings, speech_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    from appliance.transcription.asr import ModelRegistry
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import OptionsError, parse
    from appliance.transcription.pipeline import run

    registry = ModelRegistry(settings.models.models_dir)
    with pytest.raises(OptionsError, match="choose that engine"):
        parse({"diarize": True, "diarization_engine": "embedded", "channel_names": "a,b"}, settings, registry)
    with pytest.raises(OptionsError, match="needs diarize=true"):
        parse({"channel_names": "a,b"}, settings, registry)
    options = parse({"diarize": True, "diarization_engine": "channel"}, settings, registry)

    class Refuses:
        def transcribe(self, *args: object) -> None:
            raise AssertionError("a mono recording reached recognition")

    with pytest.raises(DiarizationError, match="one speaker per channel"):
        run(speech_bytes, options, Refuses(), lambda p: None, lambda: False, DiarizationEngines(settings))  # type: ignore[arg-type]
