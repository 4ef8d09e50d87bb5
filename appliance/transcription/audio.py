"""Decode uploaded bytes to 16 kHz mono float32, entirely in memory (PyAV over a BytesIO)."""

from __future__ import annotations

import io
from collections.abc import Callable
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


class TooLong(AudioError):
    """The recording is longer than the appliance accepts (server.max_audio_seconds)."""


def _hours(seconds: float) -> str:
    return f"{round(seconds / 3600, 1):g} hours" if seconds >= 3600 else f"{round(seconds / 60, 1):g} minutes"


class _Growing:
    """Decoded samples in one buffer that grows by half as they come (no list of chunks, no second
    concatenated copy), each growth paid for through `reserve` before it is allocated."""

    def __init__(self, rows: int, reserve: Callable[[int], None], max_samples: int) -> None:
        self.rows, self.reserve, self.max_samples = rows, reserve, max_samples
        self.size = 0
        self.buffer = np.zeros((rows, 0), np.float32)

    def add(self, block: np.ndarray) -> None:
        block = block.reshape(self.rows, -1)
        needed = self.size + block.shape[1]
        if needed > self.max_samples:
            raise TooLong(
                f"The recording is longer than this appliance accepts ({_hours(self.max_samples / SAMPLE_RATE)}). "
                "Split it into parts and upload them one by one."
            )
        if needed > self.buffer.shape[1]:
            capacity = min(self.max_samples, max(needed, int(self.buffer.shape[1] * 1.5), SAMPLE_RATE * 10))
            self.reserve((capacity - self.buffer.shape[1]) * self.rows * 4)
            grown = np.empty((self.rows, capacity), np.float32)
            grown[:, : self.size] = self.buffer[:, : self.size]
            self.buffer = grown
        self.buffer[:, self.size : needed] = block
        self.size = needed

    def result(self) -> np.ndarray:
        self.buffer = (
            np.ascontiguousarray(self.buffer[:, : self.size])
            if self.size < self.buffer.shape[1] // 2
            else self.buffer[:, : self.size]
        )
        return self.buffer


def decode(
    data: bytes | bytearray | memoryview,
    keep_channels: bool = False,
    *,
    max_seconds: float | None = None,
    reserve: Callable[[int], None] = lambda nbytes: None,
) -> DecodedAudio:
    """Decode any container FFmpeg knows; video files yield their first audio track.

    With keep_channels, each channel is also kept separately (for one-speaker-per-channel
    diarization); `samples` is then their average. Decoding stops with TooLong past `max_seconds`,
    and every allocation of decoded samples is first passed to `reserve` (bytes), which may refuse:
    a small file that decodes to hours of audio (a decompression bomb) is stopped by either.
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
    max_samples = int((max_seconds or 10**9) * SAMPLE_RATE)
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("The file has no audio track, so there is nothing to transcribe.")
        stream = streams[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        had_video = bool(container.streams.video)
        layout = stream.codec_context.layout.name if keep_channels and stream.codec_context.layout else "mono"
        resampler = av.AudioResampler(format="fltp" if keep_channels else "flt", layout=layout, rate=SAMPLE_RATE)
        rows = stream.codec_context.layout.nb_channels if keep_channels and stream.codec_context.layout else 1
        decoded = _Growing(rows, reserve, max_samples)
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
                        decoded.add(_planes(out, keep_channels))
            for out in resampler.resample(None):
                decoded.add(_planes(out, keep_channels))
        except av.error.FFmpegError as exc:
            if not decoded.size:
                raise AudioError(f"The audio could not be decoded; the file may be damaged (detail: {_short(exc)}).") from None
        channels = None
        if keep_channels and decoded.size:
            channels = decoded.result()
            samples = channels.mean(axis=0, dtype=np.float32)
        else:
            samples = decoded.result().reshape(-1) if decoded.size else np.zeros(0, np.float32)
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


def probe(data: bytes | bytearray | memoryview, max_seconds: float | None = None) -> tuple[str, float | None]:
    """Cheap check at upload time: can FFmpeg open it, does it have audio, and is its declared length
    within `max_seconds`? Returns (container, seconds). (A file can lie about its length: decode checks
    again as it goes.)"""
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
        if max_seconds is not None and seconds is not None and seconds > max_seconds:
            raise TooLong(
                f"The recording is {_hours(seconds)} long; this appliance accepts up to {_hours(max_seconds)}. "
                "Split it into parts and upload them one by one."
            )
        return container.format.name, seconds
