"""The channel engine: one speaker per audio channel (call-centre stereo, per-person mics). No model."""

from __future__ import annotations

import numpy as np

from appliance.transcription.diarization.base import DiarizationError, DiarizationOptions, Turn

SAMPLE_RATE = 16_000
FRAME = 0.05  # seconds: resolution of the turns
BLEED_DB = 12.0  # a channel this much quieter than the loudest one is only hearing crosstalk
MIN_TURN = 0.2  # seconds; shorter blips are VAD padding or a cough, not a turn


class ChannelDiarizer:
    name = "channel"
    needs_channels = True

    def available(self) -> str | None:
        return None

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        """`audio` is (channels, samples) at 16 kHz."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        if audio.ndim != 2 or audio.shape[0] < 2:
            raise DiarizationError(
                "The channel engine needs a recording with one speaker per channel (stereo or more); this one is mono."
            )
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
        speaking = active & (level >= level.max(axis=0)[None, :] - BLEED_DB)
        turns: list[Turn] = []
        for ch in range(channels):
            flags = np.concatenate([[False], speaking[ch], [False]])
            edges = np.flatnonzero(np.diff(flags.astype(int)))
            for start, end in zip(edges[::2], edges[1::2], strict=False):
                if (end - start) * FRAME < MIN_TURN:
                    continue
                turns.append(Turn(start * FRAME, min(end * FRAME, samples / SAMPLE_RATE), f"channel{ch + 1}"))
        return sorted(turns, key=lambda t: (t.start, t.speaker))
