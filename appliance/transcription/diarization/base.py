"""What every diarization engine shares: turns, options, errors, the engine protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

MAX_SPEAKERS = 20
MAX_CHANNELS = 8  # the channel engine: one speaker a channel, up to this many


class DiarizationError(ValueError):
    """Diarization cannot run as asked; the message says why, for a person."""


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str  # the engine's own label; merged transcripts relabel to Speaker 1..N


@dataclass(frozen=True)
class Diarized:
    """Turns, and each engine speaker's voice: the L2-normalised mean of the embeddings the engine
    gave that speaker. The voices exist only while the audio is in memory; whether they are kept is the
    caller's decision (voice profiles, off by default)."""

    turns: list[Turn]
    voices: dict[str, np.ndarray]  # engine speaker label -> unit vector; empty where the engine has none


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of some unit embeddings (float32)."""
    mean = np.asarray(embeddings, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class DiarizationOptions:
    engine: str | None = None  # None: the configured default
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    # The channel engine: who is on each channel, in order ("agent", "customer"); else Speaker 1..N.
    channel_names: tuple[str, ...] | None = None

    def validate(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_SPEAKERS:
                raise DiarizationError(f"{name} must be from 1 to {MAX_SPEAKERS}, not {value}")
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise DiarizationError("min_speakers cannot be larger than max_speakers")
        if self.channel_names is not None:
            if self.engine != "channel":
                raise DiarizationError("channel_names names the channels of diarization_engine=channel; choose that engine")
            if not 1 <= len(self.channel_names) <= MAX_CHANNELS or not all(0 < len(n) <= 60 for n in self.channel_names):
                raise DiarizationError(f"channel_names must be 1 to {MAX_CHANNELS} names of 1 to 60 characters, comma-separated")
        if self.num_speakers and (self.min_speakers or self.max_speakers):
            raise DiarizationError("give either an exact number of speakers, or a minimum and maximum, not both")


class Diarizer(Protocol):
    name: str

    def available(self) -> str | None:
        """None when the engine can run here; otherwise why it cannot."""

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        """Speaker turns for 16 kHz mono audio (channel engines receive (channels, samples))."""

    def diarize_voices(self, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        """The same turns, with each speaker's voice embedding (for voice profiles)."""
