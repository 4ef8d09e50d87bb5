"""Voice profiles: a workspace's enrolled speakers (name, consent note, one voice embedding per engine).

Embeddings of different engines live in different spaces and are never compared. Deleting a profile
removes its rows and, with secure_delete and a WAL checkpoint, its embedding bytes from the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlite_utils

from appliance.core.clock import new_id, now
from appliance.core.db import checkpoint, transaction

MAX_NAME = 100
MAX_CONSENT = 500


class ProfileError(ValueError):
    """A profile cannot be made or changed as asked; the message says why, for a person."""


@dataclass(frozen=True)
class Profile:
    id: str
    workspace_id: str
    name: str
    consent_note: str
    created_by: str | None
    created_at: str
    updated_at: str
    engines: tuple[str, ...]  # which engines have a voice for this person
    samples: int  # voices averaged into it, all engines together


@dataclass(frozen=True)
class Candidate:
    profile_id: str
    name: str
    voice: np.ndarray  # unit length, one engine's space


def to_bytes(voice: np.ndarray) -> bytes:
    return np.asarray(voice, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(vector).all() or norm == 0.0:
        raise ProfileError("this voice has no usable embedding")
    return (vector / norm).astype(np.float32)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not 0 < len(name) <= MAX_NAME:
        raise ProfileError(f"a voice profile needs a name of 1 to {MAX_NAME} characters")
    return name


def check_consent(note: str) -> str:
    note = (note or "").strip()
    if not 0 < len(note) <= MAX_CONSENT:
        raise ProfileError(
            f"say who agreed to be recognised and when (a consent note of 1 to {MAX_CONSENT} characters); "
            "a voice profile is biometric data"
        )
    return note


def create(
    db: sqlite_utils.Database,
    *,
    workspace_id: str,
    name: str,
    consent_note: str,
    created_by: str | None,
    engine: str,
    voice: np.ndarray,
) -> str:
    name, consent_note, vector = check_name(name), check_consent(consent_note), unit(voice)
    profile_id = new_id()
    stamp = now()
    with transaction(db):
        db.table("voice_profiles").insert(
            {
                "id": profile_id,
                "workspace_id": workspace_id,
                "name": name,
                "consent_note": consent_note,
                "created_by": created_by,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        db.execute(
            "INSERT INTO voice_profile_embeddings (profile_id, engine, embedding, samples) VALUES (?, ?, ?, 1)",
            [profile_id, engine, to_bytes(vector)],
        )
    return profile_id


def add_voice(db: sqlite_utils.Database, profile_id: str, engine: str, voice: np.ndarray, samples: int = 1) -> None:
    """Fold another voice of the same person into the profile: the running mean of all its voices
    (weighted by how many each stands for), made unit length again."""
    vector = unit(voice)
    with transaction(db):
        rows = list(
            db.query(
                "SELECT embedding, samples FROM voice_profile_embeddings WHERE profile_id = ? AND engine = ?",
                [profile_id, engine],
            )
        )
        if rows:
            old, count = from_bytes(rows[0]["embedding"]), rows[0]["samples"]
            merged = unit(old * count + vector * samples)
            db.execute(
                "UPDATE voice_profile_embeddings SET embedding = ?, samples = ? WHERE profile_id = ? AND engine = ?",
                [to_bytes(merged), count + samples, profile_id, engine],
            )
        else:
            db.execute(
                "INSERT INTO voice_profile_embeddings (profile_id, engine, embedding, samples) VALUES (?, ?, ?, ?)",
                [profile_id, engine, to_bytes(vector), samples],
            )
        db.execute("UPDATE voice_profiles SET updated_at = ? WHERE id = ?", [now(), profile_id])


_SELECT = """
    SELECT p.*, group_concat(e.engine) AS engines, coalesce(sum(e.samples), 0) AS samples
    FROM voice_profiles p LEFT JOIN voice_profile_embeddings e ON e.profile_id = p.id
"""


def _profile(row: dict[str, object]) -> Profile:
    engines = tuple(sorted(str(row["engines"]).split(","))) if row["engines"] else ()
    return Profile(
        str(row["id"]),
        str(row["workspace_id"]),
        str(row["name"]),
        str(row["consent_note"]),
        row["created_by"] if isinstance(row["created_by"], str) else None,
        str(row["created_at"]),
        str(row["updated_at"]),
        engines,
        int(row["samples"]),  # type: ignore[call-overload]
    )


def get(db: sqlite_utils.Database, profile_id: str) -> Profile | None:
    rows = list(db.query(_SELECT + " WHERE p.id = ? GROUP BY p.id", [profile_id]))
    return _profile(rows[0]) if rows else None


def for_workspace(db: sqlite_utils.Database, workspace_id: str) -> list[Profile]:
    return [
        _profile(r)
        for r in db.query(_SELECT + " WHERE p.workspace_id = ? GROUP BY p.id ORDER BY p.name COLLATE NOCASE", [workspace_id])
    ]


def enrolled_by(db: sqlite_utils.Database, user_id: str) -> list[Profile]:
    """The profiles a person enrolled, in every workspace (for their data export)."""
    return [_profile(r) for r in db.query(_SELECT + " WHERE p.created_by = ? GROUP BY p.id ORDER BY p.created_at", [user_id])]


def candidates(db: sqlite_utils.Database, workspace_id: str, engine: str) -> list[Candidate]:
    """The workspace's voices in one engine's space (never another engine's)."""
    return [
        Candidate(r["id"], r["name"], from_bytes(r["embedding"]))
        for r in db.query(
            "SELECT p.id, p.name, e.embedding FROM voice_profiles p JOIN voice_profile_embeddings e ON e.profile_id = p.id "
            "WHERE p.workspace_id = ? AND e.engine = ?",
            [workspace_id, engine],
        )
    ]


def rename(db: sqlite_utils.Database, profile_id: str, name: str) -> None:
    db.execute("UPDATE voice_profiles SET name = ?, updated_at = ? WHERE id = ?", [check_name(name), now(), profile_id])


def merge(db: sqlite_utils.Database, source_id: str, into_id: str) -> None:
    """Two profiles of one person become one (`into`): voices averaged engine by engine, suggestions
    moved, the source deleted for good."""
    if source_id == into_id:
        raise ProfileError("choose two different profiles to merge")
    with transaction(db):
        for r in list(
            db.query("SELECT engine, embedding, samples FROM voice_profile_embeddings WHERE profile_id = ?", [source_id])
        ):
            add_voice(db, into_id, r["engine"], from_bytes(r["embedding"]), samples=r["samples"])
        db.execute("UPDATE transcript_voices SET profile_id = ? WHERE profile_id = ?", [into_id, source_id])
        db.execute("DELETE FROM voice_profiles WHERE id = ?", [source_id])
    checkpoint(db)


def delete(db: sqlite_utils.Database, profile_id: str) -> bool:
    """Gone for good: the row and its embeddings (cascade), freed pages zeroed, WAL truncated. Open
    suggestions of it disappear (SET NULL); transcripts keep the names people gave their speakers."""
    with transaction(db):
        cursor = db.execute("DELETE FROM voice_profiles WHERE id = ?", [profile_id])
        db.execute("UPDATE transcript_voices SET score = NULL WHERE profile_id IS NULL AND score IS NOT NULL")
    checkpoint(db)
    return cursor.rowcount > 0
