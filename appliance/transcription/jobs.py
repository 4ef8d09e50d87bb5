"""Jobs: the queue table (metadata only) and the AudioVault that holds upload bytes in RAM."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.core.clock import new_id, now

STATES = ("queued", "running", "done", "failed", "cancelled")
TERMINAL = frozenset({"done", "failed", "cancelled"})
RESTART_REASON = (
    "The appliance restarted while this job was waiting or running. Audio is never kept on disk, "
    "so it could not be resumed: please upload the file again."
)


# --------------------------------------------------------------------------- AudioVault


class VaultFull(Exception):
    """Too much audio is already held in memory; the client should retry later."""


class UploadTooLarge(Exception):
    """One upload is over the per-file cap."""


class AudioVault:
    """Upload bytes in RAM, keyed by job id, under a cap on the total held at once.

    Bytes enter through an `Upload` (counted chunk by chunk while the request streams in), are
    taken by the worker, and are released when the job ends, whatever its end.
    """

    def __init__(self, capacity: int, max_upload: int) -> None:
        self.capacity = capacity
        self.max_upload = max_upload
        self._used = 0
        self._items: dict[str, bytes] = {}
        # Options that must never reach the database (a private job's prompt and custom vocabulary):
        # held here beside the audio, and dropped with it.
        self._secrets: dict[str, dict[str, Any]] = {}
        self._decoded: dict[str, int] = {}  # bytes of decoded samples per running job
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def has_room(self, nbytes: int = 0) -> bool:
        with self._lock:
            return self._used + nbytes <= self.capacity

    def _reserve(self, nbytes: int) -> None:
        with self._lock:
            if self._used + nbytes > self.capacity:
                raise VaultFull()
            self._used += nbytes

    def _unreserve(self, nbytes: int) -> None:
        with self._lock:
            self._used -= nbytes

    def upload(self) -> Upload:
        return Upload(self)

    def put(self, job_id: str, upload: Upload, secrets: dict[str, Any] | None = None) -> None:
        """Hand an upload's bytes (and any options kept out of the database) to a job; the reservation
        moves with them."""
        data = upload.handover()
        with self._lock:
            self._items[job_id] = data
            if secrets:
                self._secrets[job_id] = dict(secrets)

    def get(self, job_id: str) -> bytes | None:
        with self._lock:
            return self._items.get(job_id)

    def reserve_decoded(self, job_id: str, nbytes: int) -> None:
        """Count decoded samples against the same cap as uploads (released with the job). A recording
        that decodes to more than there is room for fails its job instead of exhausting memory."""
        with self._lock:
            if self._used + nbytes > self.capacity:
                raise VaultFull()
            self._used += nbytes
            self._decoded[job_id] = self._decoded.get(job_id, 0) + nbytes

    def secrets(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._secrets.get(job_id, {}))

    def release(self, job_id: str) -> None:
        """Drop a job's audio and secrets; called when the job ends (done, failed or cancelled)."""
        with self._lock:
            self._secrets.pop(job_id, None)
            self._used -= self._decoded.pop(job_id, 0)
            data = self._items.pop(job_id, None)
            if data is not None:
                self._used -= len(data)

    def __contains__(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._items


class Upload:
    """Bytes of one upload as they stream in; each chunk is counted against both caps at once.

    Until `handover()` the upload owns its reservation: `discard()` (a refused or failed upload)
    gives it back.
    """

    def __init__(self, vault: AudioVault) -> None:
        self.vault = vault
        self.size = 0
        self._chunks: list[bytes] = []
        self._open = True

    def append(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.size + len(chunk) > self.vault.max_upload:
            self.discard()
            raise UploadTooLarge()
        try:
            self.vault._reserve(len(chunk))
        except VaultFull:
            self.discard()
            raise
        self._chunks.append(bytes(chunk))
        self.size += len(chunk)

    def data(self) -> bytes:
        """The whole upload as one bytes object (joined once, then kept)."""
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def handover(self) -> bytes:
        data = self.data() if self.size else b""
        self._chunks = []
        self._open = False
        return data

    def discard(self) -> None:
        if self._open:
            self._chunks = []
            self.vault._unreserve(self.size)
            self.size = 0
            self._open = False


# --------------------------------------------------------------------------- jobs table


@dataclass(frozen=True)
class JobRequest:
    filename: str
    size_bytes: int
    content_type: str | None
    models: list[str]
    options: dict[str, Any]
    priority: int = 0
    user_id: str | None = None
    workspace_id: str | None = None
    api_key_id: str | None = None


def create(db: sqlite_utils.Database, request: JobRequest) -> dict[str, Any]:
    job_id = new_id()
    row = {
        "id": job_id,
        "state": "queued",
        "priority": request.priority,
        "filename": request.filename,
        "size_bytes": request.size_bytes,
        "content_type": request.content_type,
        "models": json.dumps(request.models),
        "options": json.dumps(request.options),
        "progress": 0.0,
        "transcript_ids": "[]",
        "cancel_requested": 0,
        "created_at": now(),
        "user_id": request.user_id,
        "workspace_id": request.workspace_id,
        "api_key_id": request.api_key_id,
    }
    db.table("jobs").insert(row)
    stored = get(db, job_id)
    assert stored is not None  # just written, in this connection
    return stored


def get(db: sqlite_utils.Database, job_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
    return rows[0] if rows else None


def claim_next(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """Take the most urgent queued job; one conditional UPDATE, so two workers never share a job."""
    rows = list(
        db.query(
            """
            UPDATE jobs SET state = 'running', started_at = :now, stage = 'decoding'
            WHERE id = (
                SELECT id FROM jobs WHERE state = 'queued'
                ORDER BY priority DESC, created_at, rowid LIMIT 1
            ) AND state = 'queued'
            RETURNING *
            """,
            {"now": now()},
        )
    )
    return rows[0] if rows else None


def report_progress(
    db: sqlite_utils.Database, job_id: str, *, stage: str, progress: float, duration: float | None, eta: float | None
) -> None:
    db.execute(
        "UPDATE jobs SET stage = ?, progress = ?, duration = COALESCE(?, duration), eta_seconds = ? "
        "WHERE id = ? AND state = 'running'",
        [stage, max(0.0, min(1.0, progress)), duration, eta, job_id],
    )


def finish(
    db: sqlite_utils.Database, job_id: str, state: str, *, error: str | None = None, transcript_ids: list[str] | None = None
) -> None:
    assert state in TERMINAL
    db.execute(
        """
        UPDATE jobs SET state = ?, error = ?, transcript_ids = ?, finished_at = ?, eta_seconds = NULL,
               progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END
        WHERE id = ? AND state IN ('queued', 'running')
        """,
        [state, error, json.dumps(transcript_ids or []), now(), state, job_id],
    )


def request_cancel(db: sqlite_utils.Database, job_id: str) -> dict[str, Any] | None:
    """Cancel a queued job at once; ask a running one to stop at its next checkpoint."""
    db.execute(
        "UPDATE jobs SET state = 'cancelled', finished_at = ?, error = 'Cancelled by request.' WHERE id = ? AND state = 'queued'",
        [now(), job_id],
    )
    db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", [job_id])
    return get(db, job_id)


def record_node(db: sqlite_utils.Database, job_id: str, node: str, attempts: int) -> None:
    """Cluster mode: the worker node now running the job, and which try this is (a retry is the 2nd)."""
    db.execute("UPDATE jobs SET node = ?, attempts = ? WHERE id = ?", [node, attempts, job_id])


def cancel_requested(db: sqlite_utils.Database, job_id: str) -> bool:
    rows = list(db.query("SELECT cancel_requested FROM jobs WHERE id = ?", [job_id]))
    return bool(rows and rows[0]["cancel_requested"])


def count_by_state(db: sqlite_utils.Database) -> dict[str, int]:
    return {r["state"]: r["n"] for r in db.query("SELECT state, count(*) AS n FROM jobs GROUP BY state")}


def transcription_pending(db: sqlite_utils.Database) -> bool:
    """A job is queued or running: AI summaries wait for this to be false (transcription first). Queued
    counts too, or a summary would start in the moment between one job ending and the next starting."""
    return bool(list(db.query("SELECT 1 FROM jobs WHERE state IN ('queued', 'running') LIMIT 1")))


def count_waiting(db: sqlite_utils.Database) -> int:
    return next(iter(db.query("SELECT count(*) AS n FROM jobs WHERE state = 'queued'")))["n"]


def fail_interrupted(db: sqlite_utils.Database) -> int:
    """At start-up: jobs left queued or running lost their audio with the old process."""
    cursor = db.execute(
        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE state IN ('queued', 'running')",
        [RESTART_REASON, now()],
    )
    return cursor.rowcount


def forget_if_orphaned(db: sqlite_utils.Database, job_id: str) -> None:
    """Drop an ended job's row (file name, options) once none of its transcripts is left."""
    db.execute(
        "DELETE FROM jobs WHERE id = ? AND state IN ('done', 'failed', 'cancelled') "
        "AND NOT EXISTS (SELECT 1 FROM transcripts WHERE job_id = ?)",
        [job_id, job_id],
    )


def document(row: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it."""
    transcript_ids = json.loads(row["transcript_ids"])
    doc = {
        "id": row["id"],
        "job_id": row["id"],
        "state": row["state"],
        "stage": row["stage"],
        "progress": round(row["progress"], 4),
        "eta_seconds": None if row["eta_seconds"] is None else round(row["eta_seconds"], 1),
        "duration": row["duration"],
        "priority": row["priority"],
        "filename": row["filename"],
        "size_bytes": row["size_bytes"],
        "models": json.loads(row["models"]),
        "options": json.loads(row["options"]),
        "error": row["error"],
        "cancel_requested": bool(row["cancel_requested"]),
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "transcript_id": transcript_ids[0] if transcript_ids else None,
        "transcript_ids": transcript_ids,
        "workspace_id": row.get("workspace_id"),
        "node": row.get("node"),  # cluster mode: the worker node that ran it
        "attempts": row.get("attempts") or 0,
    }
    return doc


def unfinished(db: sqlite_utils.Database, workspace_ids: list[str], limit: int = 50) -> list[dict[str, Any]]:
    """Queued and running jobs in these workspaces, oldest first (the library's "in progress" list)."""
    if not workspace_ids:
        return []
    marks = ", ".join("?" for _ in workspace_ids)
    return [
        document(r)
        for r in db.query(
            f"SELECT * FROM jobs WHERE state IN ('queued', 'running') AND workspace_id IN ({marks}) "
            "ORDER BY created_at, rowid LIMIT ?",
            [*workspace_ids, limit],
        )
    ]
