"""Decode uploaded bytes to 16 kHz mono float32, entirely in memory (PyAV over a BytesIO)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
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


def _open(data: bytes | bytearray | memoryview) -> av.container.InputContainer:
    if len(data) == 0:
        raise AudioError("The file is empty.")
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioError(
            "The file could not be read as audio or video. It may be damaged, or in a format that is not "
            f"audio (detail: {_short(exc)})."
        ) from None


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    streams = container.streams.audio
    if not streams:
        raise AudioError("The file has no audio track, so there is nothing to transcribe.")
    return streams[0]


def _blocks(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, keep_channels: bool
) -> Iterator[np.ndarray]:
    """Resampled blocks as FFmpeg hands them out: (channels, n) with keep_channels, else (n,) mono.

    A damaged packet in the middle is skipped (the rest of the recording is kept); an error that stops
    the demuxer ends the blocks, and the caller decides whether what came before is enough.
    """
    layout = stream.codec_context.layout.name if keep_channels and stream.codec_context.layout else "mono"
    resampler = av.AudioResampler(format="fltp" if keep_channels else "flt", layout=layout, rate=SAMPLE_RATE)
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        for frame in frames:
            for out in resampler.resample(frame):
                yield _planes(out, keep_channels)
    for out in resampler.resample(None):
        yield _planes(out, keep_channels)


def decode(
    data: bytes | bytearray | memoryview,
    keep_channels: bool = False,
    *,
    max_seconds: float | None = None,
    reserve: Callable[[int], None] = lambda nbytes: None,
) -> DecodedAudio:
    """Decode a whole recording at once; video files yield their first audio track.

    With keep_channels, each channel is also kept separately (for one-speaker-per-channel
    diarization); `samples` is then their average. Decoding stops with TooLong past `max_seconds`,
    and every allocation of decoded samples is first passed to `reserve` (bytes), which may refuse:
    a small file that decodes to hours of audio (a decompression bomb) is stopped by either.
    Recognition reads recordings through `AudioStream` instead, a window at a time.
    """
    container = _open(data)
    max_samples = int((max_seconds or 10**9) * SAMPLE_RATE)
    with container:
        stream = _audio_stream(container)
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        had_video = bool(container.streams.video)
        rows = stream.codec_context.layout.nb_channels if keep_channels and stream.codec_context.layout else 1
        decoded = _Growing(rows, reserve, max_samples)
        try:
            for block in _blocks(container, stream, keep_channels):
                decoded.add(block)
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
            raise AudioError("No audio could be decoded from the file; it may be truncated or damaged.")
        return DecodedAudio(samples, container.format.name, codec, had_video, channels)


@dataclass(frozen=True)
class Window:
    offset: float  # seconds from the start of the recording
    samples: np.ndarray  # float32 mono; a view that is valid until the next window is asked for
    last: bool


class AudioStream:
    """A recording decoded a window at a time, so a long recording's decoded samples never exist whole.

    Memory is one window buffer (reserved through `reserve` as it grows) and the compressed bytes, whatever the
    length: an hour of audio as float32 is 230 MB, a five-minute window 19 MB. Windows end at the
    quietest moment of their last QUIET_SEARCH seconds, so a word is not cut in two; the audio after
    the cut starts the next window. Opening checks the file (not audio, no audio track) at once, as
    `decode` does; decoding errors and TooLong come while iterating.
    """

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        *,
        window_seconds: float = 300.0,
        max_seconds: float | None = None,
        reserve: Callable[[int], None] = lambda nbytes: None,
    ) -> None:
        if window_seconds < 2 * QUIET_SEARCH:
            raise ValueError(f"window_seconds must be at least {2 * QUIET_SEARCH:g}")
        self.data = data
        self.window = int(window_seconds * SAMPLE_RATE)
        self.max_samples = int((max_seconds or 10**9) * SAMPLE_RATE)
        self.reserve = reserve
        with _open(data) as container:
            stream = _audio_stream(container)
            self.container = container.format.name
            self.codec = stream.codec_context.name if stream.codec_context else "unknown"
            self.had_video = bool(container.streams.video)
            self.declared_seconds = container.duration / 1_000_000 if container.duration else None
        # The first buffer is paid for now, so a recording that cannot get even that is refused before
        # its job says it is transcribing.
        self._initial = min(self.window, SAMPLE_RATE * 10)
        reserve(self._initial * 4)
        self._prepaid = True
        self.decoded = 0  # samples handed out so far, and the total once the last window is out
        self.decode_seconds = 0.0  # wall time spent decoding (not in the caller's work between windows)
        self._read_fraction = 0.0

    @property
    def seconds(self) -> float:
        return self.decoded / SAMPLE_RATE

    def expected_seconds(self) -> float | None:
        """The recording's length for progress: the container's own figure, else an estimate from the
        share of the bytes read so far; exact once the last window is out."""
        if self.declared_seconds:
            return max(self.declared_seconds, self.seconds)
        if self._read_fraction > 0.05:
            return self.seconds / self._read_fraction
        return None

    def __iter__(self) -> Iterator[Window]:
        started = time.perf_counter()
        buffer_io = io.BytesIO(self.data)
        container = av.open(buffer_io, mode="r", metadata_errors="ignore")
        # The buffer grows to the window as samples come (a short recording reserves little), each
        # growth paid for through `reserve` first.
        capacity = self._initial
        if self._prepaid:
            self._prepaid = False
        else:
            self.reserve(capacity * 4)
        buffer = np.empty(capacity, np.float32)
        filled = 0
        offset = 0  # samples before buffer[0]
        with container:
            blocks = _blocks(container, _audio_stream(container), keep_channels=False)
            while True:
                try:
                    block = next(blocks, None)
                except av.error.FFmpegError as exc:
                    if offset + filled == 0:
                        raise AudioError(
                            f"The audio could not be decoded; the file may be damaged (detail: {_short(exc)})."
                        ) from None
                    block = None  # keep what came before the damage, as `decode` does
                if block is None:
                    break
                while block.size:
                    if filled == capacity < self.window:
                        grown = min(self.window, int(capacity * 1.5))
                        self.reserve((grown - capacity) * 4)
                        buffer = np.concatenate([buffer, np.empty(grown - capacity, np.float32)])
                        capacity = grown
                    take = min(block.size, capacity - filled)
                    if offset + filled + take > self.max_samples:
                        raise TooLong(
                            "The recording is longer than this appliance accepts "
                            f"({_hours(self.max_samples / SAMPLE_RATE)}). Split it into parts and upload them one by one."
                        )
                    buffer[filled : filled + take] = block[:take]
                    filled += take
                    block = block[take:]
                    if filled == self.window:
                        cut = quiet_cut(buffer, self.window - int(QUIET_SEARCH * SAMPLE_RATE), self.window)
                        self._read_fraction = buffer_io.tell() / max(len(self.data), 1)
                        self.decoded = offset + cut
                        self.decode_seconds += time.perf_counter() - started
                        yield Window(offset / SAMPLE_RATE, buffer[:cut], last=False)
                        started = time.perf_counter()
                        buffer[: filled - cut] = buffer[cut:filled]
                        filled -= cut
                        offset += cut
        if offset + filled == 0:
            raise AudioError("No audio could be decoded from the file; it may be truncated or damaged.")
        self.decoded = offset + filled
        self._read_fraction = 1.0
        self.decode_seconds += time.perf_counter() - started
        yield Window(offset / SAMPLE_RATE, buffer[:filled], last=True)


QUIET_SEARCH = 20.0  # seconds at a window's end searched for the quietest moment to cut at
QUIET_SPAN = 0.4  # the length of audio whose loudness is compared (a pause between words or sentences)


def quiet_cut(samples: np.ndarray, lo: int, hi: int) -> int:
    """The sample index in [lo, hi) at the middle of the quietest QUIET_SPAN there: where speech pauses.

    Loudness is the mean energy over 20 ms frames, averaged over the span; ties go to the later cut.
    """
    frame = SAMPLE_RATE // 50
    lo, hi = max(0, lo), min(len(samples), hi)
    count = (hi - lo) // frame
    span = max(1, int(QUIET_SPAN * 50))
    if count <= span:
        return hi
    frames = samples[lo : lo + count * frame].reshape(count, frame)
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64)
    sums = np.convolve(energy, np.ones(span), mode="valid")
    best = len(sums) - 1 - int(np.argmin(sums[::-1]))
    return lo + (best + span // 2) * frame


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
