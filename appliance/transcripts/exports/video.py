"""Subtitles on a video the user sends again (the appliance keeps no media): burned into the picture
(an MP4 re-encoded frame by frame) or muxed as a subtitle stream (MP4 mov_text, MKV SRT or ASS).

Everything happens in memory: the video is read from bytes and the result written to a caller's
file-like sink (a BytesIO), never to a file. PyAV (FFmpeg, already installed for faster-whisper) and
Pillow are imported when a render starts, not with the exports.
"""

from __future__ import annotations

import bisect
import io
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from appliance.transcripts.exports.document_formats import FONT_DIRS
from appliance.transcripts.exports.model import Document, ExportOptions, OptionsError
from appliance.transcripts.exports.subtitles import build_cues

KINDS = {  # kind: (container format, file extension, media type)
    "burn": ("mp4", "mp4", "video/mp4"),
    "mp4": ("mp4", "mp4", "video/mp4"),  # soft: a mov_text stream players can turn on and off
    "mkv-srt": ("matroska", "mkv", "video/x-matroska"),
    "mkv-ass": ("matroska", "mkv", "video/x-matroska"),
}
SIZES = {"small": 0.045, "medium": 0.06, "large": 0.08}  # text height as a share of the picture's height
POSITIONS = ("bottom", "top")
# Audio codecs an MP4 carries as they are; anything else (PCM from a camera's MOV, Vorbis) becomes AAC.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
MAX_PIXELS = 3840 * 2160  # 4K: a larger picture would be a different product (and gigabytes of frames)
SUBTITLE_TIME_BASE = Fraction(1, 1000)
NOT_A_VIDEO = "The file is not a video this appliance can read. Send an MP4, MOV, MKV or WebM file."
NO_PICTURE = "The file has no video picture (is it an audio recording?). Send the video file itself."


class BadVideo(ValueError):
    """The upload is not a video this appliance can read; the message says what to do."""


class Stopped(Exception):
    """The render was cancelled."""


@dataclass(frozen=True)
class VideoOptions:
    kind: str = "burn"  # burn | mp4 | mkv-srt | mkv-ass
    size: str = "medium"  # small | medium | large
    position: str = "bottom"  # bottom | top
    speakers: bool = True  # "Name: " before each turn's first cue
    max_chars_per_line: int = 42

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> VideoOptions:
        """From form fields or CLI flags; unknown names and bad values are refused with the allowed ones."""
        values: dict[str, Any] = {}
        for name, value in raw.items():
            text = str(value).strip()
            if name == "kind":
                if text not in KINDS:
                    raise OptionsError(f"kind must be one of {', '.join(KINDS)}")
                values[name] = text
            elif name == "size":
                if text not in SIZES:
                    raise OptionsError(f"size must be one of {', '.join(SIZES)}")
                values[name] = text
            elif name == "position":
                if text not in POSITIONS:
                    raise OptionsError(f"position must be one of {', '.join(POSITIONS)}")
                values[name] = text
            elif name == "speakers":
                if text.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise OptionsError(f"speakers must be true or false, not {text!r}")
                values[name] = text.lower() in {"1", "true", "yes", "on"}
            elif name == "max_chars_per_line":
                if not text.isdigit() or not 10 <= int(text) <= 200:
                    raise OptionsError("max_chars_per_line must be a whole number from 10 to 200")
                values[name] = int(text)
            else:
                raise OptionsError(f"unknown video option {name!r}; known: kind, max_chars_per_line, position, size, speakers")
        return cls(**values)

    @property
    def extension(self) -> str:
        return KINDS[self.kind][1]

    @property
    def media_type(self) -> str:
        return KINDS[self.kind][2]


@dataclass(frozen=True)
class Caption:
    start: float
    end: float
    lines: tuple[str, ...]


def captions(doc: Document, options: VideoOptions) -> list[Caption]:
    """The subtitle exporters' cues (same line length, same speaker prefix on a turn's first cue)."""
    rules = replace(ExportOptions(), speakers=options.speakers, max_chars_per_line=options.max_chars_per_line)
    cues = build_cues(doc, rules, prefix_names=True)
    out = []
    for index, cue in enumerate(cues):
        shown = cue.text
        if cue.speaker and not (index > 0 and cues[index - 1].speaker == cue.speaker):
            shown = f"{cue.speaker}: {shown}"
        lines = textwrap.wrap(shown, rules.max_chars_per_line, break_long_words=True) or [shown]
        out.append(Caption(cue.start, cue.end, tuple(lines)))
    return out


def probe(video: bytes) -> None:
    """Refuse, before any work starts, what is not a readable video (only the header is read)."""
    import av

    try:
        source = av.open(io.BytesIO(video), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise BadVideo(NOT_A_VIDEO) from None
    with source:
        if not source.streams.video:
            raise BadVideo(NO_PICTURE)


def render(
    doc: Document,
    video: bytes,
    options: VideoOptions,
    sink: IO[bytes],
    *,
    progress: Callable[[float], None] = lambda _f: None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Write the video with `doc`'s subtitles to `sink`. Raises BadVideo, or Stopped when `stop()` says so."""
    import av

    cues = captions(doc, options)
    try:
        source = av.open(io.BytesIO(video), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise BadVideo(NOT_A_VIDEO) from None
    try:
        if not source.streams.video:
            raise BadVideo(NO_PICTURE)
        fmt = KINDS[options.kind][0]
        target = av.open(sink, mode="w", format=fmt)
        try:
            if options.kind == "burn":
                _burn(source, target, cues, options, progress, stop)
            else:
                _mux(source, target, cues, options, progress, stop)
        except av.error.FFmpegError as exc:
            raise BadVideo(f"The video could not be read to its end ({exc.strerror or exc}). Is the file complete?") from None
        finally:
            target.close()
    finally:
        source.close()
    progress(1.0)


def _duration(source: Any) -> float:
    if source.duration:
        return float(source.duration / 1_000_000)
    stream = source.streams.video[0]
    return float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0


def _tick(progress: Callable[[float], None], stop: Callable[[], bool], at: float, total: float) -> None:
    if stop():
        raise Stopped()
    if total > 0:
        progress(min(max(at / total, 0.0), 0.99))


def _video_codec() -> str:
    import av

    # H.264 where this FFmpeg build has x264; MPEG-4 Part 2 otherwise (every build has it, all players read it).
    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except av.codec.codec.UnknownCodecError:
        return "mpeg4"


def _burn(source: Any, target: Any, cues: list[Caption], options: VideoOptions, progress: Any, stop: Any) -> None:
    import av

    vin = source.streams.video[0]
    ain = source.streams.audio[0] if source.streams.audio else None
    width, height = vin.codec_context.width, vin.codec_context.height
    if not width or not height or width * height > MAX_PIXELS:
        raise BadVideo(f"The picture is {width}×{height}; videos up to 3840×2160 are supported.")
    codec = _video_codec()
    vout = target.add_stream(codec, rate=vin.average_rate or vin.guessed_rate or 25)
    vout.width, vout.height = width - width % 2, height - height % 2  # 4:2:0 needs even sizes
    vout.pix_fmt = "yuv420p"
    vout.codec_context.time_base = vin.time_base
    if codec == "libx264":
        vout.options = {"preset": "veryfast", "crf": "20"}
    else:
        vout.bit_rate = max(1_000_000, width * height * 4)  # about what crf 20 gives x264, for MPEG-4's weaker coding
    aout = None
    if ain is not None:
        if ain.codec_context.name in MP4_AUDIO:
            aout = target.add_stream_from_template(ain)
        else:
            aout = target.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
    overlays = _Overlays(cues, vout.width, vout.height, options)
    total = _duration(source)
    streams = [vin] if ain is None else [vin, ain]
    for packet in source.demux(*streams):
        if packet.stream is ain and aout is not None:
            if ain.codec_context.name in MP4_AUDIO:
                if packet.dts is not None:
                    packet.stream = aout
                    target.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    target.mux(aout.encode(frame))
            continue
        for frame in packet.decode():
            at = float(frame.time or 0.0)
            _tick(progress, stop, at, total)
            picture = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            overlay = overlays.at(at)
            if overlay is not None:
                if picture is frame:  # the decoder still reads this picture (later frames refer to it): copy
                    picture = _copy(av, frame)
                overlay.blend(picture)
            picture.pts, picture.time_base = frame.pts, frame.time_base
            target.mux(vout.encode(picture))
    target.mux(vout.encode(None))
    if aout is not None and ain is not None and ain.codec_context.name not in MP4_AUDIO:
        target.mux(aout.encode(None))


def _planes(frame: Any) -> list[Any]:
    """The frame's Y, U and V planes as writable arrays (the frame's own memory, without line padding)."""
    import numpy as np

    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes]


def _copy(av: Any, frame: Any) -> Any:
    import numpy as np

    copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for target, source in zip(_planes(copy), _planes(frame), strict=True):
        np.copyto(target, source)
    return copy


class _Overlays:
    """Each cue drawn once (white text on a translucent box) and blended into every frame it covers."""

    def __init__(self, cues: list[Caption], width: int, height: int, options: VideoOptions) -> None:
        self.cues, self.width, self.height, self.options = cues, width, height, options
        self.starts = [c.start for c in cues]  # ascending: the cue builder keeps cues in order, apart
        self._index = -1
        self._overlay: _Overlay | None = None

    def at(self, seconds: float) -> _Overlay | None:
        # Asked once a frame (90,000 times for an hour at 25 fps): a binary search, not a scan of every cue.
        index = bisect.bisect_right(self.starts, seconds) - 1
        if index >= 0 and seconds >= self.cues[index].end:
            index = -1
        if index != self._index:
            self._index = index
            self._overlay = None if index < 0 else self._draw(self.cues[index])
        return self._overlay

    def _draw(self, cue: Caption) -> _Overlay:
        from PIL import Image, ImageDraw

        size = max(10, round(self.height * SIZES[self.options.size]))
        font = _font(size)
        draw = ImageDraw.Draw(Image.new("LA", (1, 1)))
        boxes = [draw.textbbox((0, 0), line, font=font) for line in cue.lines]
        line_height = round(size * 1.25)
        pad = max(2, size // 3)
        text_width = min(round(max(b[2] - b[0] for b in boxes)), self.width - 2 * pad)
        width = min(self.width, text_width + 2 * pad) & ~1  # even: 4:2:0 chroma covers 2×2 pixels
        height = min(self.height, line_height * len(cue.lines) + 2 * pad) & ~1
        box = Image.new("LA", (width, height), (0, 160))  # grey level and opacity
        pen = ImageDraw.Draw(box)
        for k, (line, bbox) in enumerate(zip(cue.lines, boxes, strict=True)):
            x = pad + (text_width - round(bbox[2] - bbox[0])) // 2 - round(bbox[0])
            pen.text((x, pad + k * line_height), line, font=font, fill=(255, 255))
        margin = round(self.height * 0.05)
        left = max(0, (self.width - width) // 2) & ~1
        top = (margin if self.options.position == "top" else max(0, self.height - margin - height)) & ~1
        return _Overlay(box, left, top)


class _Overlay:
    """A drawn cue blended straight into the frame's Y, U and V planes, only where its box is: no
    conversion of the whole picture to RGB and back (that took a third of the time of a 720p render)."""

    def __init__(self, box: Any, left: int, top: int) -> None:
        import numpy as np

        grey_alpha = np.asarray(box, dtype=np.float32)
        self.left, self.top = left, top
        self.alpha = grey_alpha[:, :, 1] / 255.0
        # Video levels (16 to 235); the box and text are grey, so chroma is neutral (128) wherever drawn.
        self.luma = (16.0 + grey_alpha[:, :, 0] * (219.0 / 255.0)) * self.alpha
        self.alpha_c = self.alpha.reshape(self.alpha.shape[0] // 2, 2, self.alpha.shape[1] // 2, 2).mean(axis=(1, 3))

    def blend(self, frame: Any) -> None:
        import numpy as np

        planes = _planes(frame)
        h, w = self.alpha.shape
        y = planes[0][self.top : self.top + h, self.left : self.left + w]
        y[:] = (y * (1.0 - self.alpha) + self.luma + 0.5).astype(np.uint8)
        hc, wc = self.alpha_c.shape
        for index in (1, 2):
            c = planes[index][self.top // 2 : self.top // 2 + hc, self.left // 2 : self.left // 2 + wc]
            c[:] = (c * (1.0 - self.alpha_c) + 128.0 * self.alpha_c + 0.5).astype(np.uint8)


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    for folder in FONT_DIRS:
        path = Path(folder) / "NotoSans-Regular.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    # Without the Noto fonts (fonts-noto-core) Pillow's own font still draws Latin text.
    return ImageFont.load_default(size)


ASS_HEADER = """[Script Info]
ScriptType: v4.00+
PlayResX: {width}
PlayResY: {height}
WrapStyle: 2

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Noto Sans,{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&HA0000000,0,0,0,0,100,100,0,0,3,1,0,{align},10,10,{margin},1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _ass_escape(text: str) -> str:
    # Braces start override tags and a backslash an escape in ASS: shown as typed instead.
    return text.replace("\\", "\u29f5").replace("{", "(").replace("}", ")")


def _mux(source: Any, target: Any, cues: list[Caption], options: VideoOptions, progress: Any, stop: Any) -> None:
    """Copy the picture and sound as they are and add one subtitle stream: no re-encoding."""
    import av

    keep = [s for s in (source.streams.video[:1] + source.streams.audio[:1])]
    if options.kind == "mp4":
        unfit = [s.codec_context.name for s in keep if s.type == "audio" and s.codec_context.name not in MP4_AUDIO]
        if unfit:
            raise BadVideo(f"The sound ({unfit[0]}) cannot go into an MP4 as it is: choose MKV, or burn the subtitles in.")
    copies = {}
    for stream in keep:
        try:
            copies[stream.index] = target.add_stream_from_template(stream)
        except ValueError:  # the container cannot hold this codec (VP8 in an MP4)
            what = "picture" if stream.type == "video" else "sound"
            raise BadVideo(
                f"The {what} ({stream.codec_context.name}) cannot go into an MP4 as it is: choose MKV, or burn the subtitles in."
            ) from None
    codec = {"mp4": "mov_text", "mkv-srt": "subrip", "mkv-ass": "ass"}[options.kind]
    subs = target.add_stream(codec)
    vin = source.streams.video[0]
    height = vin.codec_context.height or 720
    header = ASS_HEADER.format(
        width=vin.codec_context.width or 1280,
        height=height,
        size=max(10, round(height * SIZES[options.size])),
        align=8 if options.position == "top" else 2,
        margin=round(height * 0.05),
    )
    # The mov_text encoder builds its sample description from an ASS header; the packets below are written
    # by hand, so this is the only thing the encoder contributes.
    subs.codec_context.subtitle_header = header.encode()
    subs.codec_context.time_base = subs.time_base = SUBTITLE_TIME_BASE
    if codec == "ass":
        subs.codec_context.extradata = header.encode()
    payloads = [(cue, _payload(codec, order, cue)) for order, cue in enumerate(cues)]
    total = _duration(source)
    pending = 0
    for packet in source.demux(*keep):
        if packet.dts is None:
            continue
        at = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
        _tick(progress, stop, at, total)
        # Cues go in as their time comes, so the muxer never holds the whole film waiting for them.
        while pending < len(payloads) and payloads[pending][0].start <= at:
            target.mux(_subtitle_packet(av, subs, *payloads[pending]))
            pending += 1
        packet.stream = copies[packet.stream.index]
        target.mux(packet)
    for cue, payload in payloads[pending:]:
        target.mux(_subtitle_packet(av, subs, cue, payload))


def _payload(codec: str, order: int, cue: Caption) -> bytes:
    text = "\n".join(cue.lines)
    if codec == "mov_text":  # a 16-bit length, then the UTF-8 text (3GPP timed text)
        body = text.encode()
        return len(body).to_bytes(2, "big") + body
    if codec == "subrip":
        return text.encode()
    return f"{order},0,Default,,0,0,0,,{_ass_escape(text).replace(chr(10), chr(92) + 'N')}".encode()


def _subtitle_packet(av: Any, stream: Any, cue: Caption, payload: bytes) -> Any:
    packet = av.Packet(payload)
    packet.pts = packet.dts = round(cue.start * 1000)
    packet.duration = max(1, round((cue.end - cue.start) * 1000))
    packet.time_base = SUBTITLE_TIME_BASE
    packet.stream = stream
    return packet
