"""Sealed results: the worker encrypts a private job's transcript to its owner's public key the moment
recognition ends. What reaches the database is a metadata row (file name, size, duration, language,
model, times; no text), a transcript key only the owner's private key can open, and the document under
that key: no segments or words rows, so no search index entry, and no plaintext in the file or its WAL.

Python cannot zero a str, so "dropping the plaintext" means dropping every reference (the result's
segment list is emptied) so the memory is freed and reused; the audio itself goes with the job's vault
entry as for every job.
"""

from __future__ import annotations

import json
import os
from typing import Any

import sqlite_utils

from appliance.core.db import transaction
from appliance.private import crypto as private_crypto
from appliance.private import keys as private_keys
from appliance.transcription.asr import AsrResult
from appliance.transcription.options import OptionsError
from appliance.transcription.pipeline import ModelOutput
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Segment, Speaker, Transcript, Word, to_builtins

# Options that can carry the recording's vocabulary: they travel inside the envelope, not beside it.
SECRET_OPTIONS = ("initial_prompt", "hotwords")


def require_enrolled(db: sqlite_utils.Database, user_id: str, private: bool) -> None:
    """At submit time: a private job needs a key to seal to (the job is refused before any audio is kept)."""
    if private and not private_keys.enrolled(db, user_id):
        raise OptionsError(f"private=true: {private_keys.NOT_ENROLLED}")


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in SECRET_OPTIONS}


def document(out: ModelOutput, transcript_id: str, options: dict[str, Any]) -> Transcript:
    """The transcript document, in the shape the API gives for a standard transcript (what the editor
    reads); no database ids, since the server keeps no rows of its text."""
    result = out.result
    return Transcript(
        id=transcript_id,
        text=" ".join(s.text for s in result.segments if s.text),
        language=result.language,
        language_probability=result.language_probability,
        duration=result.duration,
        model=out.model.name,
        options=options,
        private=True,
        speakers=[Speaker(id=s.id, label=s.label) for s in out.speakers],
        segments=[
            Segment(
                id=i,
                start=seg.start,
                end=seg.end,
                text=seg.text,
                speaker=seg.speaker,
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
                speaker_confidence=seg.speaker_confidence,
                words=[
                    Word(start=w.start, end=w.end, word=w.word, probability=w.probability, speaker=w.speaker) for w in seg.words
                ],
            )
            for i, seg in enumerate(result.segments)
        ],
    )


def store_sealed(db: sqlite_utils.Database, out: ModelOutput, *, job: dict[str, Any], options: dict[str, Any]) -> str:
    """Seal one model's result and store it with its metadata row in one transaction; return its id."""
    user_id = job.get("user_id")
    if not user_id:
        raise OptionsError(f"private=true: {private_keys.NOT_ENROLLED}")
    metadata_only = AsrResult([], out.result.language, out.result.language_probability, out.result.duration, out.result.seconds)
    tk = bytearray(os.urandom(private_crypto.KEY_BYTES))
    try:
        with transaction(db):
            # Read under the write lock: a re-key in the browser replaces the key pair in one transaction
            # and checks that it covered every sealed key, so this one is either in it or sealed to the new key.
            public = private_keys.public_key(db, user_id)
            if public is None:  # turned off (or the account went) while the job waited: never fall back to plaintext
                raise OptionsError(f"private=true: {private_keys.NOT_ENROLLED}")
            transcript_id = transcripts.store(
                db,
                metadata_only,
                job_id=job["id"],
                filename=job["filename"],
                size_bytes=job["size_bytes"],
                model=out.model.name,
                options=public_options(options),
                timings=out.timings,
                speakers=None,
                diarization=out.diarization,
                user_id=user_id,
                workspace_id=job.get("workspace_id"),
            )
            db.execute("UPDATE transcripts SET private = 1 WHERE id = ?", [transcript_id])
            plain = document(out, transcript_id, options)  # a temporary: no reference outlives the sealing
            body = private_crypto.seal_transcript(bytes(tk), to_builtins(plain), user_id, transcript_id)
            del plain
            key_envelope = private_crypto.seal_to_public_key(public, bytes(tk), user_id, transcript_id)
            private_keys.store_envelopes(db, transcript_id, user_id, "tk-sealed", key_envelope, body)
            forget_job_secrets(db, job["id"])
    finally:
        tk[:] = bytes(len(tk))
        out.result.segments.clear()
        out.turns.clear()
    return transcript_id


def store_all(
    db: sqlite_utils.Database, outputs: list[ModelOutput], *, job: dict[str, Any], options: dict[str, Any]
) -> list[str]:
    try:
        return [store_sealed(db, out, job=job, options=options) for out in outputs]
    finally:
        for out in outputs:  # a failure part-way must not leave the other results' text behind
            out.result.segments.clear()


def forget_job_secrets(db: sqlite_utils.Database, job_id: str) -> None:
    """The job row kept the prompt only so the worker could run it; it is sealed now."""
    rows = list(db.query("SELECT options FROM jobs WHERE id = ?", [job_id]))
    if rows:
        db.execute(
            "UPDATE jobs SET options = ? WHERE id = ?", [json.dumps(public_options(json.loads(rows[0]["options"]))), job_id]
        )
