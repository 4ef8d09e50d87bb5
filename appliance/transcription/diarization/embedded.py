"""The embedded diarization engine: works on a clean machine, on the CPU, with no gated weights.

Silero VAD (shipped inside faster-whisper) finds speech; a GE2E speaker encoder (Resemblyzer's
pretrained weights, run in numpy) embeds short sliding windows; spectral clustering groups them
into speakers, choosing the count by eigengap unless told; labels are smoothed and joined into turns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.transcription.diarization.base import DiarizationError, DiarizationOptions, Diarized, Turn, centroid
from appliance.transcription.diarization.clustering import spectral_labels
from appliance.transcription.diarization.ge2e import HOP, SAMPLE_RATE, SpeakerEncoder, default_weights_path

FRAMES_PER_SECOND = SAMPLE_RATE // HOP


@dataclass(frozen=True)
class EmbeddedParams:
    window: float = 1.2  # seconds of audio per embedding
    step: float = 0.25  # seconds between window centres: the time resolution of speaker changes
    min_region: float = 0.25  # speech shorter than this is attached to its neighbours, not embedded
    smooth: int = 3  # median filter width over consecutive windows' labels (odd)


class EmbeddedDiarizer:
    name = "embedded"

    def __init__(self, weights: Path | None = None, params: EmbeddedParams = EmbeddedParams()) -> None:
        self.weights = weights or default_weights_path()
        self.params = params
        self._encoder: SpeakerEncoder | None = None

    def available(self) -> str | None:
        """None if usable, else why not."""
        if self.weights is None or not Path(self.weights).is_file():
            return "the embedded engine's speaker-encoder weights are missing (install the 'resemblyzer' package with --no-deps)"
        return None

    def _load(self) -> SpeakerEncoder:
        if self._encoder is None:
            problem = self.available()
            if problem:
                raise DiarizationError(problem)
            self._encoder = SpeakerEncoder(Path(self.weights))  # type: ignore[arg-type]
        return self._encoder

    def speech_regions(self, audio: np.ndarray) -> list[tuple[float, float]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        chunks = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=200, speech_pad_ms=60, threshold=0.5))
        return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]

    def diarize(self, audio: np.ndarray, options: DiarizationOptions) -> list[Turn]:
        return self.diarize_voices(audio, options).turns

    def diarize_voices(self, audio: np.ndarray, options: DiarizationOptions) -> Diarized:
        encoder = self._load()
        p = self.params
        regions = [(s, e) for s, e in self.speech_regions(audio) if e - s >= p.min_region]
        if not regions:
            return Diarized([], {})
        duration = len(audio) / SAMPLE_RATE
        # Each window embeds `window` seconds around its centre and speaks for `step` seconds of
        # the region around that centre.
        centres: list[float] = []
        spans: list[tuple[float, float]] = []
        region_of: list[int] = []
        for index, (start, end) in enumerate(regions):
            count = max(1, round((end - start) / p.step))
            edges = np.linspace(start, end, count + 1)
            for a, b in itertools.pairwise(edges):
                centres.append((a + b) / 2)
                spans.append((float(a), float(b)))
                region_of.append(index)
        window_frames = int(p.window * FRAMES_PER_SECOND)
        starts = [int(max(0.0, min(c - p.window / 2, duration - p.window)) * FRAMES_PER_SECOND) for c in centres]
        embeddings = encoder.embed_windows(audio, starts, length=window_frames)
        labels = self._labels(embeddings, options)
        labels = _median_smooth(labels, p.smooth)
        turns: list[Turn] = []
        for (a, b), label, region in zip(spans, labels, region_of, strict=False):
            speaker = f"spk{label}"
            last = turns[-1] if turns else None
            if last and last.speaker == speaker and region_of_turn(last, regions) == region:
                turns[-1] = Turn(last.start, b, speaker)
            else:
                turns.append(Turn(a, b, speaker))
        # A speaker's voice: the mean of the windows finally given to them (after smoothing), so one
        # misheard window does not pull a voice towards its neighbour's.
        voices = {f"spk{label}": centroid(embeddings[labels == label]) for label in np.unique(labels)}
        return Diarized(turns, voices)

    def voice(self, audio: np.ndarray) -> np.ndarray | None:
        """One speaker's voice from a short recording of them alone (enrolment); None without speech."""
        found = self.diarize_voices(audio, DiarizationOptions(num_speakers=1))
        return next(iter(found.voices.values()), None)

    def _labels(self, embeddings: np.ndarray, options: DiarizationOptions) -> np.ndarray:
        low = options.num_speakers or options.min_speakers or 1
        high = options.num_speakers or options.max_speakers or 8
        # Windows within `window` of each other overlap: keep more links per row than those neighbours.
        overlapping = int(np.ceil(2 * self.params.window / self.params.step))
        return spectral_labels(embeddings, options.num_speakers, low, high, min_links=overlapping)


def region_of_turn(turn: Turn, regions: list[tuple[float, float]]) -> int:
    for index, (start, end) in enumerate(regions):
        if start - 1e-6 <= turn.start < end:
            return index
    return -1


def _median_smooth(labels: np.ndarray, width: int) -> np.ndarray:
    """Remove one-window flickers: a label differing from both neighbours takes theirs."""
    if width < 3 or len(labels) < 3:
        return labels
    out = labels.copy()
    for i in range(1, len(labels) - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out
