"""The channel engine: one speaker per audio channel (call-centre stereo, per-person mics). No model."""

from __future__ import annotations

import numpy as np

from appliance.transcription.diarization.base import MAX_CHANNELS, DiarizationError, DiarizationOptions, Diarized, Turn

SAMPLE_RATE = 16_000
FRAME = 0.05  # seconds: resolution of the turns
BLEED_DB = 12.0  # a channel this much quieter than the loudest one is only hearing crosstalk
MIN_TURN = 0.2  # seconds; shorter blips are VAD padding or a cough, not a turn


class ChannelDiarizer:
    name = "channel"
    needs_channels = True
    # The pipeline recognises each channel on its own (pipeline.py): overlapping speech stays intact.
    per_channel = True

    def available(self) -> str | None:
        return None

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        """`audio` is (channels, samples) at 16 kHz."""
        speaking = self.speaking(audio)
        samples = audio.shape[1]
        turns: list[Turn] = []
        for ch in range(speaking.shape[0]):
            flags = np.concatenate([[False], speaking[ch], [False]])
            edges = np.flatnonzero(np.diff(flags.astype(int)))
            for start, end in zip(edges[::2], edges[1::2], strict=False):
                if (end - start) * FRAME < MIN_TURN:
                    continue
                turns.append(Turn(start * FRAME, min(end * FRAME, samples / SAMPLE_RATE), channel_key(ch)))
        return sorted(turns, key=lambda t: (t.start, t.speaker))

    def diarize_voices(self, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        # A channel is named by its wiring (channel_names), not by its voice: no embeddings to offer.
        return Diarized(self.diarize(audio, options), {})

    def speaking(self, audio: np.ndarray) -> np.ndarray:
        """(channels, frames) of FRAME seconds: True where a channel's own speaker talks, i.e. its voice
        activity is on and it is not the faint copy (BLEED_DB or more below the loudest channel) of
        someone else's voice leaking in."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        check_channels(audio)
        channels, samples = audio.shape
        frames = int(np.ceil(samples / (FRAME * SAMPLE_RATE)))
        active = np.zeros((channels, frames), bool)
        level = np.full((channels, frames), -120.0)
        step = int(FRAME * SAMPLE_RATE)
        for ch in range(channels):
            for chunk in get_speech_timestamps(audio[ch], VadOptions(min_silence_duration_ms=250, speech_pad_ms=50)):
                active[ch, chunk["start"] // step : int(np.ceil(chunk["end"] / step))] = True
            padded = np.pad(audio[ch], (0, frames * step - samples))
            rms = np.sqrt(np.mean(padded.reshape(frames, step).astype(np.float64) ** 2, axis=1))
            level[ch] = 20 * np.log10(np.maximum(rms, 1e-6))
        result: np.ndarray = active & (level >= level.max(axis=0)[None, :] - BLEED_DB)
        return result


def channel_key(index: int) -> str:
    return f"channel{index + 1}"


def check_channels(audio: np.ndarray | None) -> None:
    if audio is None or audio.ndim != 2 or audio.shape[0] < 2:
        raise DiarizationError(
            "The channel engine needs a recording with one speaker per channel (stereo or more); this one is mono."
        )
    if audio.shape[0] > MAX_CHANNELS:
        raise DiarizationError(f"The channel engine handles up to {MAX_CHANNELS} channels; this recording has {audio.shape[0]}.")
