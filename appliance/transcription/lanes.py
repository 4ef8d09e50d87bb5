"""Lanes: how many recognitions may run at once on a model's replicas, shared by the jobs in flight.

A model is loaded once with one replica per lane (CTranslate2's `num_workers`, one thread each on a CPU;
one per GPU), and there is one job thread per lane. Under load every lane has its job, which is the
plan that transcribes the most audio per second. A job running alone would leave the other lanes idle,
so it borrows them: the window it is about to recognise is split at quiet moments into pieces that run
side by side, one per lane it holds. Borrowing never waits and lasts one window, so a job that arrives
later finds its own lane at once and shares within a window's time; the running job is never restarted
and no second copy of the model is made (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import threading


class Lanes:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._busy = 0  # one per job in flight, plus what is lent out
        self._lock = threading.Lock()

    def enter(self) -> None:
        """A job starts on its own lane (job threads never outnumber lanes, so there is always one)."""
        with self._lock:
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1

    def borrow(self, wanted: int) -> int:
        """Take up to `wanted` idle lanes, without waiting; returns how many were taken."""
        with self._lock:
            taken = max(0, min(wanted, self.capacity - self._busy))
            self._busy += taken
            return taken

    def give_back(self, count: int) -> None:
        with self._lock:
            self._busy -= count

    @property
    def idle(self) -> int:
        with self._lock:
            return max(0, self.capacity - self._busy)
