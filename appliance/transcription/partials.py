"""Text decoded so far by running jobs, in memory only, for clients that stream a job as it happens.

Only jobs someone is watching collect text (a stream registers before it waits), so a job nobody streams
keeps no second copy of its words; a watched job's text is dropped when the stream ends. Private jobs
never collect any (the worker does not offer their text).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_PIECES = 100_000  # a bound per job (about 30 hours of speech in Whisper segments), never reached in practice


class PartialTexts:
    """Worker threads `add` segment texts; the event loop `read`s them from an offset."""

    def __init__(self, on_change: Callable[[str], None] = lambda job_id: None) -> None:
        self._lock = threading.Lock()
        self._texts: dict[str, list[str]] = {}
        self._on_change = on_change

    def watch(self, job_id: str) -> None:
        with self._lock:
            self._texts.setdefault(job_id, [])

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._texts.pop(job_id, None)

    def add(self, job_id: str, text: str) -> None:
        with self._lock:
            pieces = self._texts.get(job_id)
            if pieces is None or len(pieces) >= MAX_PIECES:
                return
            pieces.append(text)
        self._on_change(job_id)

    def read(self, job_id: str, start: int) -> list[str]:
        with self._lock:
            return list(self._texts.get(job_id, ())[start:])
