"""Submitting a recording: the use case behind every upload door (the REST API and the OpenAI-compatible
one; the web pages use the REST API). Reading the request body is the web layer's part; what happens to
the bytes once they are in memory is decided here, once.

Order matters: a slot (per user, per key, queue) is reserved and the licence consulted before a byte is
read; the options are checked and the audio probed before anything is written; the job row and the
audio's place in the vault appear together or not at all. Every failure drops the audio from memory,
and a job row whose audio could not be kept is marked failed rather than left queued forever.

Errors are the domain's own (OptionsError, audio.TooLong / audio.AudioError, admission.Refused,
authz.NotVisible / Forbidden, LicenseBlocked); appliance/web/errors.py maps them to HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.accounts import authz
from appliance.core.config import Settings
from appliance.core.db import Databases
from appliance.licensing.store import LicenseStore
from appliance.private import sealing
from appliance.transcription import admission, audio, jobs
from appliance.transcription.asr import ModelRegistry
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.options import parse


@dataclass(frozen=True)
class Recording:
    """An upload already in memory, as the web layer read it."""

    upload: jobs.Upload
    filename: str
    content_type: str | None


@dataclass
class UploadIntake:
    settings: Settings
    databases: Databases
    vault: jobs.AudioVault
    registry: ModelRegistry
    engines: DiarizationEngines
    licenses: LicenseStore
    gate: admission.JobGate
    wake_worker: Callable[[], None]

    async def reserve(self, principal: authz.Principal, workspace_hint: str | None) -> admission.Slot:
        """Before a byte is read: the caller may write to the workspace, the licence allows new work, and
        a slot is free. The caller releases the slot in a `finally` (a slot that became a job is released
        already; releasing gives back any other)."""
        return await self.databases.in_thread(self._reserve, principal, workspace_hint)

    def _reserve(self, db: sqlite_utils.Database, principal: authz.Principal, workspace_hint: str | None) -> admission.Slot:
        authz.target_workspace(db, principal, workspace_hint)
        self.licenses.require_new_jobs()
        return self.gate.reserve(db, principal.user.id, principal.key_id)

    async def submit(
        self,
        slot: admission.Slot,
        principal: authz.Principal,
        recording: Recording,
        raw_options: Mapping[str, Any],
        workspace_hint: str | None,
    ) -> dict[str, Any]:
        """Check the options and the audio, queue the job and hand its audio to the vault; return the job row."""
        settings = self.settings
        job_id: str | None = None
        try:
            options = parse(raw_options, settings, self.registry, self.engines)
            # A quick look now turns "not audio at all" into a clear refusal instead of a failed job later.
            await asyncio.to_thread(audio.probe, recording.upload.data(), settings.server.max_audio_seconds)
            stored = options.stored()
            # A private job's prompt and vocabulary are as confidential as its words: they never reach the
            # job row (nor the WAL, nor a failed job's record, nor a workspace viewer); the worker gets them
            # from memory, beside the audio.
            secrets = {k: stored.pop(k) for k in sealing.SECRET_OPTIONS if k in stored} if options.private else {}

            def queue(db: sqlite_utils.Database) -> dict[str, Any]:
                workspace_id = authz.target_workspace(db, principal, workspace_hint)
                sealing.require_enrolled(db, principal.user.id, options.private)  # a private job needs a key to seal to
                if options.diarization is not None:
                    self.licenses.require_new_jobs("diarization")
                request_row = jobs.JobRequest(
                    filename=recording.filename[:255],
                    size_bytes=recording.upload.size,
                    content_type=recording.content_type,
                    models=[m.name for m in options.models],
                    options=stored,
                    priority=options.priority,
                    user_id=principal.user.id,
                    workspace_id=workspace_id,
                    api_key_id=principal.key_id,
                )
                return slot.admit(lambda: jobs.create(db, request_row))

            row = await self.databases.in_thread(queue)
            job_id = row["id"]
            self.vault.put(job_id, recording.upload, secrets)
        except BaseException:
            recording.upload.discard()
            if job_id is not None:  # the row exists but its audio is gone: say so instead of queueing nothing
                self.vault.release(job_id)
                failed = job_id
                await self.databases.in_thread(
                    lambda db: jobs.finish(db, failed, "failed", error="The upload could not be queued.")
                )
            raise
        self.wake_worker()
        return row
