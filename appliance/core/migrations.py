"""Append-only schema steps. Never edit a step that has shipped: add a new one."""

from __future__ import annotations

import json

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("appliance")


@migrations(name="0001_jobs_and_transcripts")
def _initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            priority INTEGER NOT NULL DEFAULT 0,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            content_type TEXT,
            models TEXT NOT NULL,            -- JSON list of model names
            options TEXT NOT NULL,           -- JSON of the per-job options
            stage TEXT,                      -- decoding | transcribing
            progress REAL NOT NULL DEFAULT 0,
            duration REAL,                   -- audio seconds, known after decoding
            eta_seconds REAL,
            error TEXT,
            transcript_ids TEXT NOT NULL DEFAULT '[]',
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX jobs_queue ON jobs (state, priority DESC, created_at)")
    db.execute(
        """
        CREATE TABLE transcripts (
            id TEXT PRIMARY KEY,
            job_id TEXT,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            model TEXT NOT NULL,
            task TEXT NOT NULL,
            language TEXT,
            language_probability REAL,
            duration REAL NOT NULL,
            text TEXT NOT NULL,
            options TEXT NOT NULL,           -- JSON of the options the job ran with
            timings TEXT NOT NULL,           -- JSON: decode/asr/total seconds
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX transcripts_created ON transcripts (created_at DESC)")
    db.execute(
        """
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            speaker TEXT,
            avg_logprob REAL,
            no_speech_prob REAL
        )
        """
    )
    db.execute("CREATE INDEX segments_transcript ON segments (transcript_id, position)")
    db.execute(
        """
        CREATE TABLE words (
            id INTEGER PRIMARY KEY,
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            word TEXT NOT NULL,
            probability REAL,
            speaker TEXT
        )
        """
    )
    db.execute("CREATE INDEX words_segment ON words (segment_id, position)")


@migrations(name="0002_speakers")
def _speakers(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE speakers (
            id INTEGER PRIMARY KEY,
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            key TEXT NOT NULL,               -- what words and segments store ("S1")
            label TEXT NOT NULL,             -- "Speaker 1"
            display_name TEXT,               -- set by people later; words are never rewritten
            position INTEGER NOT NULL,
            UNIQUE (transcript_id, key)
        )
        """
    )
    db.execute("ALTER TABLE transcripts ADD COLUMN diarization TEXT")  # JSON: engine, speakers, turns


@migrations(name="0003_accounts")
def _accounts(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,      -- stored lower-cased
            password_hash TEXT NOT NULL,     -- Argon2id
            role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
            disabled INTEGER NOT NULL DEFAULT 0,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created_at TEXT NOT NULL,
            last_login_at TEXT,
            password_changed_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE workspaces (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            personal_user_id TEXT UNIQUE REFERENCES users(id) ON DELETE CASCADE,
            allow_public_links INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE memberships (
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
            PRIMARY KEY (workspace_id, user_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,             -- sha256 of the cookie value; the value itself is never stored
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL UNIQUE,     -- shown in lists; the secret is only ever shown once
            secret_hash TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('read', 'transcribe', 'admin')),
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE invites (
            id TEXT PRIMARY KEY,             -- sha256 of the one-time token
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT,                      -- e-mail at the time, or 'system'; never transcript text
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT,
            ip TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE request_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            method TEXT NOT NULL,
            route TEXT NOT NULL,             -- the route template, never the query or the body
            status INTEGER NOT NULL,
            user_id TEXT,
            duration_ms REAL
        )
        """
    )
    db.execute("CREATE INDEX request_log_at ON request_log (at)")
    for table in ("jobs", "transcripts"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE")
        db.execute(f"ALTER TABLE {table} ADD COLUMN workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE")
    db.execute("CREATE INDEX transcripts_workspace ON transcripts (workspace_id, created_at DESC)")


@migrations(name="0004_share_links")
def _share_links(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE share_links (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,   -- sha256 of the URL token; the token itself is shown once
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            created_by TEXT REFERENCES users(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT,                   -- NULL: until revoked
            password_hash TEXT,                -- Argon2id, or NULL for no password
            include_speakers INTEGER NOT NULL DEFAULT 1,
            include_timestamps INTEGER NOT NULL DEFAULT 1,
            formats TEXT NOT NULL DEFAULT '[]',
            views INTEGER NOT NULL DEFAULT 0,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            revoked_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX share_links_transcript ON share_links (transcript_id)")


@migrations(name="0005_editing_and_search")
def _editing(db: sqlite_utils.Database) -> None:
    # The editor: a title people can change, a revision for optimistic concurrency (a save names the
    # revision it was based on; a stale one gets 409), notes on the transcript and on each segment.
    db.execute("ALTER TABLE transcripts ADD COLUMN title TEXT")
    db.execute("ALTER TABLE transcripts ADD COLUMN revision INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE transcripts ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    # Private transcripts keep no plaintext row content: their text lives only in an envelope.
    db.execute("ALTER TABLE transcripts ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE segments ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE words ADD COLUMN edited INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE words ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0")
    # Full-text search over segment text. External content: the text is stored once, in segments;
    # triggers keep the index in step. SQLite 3.40 has no FTS5 secure-delete, so deleting a transcript
    # also runs 'optimize' (see transcripts.delete) to merge away the deleted tokens.
    db.execute(
        "CREATE VIRTUAL TABLE segments_fts USING fts5(text, content='segments', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute(
        "CREATE TRIGGER segments_fts_insert AFTER INSERT ON segments BEGIN "
        "INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute(
        "CREATE TRIGGER segments_fts_delete AFTER DELETE ON segments BEGIN "
        "INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text); END"
    )
    db.execute(
        "CREATE TRIGGER segments_fts_update AFTER UPDATE OF text ON segments BEGIN "
        "INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute("INSERT INTO segments_fts(segments_fts) VALUES ('rebuild')")
    # One row per saved revision: which parts it touched, so a save based on an older revision can
    # be applied when it touches other parts (rebase) and refused with 409 when it overlaps.
    db.execute(
        """
        CREATE TABLE transcript_edits (
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            touched TEXT NOT NULL,            -- JSON list: "s:<segment id>", "note", "title", "spk:<key>", "*"
            user_id TEXT,
            at TEXT NOT NULL,
            PRIMARY KEY (transcript_id, revision)
        )
        """
    )


@migrations(name="0006_private_keys")
def _private_keys(db: sqlite_utils.Database) -> None:
    # Private transcripts: the server keeps only what the browser wrapped. The login verifier for a user
    # with private mode on is users.password_hash over their auth key (the password never arrives).
    db.execute(
        """
        CREATE TABLE user_keys (
            user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            kdf TEXT NOT NULL,                 -- JSON {"alg", "iterations", "salt"}: kept so Argon2id can come later
            wrapped_dk TEXT NOT NULL,          -- envelope "dk": the data key under the password's KEK
            recovery_dk TEXT NOT NULL,         -- envelope "dk-recovery": the data key under the recovery key
            public_key TEXT NOT NULL,          -- base64url uncompressed P-256 point: what the worker seals to
            wrapped_private_key TEXT NOT NULL, -- envelope "sk": the PKCS#8 private key under the data key
            signs_in_with_auth_key INTEGER NOT NULL DEFAULT 1,  -- see 0014: 1 = the password hash is of the old auth key
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE transcript_envelopes (
            transcript_id TEXT PRIMARY KEY REFERENCES transcripts(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,  -- whose keys open it
            kind TEXT NOT NULL CHECK (kind IN ('tk-sealed', 'tk')),       -- sealed by the worker, or re-wrapped under DK
            key_envelope TEXT NOT NULL,
            body TEXT NOT NULL,                -- envelope "transcript": the document under the transcript key
            updated_at TEXT NOT NULL
        )
        """
    )


@migrations(name="0007_private_sharing")
def _private_sharing(db: sqlite_utils.Database) -> None:
    # A private transcript shared with a teammate: its key sealed to the teammate's public key. The body
    # stays the owner's one envelope; the teammate's row only opens it (read-only).
    db.execute(
        """
        CREATE TABLE transcript_key_grants (
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- the recipient
            key_envelope TEXT NOT NULL,        -- envelope "tk-sealed" with uid = the recipient
            granted_by TEXT REFERENCES users(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            PRIMARY KEY (transcript_id, user_id)
        )
        """
    )
    # Encrypted snapshot links: the server keeps only the "share" envelope; its key is in the link's
    # fragment. Expiry, the view limit and revocation delete the envelope (the server copy).
    db.execute("ALTER TABLE share_links ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE share_links ADD COLUMN envelope TEXT")
    db.execute("ALTER TABLE share_links ADD COLUMN max_views INTEGER")


@migrations(name="0008_api_key_store")
def _api_key_store(db: sqlite_utils.Database) -> None:
    # A key may say "never keep my results": its OpenAI-compatible requests answer and then delete the
    # transcript, as `store=false` does per request (for tools that cannot add that field).
    db.execute("ALTER TABLE api_keys ADD COLUMN store INTEGER NOT NULL DEFAULT 1")


@migrations(name="0009_private_job_secrets")
def _private_job_secrets(db: sqlite_utils.Database) -> None:
    # Earlier versions kept a private job's prompt and custom vocabulary in its row until it was sealed,
    # and for good when it failed or was cancelled. New jobs never write them; this removes old ones.
    # (The caller checkpoints after migrating; secure_delete zeroes the old pages.)
    for row in db.query("SELECT id, options FROM jobs WHERE json_extract(options, '$.private') = 1"):
        options = json.loads(row["options"])
        if "initial_prompt" in options or "hotwords" in options:
            options.pop("initial_prompt", None)
            options.pop("hotwords", None)
            db.execute("UPDATE jobs SET options = ? WHERE id = ?", [json.dumps(options), row["id"]])


@migrations(name="0010_license_witness")
def _license_witness(db: sqlite_utils.Database) -> None:
    # Licence facts kept in the database as well as in data/license/: when the evaluation started, that a
    # licence was installed, the clock's high-water mark and confirmed clock corrections. Deleting or
    # garbling the files in data/license/ no longer resets the evaluation or hides a lapsed licence.
    db.execute("CREATE TABLE license_witness (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations(name="0011_workspace_invitations")
def _workspace_invitations(db: sqlite_utils.Database) -> None:
    # Joining a workspace is the invitee's choice: a workspace admin's "add member" is an invitation the
    # person accepts or declines from their account page (they were added silently before).
    db.execute(
        """
        CREATE TABLE workspace_invitations (
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            invited_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (workspace_id, user_id)
        )
        """
    )


@migrations(name="0012_job_api_key")
def _job_api_key(db: sqlite_utils.Database) -> None:
    # Which API key submitted a job (NULL for the web UI): the per-key limit on jobs in flight counts it.
    db.execute("ALTER TABLE jobs ADD COLUMN api_key_id TEXT")


@migrations(name="0013_segment_scores")
def _segment_scores(db: sqlite_utils.Database) -> None:
    # What the decoder reported for each recognised segment (the OpenAI-compatible verbose_json shows
    # them); NULL for segments made by editing or by splitting at speaker changes.
    for column in ("seek INTEGER", "temperature REAL", "compression_ratio REAL", "tokens TEXT"):
        db.execute(f"ALTER TABLE segments ADD COLUMN {column}")


@migrations(name="0014_private_passphrase")
def _private_passphrase(db: sqlite_utils.Database) -> None:
    # Private transcripts get a passphrase of their own, which never reaches the server. Key records made
    # before this were wrapped under a key derived from the sign-in password, which the server received at
    # every earlier sign-in: they are marked 'sign-in-password' and their owners choose a passphrase (the
    # data key and key pair are replaced, every transcript key re-wrapped, in their browser) before they
    # open a private transcript again. `signs_in_with_auth_key` = 1 now only means that users.password_hash
    # still holds the old derived auth key; the next sign-in replaces it with the password's own hash.
    db.execute(
        "ALTER TABLE user_keys ADD COLUMN scheme TEXT NOT NULL DEFAULT 'passphrase' "
        "CHECK (scheme IN ('passphrase', 'sign-in-password'))"
    )
    db.execute("UPDATE user_keys SET scheme = 'sign-in-password'")


@migrations(name="0015_speaker_confidence")
def _speaker_confidence(db: sqlite_utils.Database) -> None:
    # How much of a segment's speech the speaker engine gave to the segment's speaker (0..1); NULL
    # without diarization and for segments made by editing. The editor marks low values.
    db.execute("ALTER TABLE segments ADD COLUMN speaker_confidence REAL")


@migrations(name="0016_webhooks")
def _webhooks(db: sqlite_utils.Database) -> None:
    # Per-workspace webhooks to allowed intranet receivers, and their delivery log. A delivery keeps the
    # event and the ids it is about, never a copy of transcript text (that is read again when sending).
    db.execute(
        """
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,             -- JSON list of event names
            include_text INTEGER NOT NULL DEFAULT 0,
            created_by TEXT,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            subject TEXT NOT NULL,            -- the job or transcript id the event is about
            data TEXT NOT NULL,               -- JSON: ids and states only
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT,
            UNIQUE (webhook_id, event, subject)
        )"""
    )
    db.execute("CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at)")


@migrations(name="0017_search_every_script")
def _search_every_script(db: sqlite_utils.Database) -> None:
    # A second index over the same segment text, by character trigrams: the word index (unicode61) cannot
    # find a Chinese or Japanese word inside a sentence (no spaces: a whole clause is one token) and cuts
    # Bengali, Gujarati and Devanagari words at their vowel signs (spacing marks are not letters to it).
    # Words in those scripts are searched here (appliance/transcripts/search.py); the same triggers and
    # the same 'optimize' after a delete keep it in step.
    db.execute("CREATE VIRTUAL TABLE segments_grams USING fts5(text, content='segments', content_rowid='id', tokenize='trigram')")
    db.execute(
        "CREATE TRIGGER segments_grams_insert AFTER INSERT ON segments BEGIN "
        "INSERT INTO segments_grams(rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute(
        "CREATE TRIGGER segments_grams_delete AFTER DELETE ON segments BEGIN "
        "INSERT INTO segments_grams(segments_grams, rowid, text) VALUES ('delete', old.id, old.text); END"
    )
    db.execute(
        "CREATE TRIGGER segments_grams_update AFTER UPDATE OF text ON segments BEGIN "
        "INSERT INTO segments_grams(segments_grams, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO segments_grams(rowid, text) VALUES (new.id, new.text); END"
    )
    db.execute("INSERT INTO segments_grams(segments_grams) VALUES ('rebuild')")


@migrations(name="0018_voice_profiles")
def _voice_profiles(db: sqlite_utils.Database) -> None:
    # Known speakers (off unless diarization.voice_profiles is on). A profile is a name, a consent note and
    # voice embeddings, one per engine: the embedded and pyannote engines' vectors live in different
    # spaces and are never compared. No audio is kept anywhere.
    db.execute(
        """
        CREATE TABLE voice_profiles (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            consent_note TEXT NOT NULL,      -- who agreed to be recognised, and when: required at enrolment
            created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX voice_profiles_workspace ON voice_profiles (workspace_id, name)")
    db.execute(
        """
        CREATE TABLE voice_profile_embeddings (
            profile_id TEXT NOT NULL REFERENCES voice_profiles(id) ON DELETE CASCADE,
            engine TEXT NOT NULL,
            embedding BLOB NOT NULL,         -- float32 little-endian, unit length
            samples INTEGER NOT NULL,        -- how many voices the running mean holds
            PRIMARY KEY (profile_id, engine)
        )
        """
    )
    # Each diarized speaker's voice, taken while the job's audio was in memory, deleted with the
    # transcript; and the profile it sounds like, until a person confirms or dismisses it.
    db.execute(
        """
        CREATE TABLE transcript_voices (
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            speaker_key TEXT NOT NULL,
            engine TEXT NOT NULL,
            embedding BLOB NOT NULL,
            profile_id TEXT REFERENCES voice_profiles(id) ON DELETE SET NULL,
            score REAL,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'confirmed', 'dismissed')),
            PRIMARY KEY (transcript_id, speaker_key),
            -- A speaker merged away in the editor takes its voice with it: a later new speaker may reuse its key.
            FOREIGN KEY (transcript_id, speaker_key) REFERENCES speakers(transcript_id, key) ON DELETE CASCADE
        )
        """
    )
    db.execute("CREATE INDEX transcript_voices_profile ON transcript_voices (profile_id)")


@migrations(name="0019_user_language")
def _user_language(db: sqlite_utils.Database) -> None:
    # The UI language a person chose (appliance/web/i18n.py); NULL: their browser's, else the operator's.
    db.execute("ALTER TABLE users ADD COLUMN language TEXT")


@migrations(name="0020_transcript_revisions")
def _transcript_revisions(db: sqlite_utils.Database) -> None:
    # The edit history survives a reload: before each save (and each restore) the transcript's editable
    # state as it stood at that revision is kept whole, so viewing or restoring one is a single read with
    # no chain of diffs to replay. Plain JSON on purpose: deleting the transcript cascades here, and the
    # deletion tests that scan the raw file for a canary word can see (and so prove the absence of) it.
    db.execute("ALTER TABLE transcript_edits ADD COLUMN description TEXT")
    db.execute(
        """
        CREATE TABLE transcript_revisions (
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            snapshot TEXT NOT NULL,          -- JSON of revisions.Snapshot: title, note, speakers, segments, words
            PRIMARY KEY (transcript_id, revision)
        )
        """
    )


@migrations(name="0021_second_factors")
def _second_factors(db: sqlite_utils.Database) -> None:
    # TOTP (RFC 6238): the shared secret must be readable to check a code, so it is stored as is, like the
    # session table's CSRF tokens; whoever can read the database can also read every transcript in it.
    # last_step: the newest time step a code was accepted for; an older or equal one is a replay.
    db.execute(
        """
        CREATE TABLE user_totp (
            user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            secret TEXT NOT NULL,            -- base32
            confirmed_at TEXT,               -- NULL while enrolment waits for the first code
            last_step INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE recovery_codes (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,         -- sha256 of a random 50-bit code: only its hash is kept
            used_at TEXT,
            PRIMARY KEY (user_id, code_hash)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE passkeys (
            id TEXT PRIMARY KEY,             -- the credential id, base64url
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            public_key BLOB NOT NULL,        -- COSE
            sign_count INTEGER NOT NULL DEFAULT 0,
            transports TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            last_used_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX passkeys_user ON passkeys (user_id)")
    # One outstanding WebAuthn challenge per user and ceremony; taken (deleted) when answered: single use.
    db.execute(
        """
        CREATE TABLE webauthn_challenges (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
            challenge BLOB NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (user_id, purpose)
        )
        """
    )
    # Between a right password and the second factor: a short-lived, single-use token (its hash).
    db.execute(
        """
        CREATE TABLE pending_logins (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            failures INTEGER NOT NULL DEFAULT 0,
            expires_at TEXT NOT NULL
        )
        """
    )
    # Roles whose users must have a second factor (set by an admin on the Users page).
    db.execute("CREATE TABLE second_factor_policy (role TEXT PRIMARY KEY CHECK (role IN ('admin', 'member', 'viewer')))")
    # When this session last proved a second factor: creating an API key needs a recent one.
    db.execute("ALTER TABLE sessions ADD COLUMN second_factor_at TEXT")


@migrations(name="0022_directory_accounts")
def _directory_accounts(db: sqlite_utils.Database) -> None:
    # Where an account signs in: 'local' (password here), 'ldap' (the directory checks the password) or
    # 'oidc' (the identity provider does); for those two the local hash is random and never used.
    # external_id: the DN in the directory, or issuer|sub.
    db.execute("ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'")
    db.execute("ALTER TABLE users ADD COLUMN external_id TEXT")
    db.execute("ALTER TABLE users ADD COLUMN groups TEXT")  # JSON: the directory groups at the last sign-in
    # OIDC: a sign-in on its way through the provider (state -> nonce and PKCE verifier; single use),
    # and the ID token of an OIDC session (the id_token_hint of RP-initiated logout).
    db.execute(
        """
        CREATE TABLE oidc_logins (
            id TEXT PRIMARY KEY,             -- sha256 of the state parameter
            nonce TEXT NOT NULL,
            verifier TEXT NOT NULL,
            next TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE oidc_sessions (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            id_token TEXT NOT NULL
        )
        """
    )
    # The directory checks (at sign-in and periodic): what the admin page shows as the last sync.
    db.execute(
        """
        CREATE TABLE directory_syncs (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            checked INTEGER NOT NULL,
            disabled INTEGER NOT NULL,
            error TEXT
        )
        """
    )


@migrations(name="0023_summaries")
def _summaries(db: sqlite_utils.Database) -> None:
    # AI summaries of a transcript (appliance/assist), every version kept: a regeneration or a person's
    # edit adds one. The content is the summary document as JSON (its claims cite segment positions).
    # Deleted with the transcript (cascade); the permanent-deletion path zeroes the freed pages.
    db.execute(
        """
        CREATE TABLE summaries (
            id TEXT PRIMARY KEY,
            transcript_id TEXT NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('generated', 'edited')),
            model TEXT,
            language TEXT,
            content TEXT NOT NULL,
            created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            UNIQUE (transcript_id, version)
        )
        """
    )


@migrations(name="0025_oidc_backchannel_logout")
def _oidc_backchannel_logout(db: sqlite_utils.Database) -> None:
    # OIDC back-channel logout: the provider names the sessions to end by its session id (sid, from the
    # ID token) or by the account (sub); and each logout token is accepted once (its jti, kept until
    # the token could no longer pass the age check anyway).
    db.execute("ALTER TABLE oidc_sessions ADD COLUMN sid TEXT")
    db.execute("ALTER TABLE oidc_sessions ADD COLUMN subject TEXT")  # issuer|sub, as users.external_id
    db.execute("CREATE INDEX oidc_sessions_sid ON oidc_sessions (sid)")
    db.execute("CREATE INDEX oidc_sessions_subject ON oidc_sessions (subject)")
    db.execute("CREATE TABLE oidc_logout_tokens (jti TEXT PRIMARY KEY, expires_at TEXT NOT NULL)")


@migrations(name="0026_workspace_assist")
def _workspace_assist(db: sqlite_utils.Database) -> None:
    # A workspace's AI settings (appliance/assist/workspace_settings.py), every version kept: its admins'
    # summary instructions and whether each finished transcription is summarised. A restore adds a
    # version copying an older one (restored_from), so the history never loses what was said.
    db.execute(
        """
        CREATE TABLE workspace_assist (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            instructions TEXT NOT NULL,
            auto_summarize INTEGER NOT NULL CHECK (auto_summarize IN (0, 1)),
            restored_from INTEGER,
            created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            UNIQUE (workspace_id, version)
        )
        """
    )


@migrations(name="0027_media_hosts")
def _media_hosts(db: sqlite_utils.Database) -> None:
    # The intranet hosts a recording may be imported from by link (appliance/integrations/media_links.py):
    # 'name' (ports 80 and 443) or 'name:port', lower case. The egress broker reads this table itself,
    # read-only, at each media connection.
    db.execute(
        """
        CREATE TABLE media_hosts (
            name TEXT PRIMARY KEY,
            created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL
        )
        """
    )


@migrations(name="0028_cluster_nodes")
def _cluster_nodes(db: sqlite_utils.Database) -> None:
    # Cluster mode (appliance/cluster/nodes.py): the worker nodes an administrator issued keys to, and
    # which of them are drained. A job records the node that ran it and how many tries it took.
    db.execute(
        """
        CREATE TABLE cluster_nodes (
            name TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            fingerprint TEXT NOT NULL,       -- SHA-256 of the node's certificate
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            drained INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("ALTER TABLE jobs ADD COLUMN node TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")


def apply(db: sqlite_utils.Database) -> None:
    """Bring the schema up to date; safe to call at every start."""
    migrations.apply(db)
