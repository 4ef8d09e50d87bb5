"""Private-transcript test helpers: the spoken canary, a scanner of every file under the data directory, a log capture."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

CANARY = "Orange giraffes painted the lighthouse in Marseille yesterday."


# What tiny.en reliably hears in espeak's voice, whatever the options ("lighthouse" sometimes comes out as "light house").
CANARY_WORDS = ("giraffe", "marseille", "yesterday")


def needles(words: tuple[str, ...] = CANARY_WORDS) -> list[bytes]:
    variants = {v for w in words for v in (w, w.upper(), w.capitalize())}
    return [v.encode(enc) for v in variants for enc in ("utf-8", "utf-16-le", "utf-16-be")]


class Scanner:
    """Reads every file under the data directory over and over while running, recording any that holds a needle."""

    def __init__(self, root: Path, needles: list[bytes]) -> None:
        self.root, self.needles = root, needles
        self.hits: set[str] = set()
        self.samples = 0
        self.files_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def scan(self) -> set[str]:
        found = set()
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath) / name
                try:
                    content = path.read_bytes()
                except OSError:
                    continue  # vanished between listing and reading
                self.files_seen.add(path.name)
                if any(n in content for n in self.needles):
                    found.add(str(path))
        self.samples += 1
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            self.hits |= self.scan()
            time.sleep(0.01)

    def __enter__(self) -> Scanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hits |= self.scan()


class LogCapture(logging.Handler):
    """Every log record of the process, at every level, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
