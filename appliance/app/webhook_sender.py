"""The thread that turns job changes into webhook deliveries and sends them, with retries.

It hears every job change from the notifier (the worker already announces them for progress streams),
queues a delivery when a job ends, and sends due deliveries over a connection the egress broker opened
(appliance/core/egress_broker.py): the server itself never creates an internet socket.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import ssl
import threading
from typing import Any

import sqlite_utils

from appliance.core.clock import now
from appliance.core.db import Databases
from appliance.core.egress_broker import Connector
from appliance.integrations import webhooks
from appliance.transcription import jobs
from appliance.transcripts import store as transcripts

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between looks at the retry schedule
TIMEOUT = 10.0
USER_AGENT = "Sotto-Webhooks/1"


class WebhookSender:
    def __init__(self, databases: Databases, connector: Connector, allowed: tuple[str, ...]) -> None:
        self.databases = databases
        self.connector = connector
        self.allowed = allowed
        self._changed: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # With no receiver an administrator allowed, no webhook can exist: no thread, no queue, no polling.
        self.enabled = bool(allowed)

    # Called by the notifier from worker threads: cheap, never blocks.
    def job_changed(self, job_id: str) -> None:
        if not self.enabled:
            return
        self._changed.put(job_id)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            try:
                with self.databases.borrowed() as db:
                    self._queue_ended_jobs(db)
                    for delivery in webhooks.due(db):
                        if self._stop.is_set():
                            return
                        self._send(db, delivery)
            except Exception:
                log.exception("webhook delivery round failed")

    def _queue_ended_jobs(self, db: sqlite_utils.Database) -> None:
        seen: set[str] = set()
        while True:
            try:
                job_id = self._changed.get_nowait()
            except queue.Empty:
                return
            if job_id in seen:
                continue
            seen.add(job_id)
            row = jobs.get(db, job_id)
            if row is None or row["state"] not in ("done", "failed"):
                continue
            data = {
                "job_id": job_id,
                "state": row["state"],
                "transcript_ids": json.loads(row["transcript_ids"] or "[]"),
                "error": row["error"] if row["state"] == "failed" else None,
                "finished_at": row["finished_at"],
            }
            webhooks.enqueue(db, row["workspace_id"], f"job.{row['state']}", job_id, data)

    def _body(self, db: sqlite_utils.Database, delivery: dict[str, Any]) -> bytes:
        data = json.loads(delivery["data"])
        if delivery["include_text"] and delivery["event"] == "job.done":
            texts = []
            for transcript_id in data.get("transcript_ids", []):
                doc = transcripts.get(db, transcript_id)
                if doc is not None and not doc.private:  # read now: a transcript deleted since is not sent
                    texts.append({"id": doc.id, "title": doc.title, "language": doc.language, "text": doc.text})
            data["transcripts"] = texts
        payload = {
            "id": delivery["id"],
            "event": delivery["event"],
            "created_at": delivery["created_at"],
            "sent_at": now(),
            "workspace_id": delivery["workspace_id"],
            "data": data,
        }
        return json.dumps(payload, ensure_ascii=False).encode()

    def _send(self, db: sqlite_utils.Database, delivery: dict[str, Any]) -> None:
        attempts = delivery["attempts"] + 1
        status: int | None = None
        try:
            target = webhooks.parse_url(delivery["url"], self.allowed)  # the allow-list may have shrunk since
            body = self._body(db, delivery)
            sock = self.connector.connect(target.destination.host, target.destination.port, TIMEOUT)
            sock.settimeout(TIMEOUT)
            if target.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.destination.host)
            connection = http.client.HTTPConnection(target.destination.host, target.destination.port, timeout=TIMEOUT)
            connection.sock = sock
            try:
                connection.request(
                    "POST",
                    target.path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": USER_AGENT,
                        "Sotto-Event": delivery["event"],
                        "Sotto-Delivery": delivery["id"],
                        "Sotto-Signature": webhooks.sign(delivery["secret"], body),
                    },
                )
                response = connection.getresponse()
                status = response.status
                response.read(65536)
            finally:
                connection.close()
            ok = 200 <= status < 300
            webhooks.record_attempt(db, delivery["id"], attempts, ok=ok, status=status, error=None if ok else f"HTTP {status}")
        except Exception as exc:  # the receiver is down, refused, or not allowed: retried on schedule
            webhooks.record_attempt(db, delivery["id"], attempts, ok=False, status=status, error=str(exc) or type(exc).__name__)
