"""The local-AI use cases: summarise a transcript (streamed, cancellable, stored as a new version),
edit a summary, ask a question. Runs on one generation thread of its own, beside the transcription
workers: a summary step starts only when no transcription job is running (assist.yield_to_transcription),
so summaries never slow transcription; questions are answered in the request's thread under the same
engine lock (a question is short, and the person asking is waiting)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.assist import ask as asking
from appliance.assist import library, summaries, workspace_settings
from appliance.assist import store as summaries_store
from appliance.assist.engine import EngineError, LocalEngine, ServerEngine, TextEngine, find_model
from appliance.core.clock import new_id, now
from appliance.core.config import Settings
from appliance.core.db import Databases
from appliance.core.egress_broker import Connector
from appliance.transcription import jobs
from appliance.transcripts import search
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript

log = logging.getLogger(__name__)

PRIVATE_REFUSAL = (
    "This transcript is private: it is encrypted with your key and the server cannot read it, "
    "so the appliance's AI (summaries, questions) is not offered for it."
)
KEEP_RUNS = 200  # finished runs remembered for their event streams


class NotAllowed(Exception):
    """AI is not offered for this transcript (private) or is switched off; the message says why."""


class NotFound(Exception):
    pass


@dataclass
class Run:
    """One summary generation. Its text streams to watchers; the finished summary is stored."""

    id: str
    transcript_id: str
    user_id: str | None
    language: str | None
    state: str = "queued"  # queued | waiting (for transcription) | running | done | failed | cancelled
    text: str = ""
    part: int = 0
    parts: int = 0
    version: int | None = None
    error: str | None = None
    created_at: str = field(default_factory=now)
    changes: int = 0
    cancel_requested: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "transcript_id": self.transcript_id,
            "state": self.state,
            "part": self.part,
            "parts": self.parts,
            "version": self.version,
            "error": self.error,
            "created_at": self.created_at,
        }

    def update(self, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(self, key, value)
            self.changes += 1
            self._cond.notify_all()

    def add_text(self, piece: str) -> None:
        with self._cond:
            self.text += piece
            self.changes += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> int:
        """Block until a change after `since` (or the timeout); returns the change count."""
        with self._cond:
            self._cond.wait_for(lambda: self.changes > since, timeout)
            return self.changes

    @property
    def finished(self) -> bool:
        return self.state in {"done", "failed", "cancelled"}


class Assistant:
    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        connector: Connector,
        transcription_busy: Callable[[], bool] = lambda: False,
        engine: TextEngine | None = None,
    ) -> None:
        self.settings = settings.assist
        self.models_dir = settings.models.models_dir
        self.databases = databases
        self.connector = connector
        self.transcription_busy = transcription_busy
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._runs_lock = threading.Lock()
        self._queue: queue.Queue[Run | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # The engine -----------------------------------------------------------------------------------

    def engine(self) -> TextEngine:
        if not self.settings.enabled:
            raise NotAllowed("The appliance's AI is switched off (assist.enabled = false).")
        with self._engine_lock:
            if self._engine is None:
                s = self.settings
                if s.server_url:
                    self._engine = ServerEngine(
                        s.server_url, s.server_model, self.connector, context_length=s.server_context_length
                    )
                else:
                    info = find_model(self.models_dir, s.model)
                    self._engine = LocalEngine(info, device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads)
            return self._engine

    def describe(self) -> dict[str, Any]:
        """What the UI and doctor say about the AI: available or why not, and where it runs."""
        s = self.settings
        out: dict[str, Any] = {"enabled": s.enabled, "server": s.server_url or None, "auto_summarize": s.auto_summarize}
        if not s.enabled:
            return {**out, "available": False, "reason": "switched off (assist.enabled = false)"}
        if s.server_url:
            return {**out, "available": True, "model": s.server_model or None, "where": "on-prem server"}
        try:
            info = find_model(self.models_dir, s.model)
        except EngineError as exc:
            return {**out, "available": False, "reason": str(exc)}
        return {**out, "available": True, "model": info.name, "where": "this appliance", "context_length": info.context_length}

    # Summaries ------------------------------------------------------------------------------------

    def _readable(self, transcript_id: str) -> Transcript:
        doc = transcripts.get(self.databases.get(), transcript_id)
        if doc is None:
            raise NotFound(transcript_id)
        if doc.private:
            raise NotAllowed(PRIVATE_REFUSAL)
        return doc

    def start_summary(self, transcript_id: str, *, user_id: str | None, language: str | None = None) -> Run:
        self._readable(transcript_id)
        self.engine()  # a missing model is said now, not after the run was queued
        with self._runs_lock:
            for run in self._runs.values():
                if run.transcript_id == transcript_id and not run.finished:
                    return run  # one summary of a transcript at a time: the second click watches the first
            run = Run(new_id(), transcript_id, user_id, language)
            self._runs[run.id] = run
            while len(self._runs) > KEEP_RUNS:
                self._runs.popitem(last=False)
        self._ensure_thread()
        self._queue.put(run)
        return run

    def run(self, run_id: str) -> Run | None:
        with self._runs_lock:
            return self._runs.get(run_id)

    def active_run(self, transcript_id: str) -> Run | None:
        with self._runs_lock:
            return next((r for r in reversed(self._runs.values()) if r.transcript_id == transcript_id and not r.finished), None)

    def cancel(self, run_id: str) -> Run | None:
        run = self.run(run_id)
        if run is not None and not run.finished:
            run.update(cancel_requested=True)
            if run.state == "queued":
                run.update(state="cancelled", error="Cancelled by request.")
        return run

    def edit(self, transcript_id: str, summary: summaries.Summary, *, user_id: str | None) -> int:
        """A person's correction: stored as a new version, citations checked like the model's."""
        doc = self._readable(transcript_id)
        valid = {s.id for s in doc.segments}
        start = {s.id: s.start for s in doc.segments}
        summary.summary_segments = [i for i in summary.summary_segments if i in valid]
        for claim in summary.claims():
            claim.segments = [i for i in claim.segments if i in valid]
        summary.chapters = [
            summaries.Chapter(title=c.title, segment=c.segment, start=start[c.segment])
            for c in summary.chapters
            if c.segment in valid
        ]
        summary.speakers = summaries._speakers(doc, summary)
        return summaries_store.add(self.databases.get(), transcript_id, summary, origin="edited", user_id=user_id)

    def ask(self, transcript_id: str, question: str, *, language: str | None = None) -> asking.Answer:
        doc = self._readable(transcript_id)
        if not asking.context_for(question, doc):
            return asking.Answer(question=question.strip(), answer=asking.NOT_FOUND, found=False)
        return asking.ask(doc, question, self.engine(), language=language, max_new_tokens=min(self.settings.max_new_tokens, 300))

    def ask_library(self, question: str, *, workspace_ids: list[str], language: str | None = None) -> library.LibraryAnswer:
        """A question across the transcripts of `workspace_ids` (the caller's visible ones: the caller's
        rights are the only filter, so they must come from authz). Private transcripts have no words in
        the index, so they can never be part of an answer."""
        if not self.settings.enabled:  # said whether or not anything matches
            raise NotAllowed("The appliance's AI is switched off (assist.enabled = false).")
        found = search.passages(
            self.databases.get(), library.search_words(question), workspace_ids=workspace_ids, limit=8, neighbours=1
        )
        if not found:
            return library.LibraryAnswer(question=question.strip(), answer=library.NOT_FOUND, found=False)
        return library.answer(
            question, found, self.engine(), language=language, max_new_tokens=min(self.settings.max_new_tokens, 300)
        )

    # After a transcription ------------------------------------------------------------------------

    def job_changed(self, job_id: str) -> None:
        """The notifier's callback: a finished job's standard transcripts are queued for a summary when its
        workspace asks for that (workspace_settings.auto_summarize) or the appliance does for every one
        (assist.auto_summarize)."""
        if not self.settings.enabled:
            return
        db = self.databases.get()
        row = jobs.get(db, job_id)
        if row is None or row["state"] != "done":
            return
        if not (self.settings.auto_summarize or workspace_settings.current(db, row.get("workspace_id")).auto_summarize):
            return
        for transcript_id in transcripts.for_job(db, job_id):
            try:
                self.start_summary(transcript_id, user_id=row.get("user_id"))
            except (NotAllowed, NotFound, EngineError) as exc:
                log.info("no automatic summary for a transcript of job %s: %s", job_id, type(exc).__name__)

    # The generation thread ------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._runs_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="assist", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        for run in list(self._runs.values()):
            if not run.finished:
                run.update(cancel_requested=True)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)

    def _loop(self) -> None:
        while True:
            run = self._queue.get()
            if run is None:
                return
            if run.finished:
                continue
            try:
                self._summarise(run)
            except Exception:  # one failed run must not end the thread
                log.exception("summary run failed")
                run.update(state="failed", error="Internal error while summarising. Nothing was stored.")

    def _wait_for_transcription(self, run: Run) -> None:
        if not self.settings.yield_to_transcription:
            return
        while not run.cancel_requested and self.transcription_busy():
            if run.state != "waiting":
                run.update(state="waiting")
            time.sleep(0.5)
        if run.state == "waiting":
            run.update(state="running")

    def _summarise(self, run: Run) -> None:
        run.update(state="running")
        try:
            doc = self._readable(run.transcript_id)
            engine = self.engine()
            # Read when the run starts, not when it was queued: an admin's change meanwhile applies.
            wanted = workspace_settings.current(self.databases.get(), doc.workspace_id)
            progress = summaries.Progress(
                on_text=run.add_text,
                on_part=lambda part, parts: run.update(part=part, parts=parts),
                cancelled=lambda: run.cancel_requested,
                before_step=lambda: self._wait_for_transcription(run),
            )
            started = time.monotonic()
            result = summaries.summarize(
                doc,
                engine,
                language=run.language,
                progress=progress,
                max_new_tokens=self.settings.max_new_tokens,
                instructions=wanted.instructions,
                instructions_version=wanted.version,
                action_step=self.settings.action_step,
            )
        except summaries.Cancelled:
            run.update(state="cancelled", error="Cancelled by request.")
            return
        except (NotAllowed, NotFound, EngineError) as exc:
            run.update(state="failed", error=str(exc) if not isinstance(exc, NotFound) else "The transcript was deleted.")
            return
        if run.cancel_requested:
            run.update(state="cancelled", error="Cancelled by request.")
            return
        try:
            version = summaries_store.add(
                self.databases.get(), run.transcript_id, result, origin="generated", user_id=run.user_id
            )
        except Exception:  # the transcript was deleted meanwhile (foreign key): nothing to keep
            run.update(state="failed", error="The transcript was deleted while it was being summarised.")
            return
        # Counts only: never the text (logs hold no content).
        log.info("summary v%d: %d part(s) in %.1f s", version, result.parts, time.monotonic() - started)
        run.update(state="done", version=version)
