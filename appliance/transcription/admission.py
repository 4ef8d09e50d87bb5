"""Admission of new jobs: the per-user and per-key limits on jobs in flight and the queue cap, decided
atomically before an upload's body is read.

The decision used to be a count read from the database before the upload and a job row written after
it, so eight uploads sent at once all saw "0 in flight" and were all accepted. Now a slot is taken
under one lock (uploads in progress counted in memory, jobs already queued or running counted in the
database) and handed to the job row when it is written, in the same critical section; a refused or
abandoned upload gives its slot back. One process serves the appliance, so a process lock is the
transaction that matters.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils


def N_(message: str) -> str:
    """Marks a refusal's message for the UI's catalogs (scripts/i18n-update); the web layer translates it
    for a person from `Refused.template` and `Refused.values` (appliance/web/errors.py)."""
    return message


class Refused(Exception):
    """No slot: `status` (429 for a personal limit, 503 for the full queue) and a message for the caller:
    the English (`str()`), and its marked template with its values."""

    def __init__(self, status: int, template: str, **values: object) -> None:
        super().__init__(template % values if values else template)
        self.status, self.template, self.values = status, template, values


@dataclass(frozen=True)
class Limits:
    per_user: int
    per_key: int
    queue: int


class Slot:
    """One upload's place, from before its first byte is read until its job row exists (or it fails)."""

    def __init__(self, gate: JobGate, names: list[str]) -> None:
        self._gate = gate
        self._names = names
        self._held = True

    def admit(self, create: Callable[[], Any]) -> Any:
        with self._gate._lock:
            result = create()
            self._gate._uploading.subtract(self._names)
            self._held = False
        return result

    def release(self) -> None:
        with self._gate._lock:
            if self._held:
                self._gate._uploading.subtract(self._names)
                self._held = False


class JobGate:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._uploading: Counter[str] = Counter()  # "user:<id>", "key:<id>", "queue" -> uploads in progress

    def _in_flight(self, db: sqlite_utils.Database, user_id: str, key_id: str | None) -> tuple[int, int, int]:
        row = next(
            iter(
                db.query(
                    "SELECT sum(user_id = ?) AS user_jobs, sum(api_key_id IS NOT NULL AND api_key_id = ?) AS key_jobs, "
                    "sum(state = 'queued') AS queued FROM jobs WHERE state IN ('queued', 'running')",
                    [user_id, key_id],
                )
            )
        )
        return int(row["user_jobs"] or 0), int(row["key_jobs"] or 0), int(row["queued"] or 0)

    def reserve(self, db: sqlite_utils.Database, user_id: str, key_id: str | None) -> Slot:
        """Take a slot or raise Refused (run off the event loop: it reads the jobs table). Then call
        `slot.admit(create_job)`: the job row is written while the slot is still held, and the slot
        turns into that row. `slot.release()` on every way out gives back a slot that was not admitted
        (a refused or failed upload, a client that went away)."""
        names = [f"user:{user_id}", "queue"] + ([f"key:{key_id}"] if key_id else [])
        with self._lock:
            user_jobs, key_jobs, queued = self._in_flight(db, user_id, key_id)
            if user_jobs + self._uploading[names[0]] >= self.limits.per_user:
                raise Refused(
                    429,
                    N_("You already have %(count)s jobs waiting or running. Please wait for one to finish."),
                    count=self.limits.per_user,
                )
            if key_id and key_jobs + self._uploading[names[2]] >= self.limits.per_key:
                raise Refused(
                    429,
                    N_("This API key already has %(count)s jobs waiting or running. Please wait for one to finish."),
                    count=self.limits.per_key,
                )
            if queued + self._uploading["queue"] >= self.limits.queue:
                raise Refused(503, N_("The queue is full. Please retry shortly."))
            self._uploading.update(names)
        return Slot(self, names)

    def uploading(self) -> int:
        with self._lock:
            return self._uploading["queue"]
