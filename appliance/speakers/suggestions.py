"""Each diarized speaker's voice beside its transcript, the profile it sounds like, and a person's answer.

Nothing is renamed here without a person: a suggestion is stored, shown, and only `confirm` (or an
enrolment, "This is Alice") sets the speaker's display name, through the transcript's edit operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlite_utils

from appliance.core.db import transaction
from appliance.speakers import profiles
from appliance.transcripts import editing

# Cosine similarity a speaker's voice must reach to suggest a profile, per engine. The embedded engine's
# value is calibrated by benchmarks/voice_profiles.py (synthetic voices; see docs/benchmarks.md, "Voice profiles"); the
# pyannote value is the usual operating point of its WeSpeaker embeddings, not measured here.
THRESHOLDS = {"embedded": 0.95, "pyannote": 0.60}


class SuggestionError(ValueError):
    """The suggestion cannot be answered as asked; the message says why, for a person."""


@dataclass(frozen=True)
class Match:
    profile_id: str
    name: str
    score: float  # cosine similarity, -1..1


@dataclass(frozen=True)
class SpeakerVoice:
    speaker: str  # the transcript's S-key
    engine: str
    profile_id: str | None
    profile_name: str | None
    score: float | None
    state: str  # open | confirmed | dismissed


def best_matches(voices: dict[str, np.ndarray], candidates: list[profiles.Candidate], threshold: float) -> dict[str, Match]:
    """Each speaker's most similar profile at or above `threshold`; two speakers of one recording are
    two people, so a profile goes to the closer one only (greedy on the highest scores)."""
    pairs = sorted(
        (
            (float(np.dot(voice, c.voice)), key, c)
            for key, voice in voices.items()
            for c in candidates
            if c.voice.shape == voice.shape
        ),
        key=lambda p: -p[0],
    )
    out: dict[str, Match] = {}
    used: set[str] = set()
    for score, key, c in pairs:
        if score < threshold:
            break
        if key in out or c.profile_id in used:
            continue
        out[key] = Match(c.profile_id, c.name, score)
        used.add(c.profile_id)
    return out


def keep(db: sqlite_utils.Database, transcript_id: str, engine: str, voices: dict[str, np.ndarray]) -> None:
    """Store a new transcript's speaker voices (only called with voice profiles turned on) and suggest."""
    with transaction(db):
        db.conn.executemany(
            "INSERT OR REPLACE INTO transcript_voices (transcript_id, speaker_key, engine, embedding) VALUES (?, ?, ?, ?)",
            [(transcript_id, key, engine, profiles.to_bytes(profiles.unit(v))) for key, v in voices.items()],
        )
    suggest(db, transcript_id)


def _workspace_of(db: sqlite_utils.Database, transcript_id: str) -> str | None:
    rows = list(db.query("SELECT workspace_id FROM transcripts WHERE id = ?", [transcript_id]))
    return rows[0]["workspace_id"] if rows else None


def suggest(db: sqlite_utils.Database, transcript_id: str) -> dict[str, Match]:
    """(Re)compute the open suggestions of a transcript against its workspace's profiles."""
    workspace_id = _workspace_of(db, transcript_id)
    rows = list(
        db.query(
            "SELECT speaker_key, engine, embedding FROM transcript_voices WHERE transcript_id = ? AND state = 'open'",
            [transcript_id],
        )
    )
    if workspace_id is None or not rows:
        return {}
    engine = rows[0]["engine"]
    voices = {r["speaker_key"]: profiles.from_bytes(r["embedding"]) for r in rows}
    # A person already confirmed as one speaker of this recording is not suggested for another.
    taken = {
        r["profile_id"]
        for r in db.query(
            "SELECT profile_id FROM transcript_voices WHERE transcript_id = ? AND state = 'confirmed' AND profile_id IS NOT NULL",
            [transcript_id],
        )
    }
    candidates = [c for c in profiles.candidates(db, workspace_id, engine) if c.profile_id not in taken]
    found = best_matches(voices, candidates, THRESHOLDS.get(engine, 1.0))
    current = {
        r["speaker_key"]: (r["profile_id"], r["score"])
        for r in db.query(
            "SELECT speaker_key, profile_id, score FROM transcript_voices WHERE transcript_id = ? AND state = 'open'",
            [transcript_id],
        )
    }
    changes = []
    for key in voices:
        m = found.get(key)
        wanted = (m.profile_id, round(m.score, 4)) if m else (None, None)
        if wanted != current.get(key):
            changes.append((*wanted, transcript_id, key))
    if changes:  # reading a transcript's suggestions writes only when a profile came, went or changed
        with transaction(db):
            db.conn.executemany(
                "UPDATE transcript_voices SET profile_id = ?, score = ? WHERE transcript_id = ? AND speaker_key = ?", changes
            )
    return found


def for_transcript(db: sqlite_utils.Database, transcript_id: str) -> list[SpeakerVoice]:
    return [
        SpeakerVoice(r["speaker_key"], r["engine"], r["profile_id"], r["name"], r["score"], r["state"])
        for r in db.query(
            "SELECT v.speaker_key, v.engine, v.profile_id, p.name, v.score, v.state FROM transcript_voices v "
            "LEFT JOIN voice_profiles p ON p.id = v.profile_id WHERE v.transcript_id = ? ORDER BY v.speaker_key",
            [transcript_id],
        )
    ]


def _voice(db: sqlite_utils.Database, transcript_id: str, speaker: str) -> tuple[str, np.ndarray, str | None, str]:
    rows = list(
        db.query(
            "SELECT engine, embedding, profile_id, state FROM transcript_voices WHERE transcript_id = ? AND speaker_key = ?",
            [transcript_id, speaker],
        )
    )
    if not rows:
        raise SuggestionError(
            f"no voice was kept for speaker {speaker!r} of this transcript (voice profiles were off when it was made, "
            "or the speaker engine gives no voices)"
        )
    r = rows[0]
    return r["engine"], profiles.from_bytes(r["embedding"]), r["profile_id"], r["state"]


def _name_speaker(db: sqlite_utils.Database, transcript_id: str, speaker: str, name: str, user_id: str | None) -> int:
    revision = next(iter(db.query("SELECT revision FROM transcripts WHERE id = ?", [transcript_id])))["revision"]
    result = editing.apply(
        db,
        transcript_id,
        base_revision=revision,
        ops=[{"op": "rename_speaker", "speaker": speaker, "name": name}],
        user_id=user_id,
    )
    return int(result["revision"])


def confirm(db: sqlite_utils.Database, transcript_id: str, speaker: str, *, user_id: str | None, learn: bool = True) -> int:
    """The person says yes: the speaker takes the profile's name (an edit, with its own revision), and
    with `learn` the profile's voice takes this one into its running mean. Returns the new revision."""
    engine, voice, profile_id, _ = _voice(db, transcript_id, speaker)
    profile = profiles.get(db, profile_id) if profile_id else None
    if profile is None:
        raise SuggestionError("this speaker has no suggestion to confirm")
    with transaction(db):
        revision = _name_speaker(db, transcript_id, speaker, profile.name, user_id)
        if learn:
            profiles.add_voice(db, profile.id, engine, voice)
        db.execute(
            "UPDATE transcript_voices SET state = 'confirmed' WHERE transcript_id = ? AND speaker_key = ?",
            [transcript_id, speaker],
        )
    return revision


def dismiss(db: sqlite_utils.Database, transcript_id: str, speaker: str) -> None:
    """ "Not them": the suggestion goes and is not made again for this speaker."""
    _voice(db, transcript_id, speaker)
    db.execute(
        "UPDATE transcript_voices SET state = 'dismissed', profile_id = NULL, score = NULL "
        "WHERE transcript_id = ? AND speaker_key = ?",
        [transcript_id, speaker],
    )


def enrol(
    db: sqlite_utils.Database,
    transcript_id: str,
    speaker: str,
    *,
    workspace_id: str,
    user_id: str | None,
    name: str | None = None,
    consent_note: str | None = None,
    profile_id: str | None = None,
) -> tuple[str, int]:
    """ "This is Alice": a new profile from this speaker's voice (name and consent note required), or
    this voice added to an existing profile of the workspace. The speaker takes the profile's name.
    Returns (profile id, new revision)."""
    engine, voice, _, _ = _voice(db, transcript_id, speaker)
    with transaction(db):
        if profile_id:
            profile = profiles.get(db, profile_id)
            if profile is None or profile.workspace_id != workspace_id:
                raise SuggestionError("no such voice profile in this transcript's workspace")
            profiles.add_voice(db, profile_id, engine, voice)
            name = profile.name
        else:
            profile_id = profiles.create(
                db,
                workspace_id=workspace_id,
                name=name or "",
                consent_note=consent_note or "",
                created_by=user_id,
                engine=engine,
                voice=voice,
            )
            name = profiles.check_name(name or "")
        revision = _name_speaker(db, transcript_id, speaker, name, user_id)
        db.execute(
            "UPDATE transcript_voices SET state = 'confirmed', profile_id = ?, score = NULL "
            "WHERE transcript_id = ? AND speaker_key = ?",
            [profile_id, transcript_id, speaker],
        )
    return profile_id, revision
