"""Worker threads: claim a job, run the pipeline on its in-memory audio, store, finish.

A worker never dies because of one job: every job ends done, failed (with a reason a person can
act on) or cancelled, and its audio is dropped from RAM whatever the end.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from appliance.cluster.client import Cluster, ClusterError, Session
from appliance.core import memory
from appliance.core.config import Settings
from appliance.core.db import Databases
from appliance.core.metrics import Metrics
from appliance.private import sealing
from appliance.speakers import suggestions
from appliance.transcription import jobs, pipeline
from appliance.transcription.asr import Cancelled, ModelError, ModelRegistry, Recognizer
from appliance.transcription.audio import AudioError
from appliance.transcription.diarization import DiarizationError
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.lanes import Lanes
from appliance.transcription.options import KNOWN, OptionsError, parse
from appliance.transcription.partials import PartialTexts
from appliance.transcripts import store as transcripts

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.25  # seconds between progress writes to the database
CLUSTER_JOB_THREADS = 32  # jobs in flight on a cluster at most, unless the licence says fewer


class Worker:
    """A pool of job threads in the web server's process (audio is handed over in memory)."""

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        vault: jobs.AudioVault,
        recognizer: Recognizer,
        registry: ModelRegistry,
        engines: DiarizationEngines | None = None,
        on_change: Callable[[str], None] = lambda job_id: None,
        metrics: Metrics | None = None,
        partials: PartialTexts | None = None,
        workers_per_device: int = 1,
        cluster: Cluster | None = None,
    ) -> None:
        self.settings = settings
        self.databases = databases
        self.vault = vault
        self.recognizer = recognizer
        self.registry = registry
        self.on_change = on_change
        self.engines = engines
        self.metrics = metrics
        self.partials = partials
        self.workers_per_device = workers_per_device
        self.cluster = cluster  # cluster mode: jobs run on the worker nodes' replicas (appliance/cluster)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lanes = Lanes(workers_per_device)

    def start(self, devices: int = 1, max_threads: int | None = None) -> None:
        """Start `workers_per_device` threads for each device (each GPU, or the CPU), at most `max_threads`."""
        if self.cluster is not None:
            # One thread per job in flight on the cluster; each first holds a replica, then claims a job.
            for n in range(max_threads or CLUSTER_JOB_THREADS):
                thread = threading.Thread(target=self._cluster_loop, name=f"worker-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
            return
        count = self.workers_per_device * devices
        # One lane per model replica (workers_per_device on each device), whatever the licence's job
        # limit: a job running alone borrows the idle ones (appliance/transcription/lanes.py).
        self.lanes = Lanes(count)
        for n in range(min(count, max_threads) if max_threads else count):
            thread = threading.Thread(target=self._loop, name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def notify(self) -> None:
        """A job was queued: wake a worker now rather than at its next poll."""
        self._wake.set()

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def _loop(self) -> None:
        db = self.databases.get()
        while not self._stop.is_set():
            try:
                job = jobs.claim_next(db)
            except Exception:  # a locked or broken database must not end the thread
                log.exception("could not claim a job")
                job = None
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.run_job(job)

    def _cluster_loop(self) -> None:
        assert self.cluster is not None
        db = self.databases.get()
        session = self.cluster.session()
        try:
            while not self._stop.is_set():
                if session.acquire(1.0) is None:
                    self._stop.wait(0.2)  # the dispatcher holds the wait; this only paces a broken connection
                    continue
                try:
                    job = jobs.claim_next(db)
                except Exception:
                    log.exception("could not claim a job")
                    job = None
                if job is None:
                    session.release()
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self.run_job(job, session)
        finally:
            session.close()

    def run_job(self, job: dict[str, Any], session: Session | None = None) -> None:
        db = self.databases.get()
        job_id = job["id"]
        if self.metrics:
            self.metrics.job_started(_seconds_since(job["created_at"]))
        state, error, transcript_ids = "failed", None, None
        self.lanes.enter()
        try:
            data = self.vault.get(job_id)
            if data is None:
                error = jobs.RESTART_REASON
            else:
                transcript_ids = self._process(db, job, data, session)
                state = "done"
        except Cancelled:
            state, error = "cancelled", "Cancelled by request."
        except (AudioError, ModelError, OptionsError, DiarizationError, ClusterError) as exc:
            error = str(exc)
        except MemoryError:
            error = "The recording is too long to process with the memory available."
        except Exception as exc:
            log.exception("job %s failed", job_id)
            error = f"Internal error while transcribing ({type(exc).__name__}). Other jobs are unaffected."
        finally:
            # The recording goes, and the job is counted, before anyone can see that it ended: whoever
            # reads "done" or "failed" never finds its audio still in memory or the metrics behind.
            self.lanes.leave()
            self.vault.release(job_id)
            memory.release()  # the decoded audio and model buffers are garbage now: return them
            if self.metrics:
                self.metrics.job_finished(state)
        try:
            jobs.finish(db, job_id, state, error=error, transcript_ids=transcript_ids)
        finally:
            self.on_change(job_id)

    def _reserve_decoded(self, job_id: str, nbytes: int) -> None:
        try:
            self.vault.reserve_decoded(job_id, nbytes)
        except jobs.VaultFull:
            raise AudioError(
                "The recording decodes to more audio than this appliance has memory for right now. "
                "Try again when fewer recordings are being transcribed, or upload it in parts."
            ) from None

    def _process(self, db: Any, job: dict[str, Any], data: bytes, session: Session | None = None) -> list[str]:
        stored = json.loads(job["options"])
        raw = {k: v for k, v in stored.items() if k in KNOWN and k != "priority"}
        raw.update(self.vault.secrets(job["id"]))  # a private job's prompt and vocabulary: memory only
        raw["models"] = json.loads(job["models"])
        for_node = dict(raw)
        options = parse(raw, self.settings, self.registry)
        last_write = 0.0
        last_check = 0.0
        cancelled_flag = False

        last_stage = ""

        def progress(p: pipeline.Progress) -> None:
            nonlocal last_write, last_stage
            now = time.monotonic()
            # Throttled, except that every change of stage is written (and so seen by watchers).
            if now - last_write >= PROGRESS_INTERVAL or p.fraction >= 1.0 or p.stage != last_stage:
                last_write, last_stage = now, p.stage
                jobs.report_progress(db, job["id"], stage=p.stage, progress=p.fraction, duration=p.duration, eta=p.eta_seconds)
                self.on_change(job["id"])

        def cancelled() -> bool:
            nonlocal last_check, cancelled_flag
            now = time.monotonic()
            if not cancelled_flag and now - last_check >= PROGRESS_INTERVAL:
                last_check = now
                cancelled_flag = jobs.cancel_requested(db, job["id"])
            return cancelled_flag

        # A private job's words are only ever sealed: it offers no text to streams.
        on_text = partial(self.partials.add, job["id"]) if self.partials is not None and not options.private else None
        # Voices are biometric data: taken only where an administrator turned voice profiles on, and
        # never for a private job (its speakers stay inside the sealed envelope).
        keep_voices = self.settings.diarization.voice_profiles and not options.private
        if session is not None:
            # On a worker node's replica: the recording goes there in memory and nowhere else, and the
            # node parses the same options against its own copy of the models.
            def started(node: str, attempt: int) -> None:
                jobs.record_node(db, job["id"], node, attempt)
                self.on_change(job["id"])

            outputs = session.run(
                job["id"],
                data,
                for_node,
                keep_voices,
                on_started=started,
                on_progress=progress,
                on_text=on_text,
                cancelled=cancelled,
            )
        else:
            outputs = pipeline.run(
                data,
                options,
                self.recognizer,
                progress,
                cancelled,
                self.engines,
                on_text=on_text,
                max_seconds=self.settings.server.max_audio_seconds,
                reserve=partial(self._reserve_decoded, job["id"]),
                keep_voices=keep_voices,
                lanes=self.lanes if self.settings.worker.share_idle_lanes else None,
                window_seconds=self.settings.worker.window_seconds,
            )
        if self.metrics:
            for out in outputs:
                self.metrics.transcribed(out.model.name, out.timings["audio_seconds"], out.timings["asr_seconds"])
        if jobs.cancel_requested(db, job["id"]):
            raise Cancelled()
        if options.private:  # sealed now, before anything else touches the text
            return sealing.store_all(db, outputs, job=job, options=options.stored())
        stored = [
            transcripts.store(
                db,
                out.result,
                job_id=job["id"],
                filename=job["filename"],
                size_bytes=job["size_bytes"],
                model=out.model.name,
                options=options.stored(),
                timings=out.timings,
                speakers=out.speakers,
                diarization=out.diarization,
                user_id=job.get("user_id"),
                workspace_id=job.get("workspace_id"),
            )
            for out in outputs
        ]
        for transcript_id, out in zip(stored, outputs, strict=True):
            if out.voices and out.diarization:
                suggestions.keep(db, transcript_id, str(out.diarization["engine"]), out.voices)
        return stored


def _seconds_since(iso_time: str) -> float:
    from datetime import UTC, datetime

    return (datetime.now(UTC) - datetime.fromisoformat(iso_time.replace("Z", "+00:00"))).total_seconds()
