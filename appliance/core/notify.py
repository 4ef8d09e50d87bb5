"""Wake async watchers (server-sent events) when a worker thread changes a job, without polling."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable

MAX_TRACKED = 10_000  # jobs whose change counter is kept


class JobNotifier:
    """Worker threads call `changed(job_id)`; event-loop code awaits `wait(job_id, timeout)`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)
        self._listeners: list[Callable[[str], None]] = []
        # A counter per job, so a watcher that was busy when a change came (reading the row, sending an
        # event) learns of it at its next wait instead of sleeping through it. Bounded: old jobs drop off.
        self._versions: OrderedDict[str, int] = OrderedDict()

    def listen(self, callback: Callable[[str], None]) -> None:
        """Also call `callback(job_id)` on every change, in the changing thread: it must not block."""
        with self._lock:
            self._listeners.append(callback)

    def version(self, job_id: str) -> int:
        with self._lock:
            return self._versions.get(job_id, 0)

    def changed(self, job_id: str) -> None:
        with self._lock:
            self._versions[job_id] = self._versions.get(job_id, 0) + 1
            self._versions.move_to_end(job_id)
            while len(self._versions) > MAX_TRACKED:
                self._versions.popitem(last=False)
            waiters = list(self._waiters.get(job_id, ()))
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job_id)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed; its watcher is gone
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: str, timeout: float, since: int | None = None) -> bool:
        """True if the job changed before the timeout, or (with `since`, a `version()` read earlier) had
        already changed since then."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[job_id].add(entry)
            if since is not None and self._versions.get(job_id, 0) != since:
                entry[1].set()
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters[job_id].discard(entry)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]
