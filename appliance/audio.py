"""Decode uploaded bytes to 16 kHz mono float32, entirely in memory (PyAV over a BytesIO)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """The bytes are not usable audio; the message is written for the person who uploaded them."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    container: str  # demuxer name as FFmpeg reports it, e.g. "wav", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str
    had_video: bool
    channels: np.ndarray | None = None  # (channels, samples) at SAMPLE_RATE, when asked for

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode(data: bytes | bytearray | memoryview, keep_channels: bool = False) -> DecodedAudio:
    """Decode any container FFmpeg knows; video files yield their first audio track.

    With keep_channels, each channel is also kept separately (for one-speaker-per-channel
    diarization); `samples` is then their average.
    """
    if len(data) == 0:
        raise AudioError("The file is empty.")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioError(
            "The file could not be read as audio or video. It may be damaged, or in a format that is not "
            f"audio (detail: {_short(exc)})."
        ) from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("The file has no audio track, so there is nothing to transcribe.")
        stream = streams[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        had_video = bool(container.streams.video)
        layout = stream.codec_context.layout.name if keep_channels and stream.codec_context.layout else "mono"
        resampler = av.AudioResampler(format="fltp" if keep_channels else "flt", layout=layout, rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        broken_packets = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    # A damaged frame in the middle: skip it and keep the rest of the recording.
                    broken_packets += 1
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        chunks.append(_planes(out, keep_channels))
            for out in resampler.resample(None):
                chunks.append(_planes(out, keep_channels))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioError(
                    f"The audio could not be decoded; the file may be damaged (detail: {_short(exc)})."
                ) from None
        channels = None
        if keep_channels and chunks:
            channels = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
            samples = channels.mean(axis=0)
        else:
            samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        if samples.size == 0:
            raise AudioError(
                "No audio could be decoded from the file; it may be truncated or damaged"
                + (f" ({broken_packets} damaged packets)." if broken_packets else ".")
            )
        return DecodedAudio(samples, container.format.name, codec, had_video, channels)


def _planes(frame: av.AudioFrame, keep_channels: bool) -> np.ndarray:
    array = frame.to_ndarray()
    return array.reshape(array.shape[0], -1) if keep_channels else array.reshape(-1)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


def probe(data: bytes | bytearray | memoryview) -> tuple[str, float | None]:
    """Cheap check at upload time: can FFmpeg open it, and does it have audio? Returns (container, seconds)."""
    if len(data) == 0:
        raise AudioError("The file is empty.")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError):
        raise AudioError(
            "The file is not a recording this appliance can read: it is neither audio nor video in a known "
            "format (for example WAV, MP3, M4A, FLAC, OGG, Opus, WebM, MP4, MKV, MOV, AVI or WMA)."
        ) from None
    with container:
        if not container.streams.audio:
            raise AudioError("The file has no audio track, so there is nothing to transcribe.")
        seconds = container.duration / 1_000_000 if container.duration else None
        return container.format.name, seconds
