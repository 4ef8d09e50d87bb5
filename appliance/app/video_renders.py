"""Video renders in the background: subtitles on a video the user sent, with progress, cancel and a result
held in memory until it is downloaded or its time is up.

Nothing is stored: the render state lives in this object (a restart forgets it, as the video was never
kept), the video's bytes and the result are counted against the same memory cap as uploaded audio
(`AudioVault`), and at most `max_running` renders run at once (each takes a CPU core to re-encode).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.core import memory
from appliance.core.clock import new_id
from appliance.transcription.jobs import AudioVault, Upload, VaultFull
from appliance.transcripts.exports import Document, safe_stem
from appliance.transcripts.exports.video import BadVideo, Stopped, VideoOptions, probe, render

log = logging.getLogger(__name__)

STATES = ("running", "done", "failed", "cancelled")
TOO_LARGE = "The finished video would not fit in the memory this appliance sets aside. Try a shorter video, or later."


class RendersBusy(Exception):
    """As many renders as allowed are running; the caller should retry later."""


class RenderGone(Exception):
    """No such render for this person (never started, someone else's, discarded or expired)."""


class NotReady(Exception):
    """The render has not finished (or failed); the message says which."""


@dataclass
class Render:
    id: str
    owner: str  # the user who started it: the only one who sees it
    transcript_id: str
    options: VideoOptions
    filename: str  # what the download is called
    state: str = "running"
    progress: float = 0.0
    error: str | None = None
    size_bytes: int = 0
    expires_at: float | None = None  # monotonic clock, once done
    result: bytes | None = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


class _CountedSink(io.BytesIO):
    """The result buffer: each byte it grows by is reserved in the vault first, so a render that would
    outgrow the memory cap fails instead of exhausting the machine."""

    def __init__(self, grow: Callable[[int], None]) -> None:
        super().__init__()
        self._grow = grow
        self._size = 0
        self.refused = False  # FFmpeg reports the refusal as its own error: this says what it was

    def write(self, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        end = self.tell() + view.nbytes
        if end > self._size:
            try:
                self._grow(end - self._size)
            except VaultFull:
                self.refused = True
                raise
            self._size = end
        return super().write(view)


class VideoRenders:
    def __init__(
        self, vault: AudioVault, max_running: int, keep_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.vault = vault
        self.max_running = max_running
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._renders: dict[str, Render] = {}
        self._lock = threading.Lock()

    def running(self) -> int:
        with self._lock:
            return sum(1 for r in self._renders.values() if r.state == "running")

    def has_room(self) -> bool:
        return self.running() < self.max_running

    def start(self, owner: str, doc: Document, upload: Upload, options: VideoOptions) -> Render:
        """Take the upload (its memory reservation moves to the render) and start rendering in a thread.
        Raises BadVideo (the upload is given back) for a file that is not a readable video."""
        try:
            probe(upload.data())
        except BadVideo:
            upload.discard()
            raise
        render_id = new_id()
        item = Render(render_id, owner, doc.id, options, f"{safe_stem(doc)}.subtitled.{options.extension}")
        with self._lock:
            if sum(1 for r in self._renders.values() if r.state == "running") >= self.max_running:
                upload.discard()
                raise RendersBusy()
            self._renders[render_id] = item
        self.vault.put(render_id, upload)
        threading.Thread(target=self._run, args=(item, doc), name=f"video-{render_id[:8]}", daemon=True).start()
        return item

    def get(self, owner: str, render_id: str) -> Render:
        self._expire()
        with self._lock:
            item = self._renders.get(render_id)
        if item is None or item.owner != owner:
            raise RenderGone()
        return item

    def result(self, owner: str, render_id: str) -> tuple[Render, bytes]:
        item = self.get(owner, render_id)
        if item.state != "done" or item.result is None:
            raise NotReady(item.error or f"The video is not ready yet ({round(item.progress * 100)}% done).")
        return item, item.result

    def discard(self, owner: str, render_id: str) -> Render:
        """Cancel a running render or drop a finished one's result."""
        item = self.get(owner, render_id)
        item.cancel.set()
        if item.state != "running":
            self._drop(item)
        return item

    def _drop(self, item: Render) -> None:
        with self._lock:
            self._renders.pop(item.id, None)
        item.result = None
        self.vault.release(item.id)
        memory.release()

    def _expire(self) -> None:
        now = self.clock()
        with self._lock:
            old = [r for r in self._renders.values() if r.expires_at is not None and r.expires_at <= now]
        for item in old:
            self._drop(item)

    def _run(self, item: Render, doc: Document) -> None:
        data = self.vault.get(item.id) or b""
        sink = _CountedSink(lambda n: self.vault.reserve_decoded(item.id, n))

        def progress(share: float) -> None:
            item.progress = share

        result: bytes | None = None
        state, error = "done", None
        try:
            render(doc, data, item.options, sink, progress=progress, stop=item.cancel.is_set)
            result = sink.getvalue()
        except Exception as exc:
            state = "failed"
            if sink.refused:  # whatever FFmpeg made of it
                error = TOO_LARGE
            elif isinstance(exc, Stopped):
                state = "cancelled"
            elif isinstance(exc, BadVideo):
                error = str(exc)
            else:
                log.exception("video render %s failed", item.id)
                error = "The video could not be rendered (an internal error; the log has details)."
        finally:
            del data
            sink.close()
        # The video itself is no longer needed: give its memory back, keep the result's reservation.
        self.vault.release(item.id)
        if result is not None:
            try:
                self.vault.reserve_decoded(item.id, len(result))
            except VaultFull:
                result, state, error = None, "failed", TOO_LARGE
        memory.release()
        # Published once the memory is settled, the state last: whoever sees it end sees it all.
        item.expires_at = self.clock() + self.keep_seconds
        item.result, item.size_bytes, item.error = result, len(result or b""), error
        if result is not None:
            item.progress = 1.0
        item.state = state
        # A failed or cancelled render's state stays readable for a while too, then everything goes.
        item.cancel.wait(self.keep_seconds)  # set by a download's end or a discard
        self._drop(item)
