"""Every route × {anonymous, viewer, member, admin, another workspace's user, revoked key}."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest

from appliance.accounts import apikeys
from appliance.core.config import Settings
from appliance.transcription import jobs
from tests.support import FakeRecognizer, Scenario

PERSONAS = ("anonymous", "viewer", "member", "admin", "outsider", "revoked")


def _wav(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return buffer.getvalue()


class World:
    """alice: admin, owns the shared workspace Legal; bob: member of Legal; carol: another member;
    victor: viewer in Legal; mallory: a member with her own workspace only; bob's revoked key."""

    CAST: ClassVar[dict[str, tuple[str, str, str]]] = {  # persona: (e-mail, role, API key scope)
        "admin": ("alice@example.org", "admin", "admin"),
        "member": ("bob@example.org", "member", "transcribe"),
        "carol": ("carol@example.org", "member", "transcribe"),
        "viewer": ("victor@example.org", "viewer", "read"),
        "outsider": ("mallory@example.org", "member", "transcribe"),
        "dave": ("dave@example.org", "member", "transcribe"),
    }

    def __init__(self, settings: Settings) -> None:
        self.scenario = Scenario(settings)
        db = self.db = self.scenario.db
        cast = {name: self.scenario.person(email, role, scope) for name, (email, role, scope) in self.CAST.items()}
        self.members = cast
        self.users = {name: m.user for name, m in cast.items()}
        self.keys = {name: m.key for name, m in cast.items()}
        self.scopes = {name: scope for name, (_e, _r, scope) in self.CAST.items()}
        roles = {"member": "member", "carol": "member", "viewer": "viewer", "dave": "member"}
        self.legal = self.scenario.workspace("Legal", cast["admin"], {cast[name].id: role for name, role in roles.items()})
        revoked, record = apikeys.create(db, self.users["member"].id, "old", "transcribe")
        apikeys.revoke(db, record["id"])
        self.keys["revoked"] = revoked
        self.job = jobs.create(db, jobs.JobRequest("a.wav", 10, None, ["tiny.en"], {}, 0, self.users["member"].id, self.legal))
        jobs.finish(db, self.job["id"], "done")
        self.transcript = self.new_transcript(job_id=self.job["id"])  # the job's record stays while it has one
        from appliance.transcripts import shares

        self.share = shares.create(db, self.transcript, self.users["member"].id)[1]["id"]
        import numpy as np

        from appliance.integrations import media_links, webhooks
        from appliance.speakers import profiles

        self.voice = profiles.create(
            db,
            workspace_id=self.legal,
            name="Legal counsel",
            consent_note="agreed on 2026-12-01",
            created_by=self.users["admin"].id,
            engine="embedded",
            voice=np.ones(256, np.float32),
        )
        self.hook = webhooks.create(
            db, self.legal, "http://127.0.0.1:9/", ["job.done"], include_text=False, created_by=None, allowed=("127.0.0.1:9",)
        )[0].id
        media_links.add_host(db, "127.0.0.1:9", None)  # nothing listens there

    def new_transcript(self, by: str = "member", job_id: str | None = None) -> str:
        return self.scenario.transcript(
            self.members[by], "confidential", filename="m.wav", workspace_id=self.legal, job_id=job_id, start=0.0
        )

    def fresh_keys(self) -> None:
        """New keys for every persona whose key a test revoked (sign out everywhere)."""
        for name, user in self.users.items():
            if apikeys.resolve(self.db, self.keys[name]) is None:
                self.keys[name] = apikeys.create(self.db, user.id, "matrix", self.scopes[name])[0]

    def headers(self, persona: str) -> dict[str, str]:
        return {} if persona == "anonymous" else {"Authorization": f"Bearer {self.keys[persona]}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, httpx.Client]]:
    from appliance.core.config import load

    root = tmp_path_factory.mktemp("matrix")
    machine = root / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef")
    settings = load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(root / "d"),
            "APPLIANCE_MODELS_DIR": str(root / "m"),
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "50",
            "APPLIANCE_LICENSING__MACHINE_ID_PATH": str(machine),
            # Every persona signs in from 127.0.0.1: the per-address throttle has its own test.
            "APPLIANCE_SECURITY__ADDRESS_ATTEMPTS_PER_MINUTE": "10000",
        },
    )
    w = World(settings)
    with (
        w.scenario.serve(FakeRecognizer()) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield w, client


def _call(client: httpx.Client, w: World, persona: str, method: str, path: str, **kw: Any) -> int:
    if "json" in kw and kw["json"].get("ids") == ["{t}"]:
        kw = {**kw, "json": {**kw["json"], "ids": [w.transcript]}}
    if "json" in kw and kw["json"].get("workspace_id") == "{legal}":
        kw = {**kw, "json": {**kw["json"], "workspace_id": w.legal}}
    return client.request(
        method,
        path.format(
            legal=w.legal,
            job=w.job["id"],
            t=w.transcript,
            admin=w.users["admin"].id,
            carol=w.users["carol"].id,
            dave=w.users["dave"].id,
            nokey="nonexistent",
            share=w.share,
            hook=w.hook,
            voice=w.voice,
        ),
        headers=w.headers(persona),
        **kw,
    ).status_code


# expected status for: anonymous, viewer, member, admin, outsider, revoked
MATRIX: list[tuple[str, str, dict[str, Any], tuple[int, ...]]] = [
    ("GET", "/healthz", {}, (200, 200, 200, 200, 200, 200)),
    ("GET", "/schema/openapi.json", {}, (200, 200, 200, 200, 200, 200)),
    ("GET", "/privacy", {}, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/v1/models", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/me", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/jobs/{job}", {}, (401, 200, 200, 200, 404, 401)),
    ("GET", "/api/v1/jobs/{job}/events", {}, (401, 200, 200, 200, 404, 401)),
    ("DELETE", "/api/v1/jobs/{job}", {}, (401, 403, 200, 200, 404, 401)),
    ("GET", "/api/v1/transcripts", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/transcripts/{t}", {}, (401, 200, 200, 200, 404, 401)),
    ("GET", "/api/v1/transcripts/{t}/export", {"params": {"format": "srt"}}, (401, 200, 200, 200, 404, 401)),
    ("GET", "/api/v1/workspaces", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/workspaces/{legal}/members", {}, (401, 200, 200, 200, 404, 401)),
    ("GET", "/api/v1/workspaces/{legal}/webhooks", {}, (401, 403, 403, 200, 404, 401)),
    ("GET", "/api/v1/webhooks/{hook}/deliveries", {}, (401, 404, 404, 200, 404, 401)),
    ("GET", "/api/v1/workspaces/{legal}/voice-profiles", {}, (401, 200, 200, 200, 404, 401)),
    ("PATCH", "/api/v1/voice-profiles/{voice}", {"json": {"name": "Legal counsel"}}, (401, 403, 403, 200, 404, 401)),
    ("GET", "/api/v1/transcripts/{t}/speakers/analytics", {}, (401, 200, 200, 200, 404, 401)),
    # Local AI: no text model is installed in this world, so starting a summary is a 503 for those allowed to.
    ("GET", "/api/v1/transcripts/{t}/summaries", {}, (401, 200, 200, 200, 404, 401)),
    ("POST", "/api/v1/transcripts/{t}/summaries", {"json": {}}, (401, 403, 503, 503, 404, 401)),
    (
        "PUT",
        "/api/v1/transcripts/{t}/summaries",
        {"json": {"base_version": 1, "summary": {"summary": "s"}}},
        (401, 403, 409, 409, 404, 401),
    ),
    ("POST", "/api/v1/transcripts/{t}/ask", {"json": {"question": "zebra crossing"}}, (401, 200, 200, 200, 404, 401)),
    # Library-wide: Legal's transcripts say "confidential", so its people reach the (missing) model; the
    # outsider's library has nothing about it, answered without a model.
    ("POST", "/api/v1/ask", {"json": {"question": "Anything confidential?"}}, (401, 503, 503, 503, 200, 401)),
    ("GET", "/api/v1/summary-runs/{nokey}", {}, (401, 404, 404, 404, 404, 401)),
    ("GET", "/api/v1/summary-runs/{nokey}/events", {}, (401, 404, 404, 404, 404, 401)),
    ("DELETE", "/api/v1/summary-runs/{nokey}", {}, (401, 403, 404, 404, 404, 401)),
    (
        "PUT",
        "/api/v1/workspaces/{legal}/members",
        {"json": {"email": "carol@example.org", "role": "member"}},
        (401, 403, 403, 200, 404, 401),
    ),
    ("GET", "/api/v1/me/workspace-invitations", {}, (401, 200, 200, 200, 200, 401)),
    ("POST", "/api/v1/me/workspace-invitations/{legal}", {"json": {"accept": True}}, (401, 403, 403, 404, 403, 401)),
    ("GET", "/api/v1/apikeys", {}, (401, 200, 200, 200, 200, 401)),
    # Credentials (keys, passwords, sessions, wrapped private keys) need a session or an admin-scoped key.
    ("POST", "/api/v1/apikeys", {"json": {"name": "x", "scope": "read"}}, (401, 403, 403, 201, 403, 401)),
    ("POST", "/api/v1/apikeys", {"json": {"name": "x", "scope": "admin"}}, (401, 403, 403, 201, 403, 401)),
    ("GET", "/api/v1/users", {}, (401, 403, 403, 200, 403, 401)),
    ("GET", "/api/v1/audit", {}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/invites", {"json": {"email": "new@example.org", "role": "member"}}, (401, 403, 403, 201, 403, 401)),
    ("POST", "/api/v1/users/{carol}/enable", {}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/workspaces", {"json": {"name": "Mine"}}, (401, 403, 201, 201, 201, 401)),
    ("GET", "/api/v1/me/export", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/audit/export", {}, (401, 403, 403, 200, 403, 401)),
    ("GET", "/static/sotto-0.6.css", {}, (200, 200, 200, 200, 200, 200)),
    ("GET", "/setup", {}, (302, 302, 302, 302, 302, 302)),
    (
        "POST",
        "/setup",
        {"data": {"setup_code": "x", "email": "e@example.org", "password": "long password"}},
        (302, 302, 302, 302, 302, 302),
    ),
    (
        "POST",
        "/api/v1/auth/login",
        {"json": {"email": "alice@example.org", "password": "wrong password"}},
        (401, 401, 401, 401, 401, 401),
    ),
    (
        "POST",
        "/api/v1/invites/accept",
        {"json": {"token": "forged", "password": "long password"}},
        (400, 400, 400, 400, 400, 400),
    ),
    ("POST", "/api/v1/auth/logout", {}, (401, 200, 200, 200, 200, 401)),
    (
        "POST",
        "/api/v1/me/password",
        {"json": {"current_password": "wrong one", "new_password": "whatever long"}},
        (401, 403, 403, 400, 403, 401),
    ),
    ("DELETE", "/api/v1/me", {"json": {"password": "wrong one"}}, (401, 403, 403, 400, 403, 401)),
    ("DELETE", "/api/v1/apikeys/{nokey}", {}, (401, 403, 403, 404, 403, 401)),
    (
        "POST",
        "/api/v1/users",
        {"json": {"email": "erin@example.org", "password": "long password", "role": "viewer"}},
        (401, 403, 403, 201, 403, 401),
    ),
    ("POST", "/api/v1/users/{dave}/password", {"json": {"password": "a new long password"}}, (401, 403, 403, 200, 403, 401)),
    ("DELETE", "/api/v1/workspaces/{legal}/members/{dave}", {}, (401, 403, 403, 204, 404, 401)),
    ("POST", "/api/v1/users/{dave}/disable", {}, (401, 403, 403, 200, 403, 401)),
    # Media links: the list is the appliance admins'; an import needs write access to the workspace (the
    # listed host, 127.0.0.1:9, does not answer: 502 for those allowed to try).
    ("GET", "/api/v1/media-hosts", {}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/media-hosts", {"json": {"name": "media.intranet.example"}}, (401, 403, 403, 201, 403, 401)),
    ("DELETE", "/api/v1/media-hosts/{nokey}", {}, (401, 403, 403, 404, 403, 401)),
    # Cluster mode: administrators only; this appliance is a single box, so 404 ("Cluster mode is off").
    ("GET", "/api/v1/admin/cluster", {}, (401, 403, 403, 404, 403, 401)),
    ("POST", "/api/v1/admin/cluster/nodes/{nokey}/drain", {"json": {"drained": True}}, (401, 403, 403, 404, 403, 401)),
    (
        "POST",
        "/api/v1/transcriptions/from-link",
        {"json": {"url": "http://127.0.0.1:9/a.wav", "workspace_id": "{legal}"}},
        (401, 403, 502, 502, 404, 401),
    ),
    ("GET", "/api/v1/license", {}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/license/request", {"json": {"license_key": "ORDER-1"}}, (401, 403, 403, 201, 403, 401)),
    ("POST", "/api/v1/license", {"content": "not a licence"}, (401, 403, 403, 400, 403, 401)),
    ("POST", "/api/v1/license/clock", {"json": {"confirm_now": "2000-01-01T00:00Z"}}, (401, 403, 403, 409, 403, 401)),
    ("GET", "/admin/license", {"follow_redirects": False}, (302, 403, 403, 200, 403, 302)),
    ("GET", "/login", {}, (200, 200, 200, 200, 200, 200)),
    # The UI language: a person's own choice (any signed-in caller), the signed-out selector, the scripts' catalog.
    ("PUT", "/api/v1/me/language", {"json": {"language": None}}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/language", {"params": {"to": "de"}, "follow_redirects": False}, (302, 302, 302, 302, 302, 302)),
    ("GET", "/i18n/de-000000000000.js", {}, (404, 404, 404, 404, 404, 404)),
    ("GET", "/fonts/NotoSansBengali-Regular.ttf", {}, (200, 200, 200, 200, 200, 200)),
    ("GET", "/fonts/..%2Fetc%2Fpasswd", {}, (404, 404, 404, 404, 404, 404)),
    ("POST", "/api/v1/transcripts/export", {"json": {"ids": ["{t}"], "formats": ["txt"]}}, (401, 200, 200, 200, 404, 401)),
    ("GET", "/api/v1/transcripts/{t}/shares", {}, (401, 200, 200, 200, 404, 401)),
    ("POST", "/api/v1/transcripts/{t}/shares", {"json": {}}, (401, 403, 201, 201, 404, 401)),
    ("DELETE", "/api/v1/shares/{share}", {}, (401, 403, 204, 204, 404, 401)),
    ("PUT", "/api/v1/workspaces/{legal}/policy", {"json": {"allow_public_links": True}}, (401, 403, 403, 200, 404, 401)),
    # A workspace's AI settings: its members read them, its admins change them (the restore follows the save).
    ("GET", "/api/v1/workspaces/{legal}/assist", {}, (401, 200, 200, 200, 404, 401)),
    ("PUT", "/api/v1/workspaces/{legal}/assist", {"json": {"instructions": "Be brief."}}, (401, 403, 403, 200, 404, 401)),
    ("POST", "/api/v1/workspaces/{legal}/assist/restore", {"json": {"version": 1}}, (401, 403, 403, 200, 404, 401)),
    ("GET", "/v1/models", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/metrics", {}, (401, 200, 200, 200, 200, 401)),
    ("POST", "/v1/audio/transcriptions", {"data": {"model": "whisper-1"}}, (401, 403, 415, 415, 415, 401)),
    ("POST", "/v1/audio/translations", {"data": {"model": "whisper-1"}}, (401, 403, 415, 415, 415, 401)),
    # The editor and search (the web UI's API).
    (
        "POST",
        "/api/v1/transcripts/{t}/edits",
        {"json": {"base_revision": 1, "force": True, "ops": [{"op": "note", "text": "n"}]}},
        (401, 403, 200, 200, 404, 401),
    ),
    ("POST", "/api/v1/transcripts/{t}/edits", {"json": {"base_revision": 1, "ops": []}}, (401, 403, 400, 400, 404, 401)),
    # Revisions follow the rules for editing (the saves above have kept revision 1).
    ("GET", "/api/v1/transcripts/{t}/revisions", {}, (401, 403, 200, 200, 404, 401)),
    ("GET", "/api/v1/transcripts/{t}/revisions/1", {}, (401, 403, 200, 200, 404, 401)),
    ("POST", "/api/v1/transcripts/{t}/revisions/1/restore", {}, (401, 403, 200, 200, 404, 401)),
    ("GET", "/api/v1/search", {"params": {"q": "hello"}}, (401, 200, 200, 200, 200, 401)),
    ("POST", "/api/v1/transcripts/delete", {"json": {"ids": ["nope"]}}, (401, 403, 404, 404, 404, 401)),
    ("POST", "/api/v1/jobs/{job}/keep", {"json": {"transcript_id": "nope"}}, (401, 403, 404, 404, 404, 401)),
    # Pages want a browser session: an API key (or nobody) is sent to the sign-in page.
    ("GET", "/", {"follow_redirects": False}, (302, 302, 302, 302, 302, 302)),
    ("GET", "/t/{t}", {"follow_redirects": False}, (302, 302, 302, 302, 302, 302)),
    ("GET", "/search", {"follow_redirects": False}, (302, 302, 302, 302, 302, 302)),
    # Private transcripts: the matrix's transcript is a standard one, so its envelope routes answer 404.
    ("GET", "/api/v1/me/private-keys", {}, (401, 403, 403, 404, 403, 401)),
    (
        "PUT",
        "/api/v1/me/private-keys",
        {
            "json": {
                "current_password": "wrong one",
                "kdf": {},
                "wrapped_dk": "",
                "recovery_dk": "",
                "public_key": "",
                "wrapped_private_key": "",
            }
        },
        (401, 403, 403, 400, 403, 401),
    ),
    (
        "POST",
        "/api/v1/me/private-keys/passphrase",
        {"json": {"current_password": "wrong one", "kdf": {}, "wrapped_dk": ""}},
        (401, 403, 403, 400, 403, 401),
    ),
    ("GET", "/api/v1/me/private-keys/rekey", {}, (401, 403, 403, 404, 403, 401)),
    (
        "POST",
        "/api/v1/me/private-keys/rekey",
        {"json": {"current_password": "wrong one", "record": {}, "owned": {}, "received": {}}},
        (401, 403, 403, 400, 403, 401),
    ),
    ("GET", "/api/v1/transcripts/{t}/envelope", {}, (401, 404, 404, 404, 404, 401)),
    ("PUT", "/api/v1/transcripts/{t}/envelope/key", {"json": {"key_envelope": "x"}}, (401, 403, 404, 404, 404, 401)),
    ("PUT", "/api/v1/transcripts/{t}/envelope/body", {"json": {"body": "x", "base_revision": 1}}, (401, 403, 404, 404, 404, 401)),
    # Converting needs keys (nobody here has turned private transcripts on) and well-formed envelopes.
    (
        "POST",
        "/api/v1/transcripts/{t}/convert-to-private",
        {"json": {"key_envelope": "x", "body": "x", "base_revision": 1}},
        (401, 403, 400, 400, 404, 401),
    ),
    ("GET", "/api/v1/private/transcripts", {}, (401, 200, 200, 200, 200, 401)),
    # Sharing a private transcript with a teammate: owner only, private transcripts only.
    ("GET", "/api/v1/transcripts/{t}/recipients", {}, (401, 403, 404, 404, 404, 401)),
    ("PUT", "/api/v1/transcripts/{t}/grants/{carol}", {"json": {"key_envelope": "x"}}, (401, 403, 404, 404, 404, 401)),
    ("DELETE", "/api/v1/transcripts/{t}/grants/{carol}", {}, (401, 403, 404, 404, 404, 401)),
    # Encrypted links: made like plain ones; the snapshot is stored by the link's creator (the member), once.
    ("POST", "/api/v1/transcripts/{t}/sealed-shares", {"json": {}}, (401, 403, 201, 201, 404, 401)),
    ("PUT", "/api/v1/shares/{share}/envelope", {"json": {"envelope": "x"}}, (401, 403, 400, 403, 404, 401)),
    ("GET", "/s/{share}/snapshot", {}, (404, 404, 404, 404, 404, 404)),
    # Second factors (issue #26): the sign-in's second step needs the pending token of a right password.
    ("POST", "/api/v1/auth/login/second-factor", {"json": {"token": "forged", "code": "123456"}}, (401,) * 6),
    ("POST", "/api/v1/auth/login/passkey-options", {"json": {"token": "forged"}}, (401,) * 6),
    ("POST", "/api/v1/auth/login/passkey", {"json": {"token": "forged", "credential": {}}}, (401,) * 6),
    ("GET", "/api/v1/me/second-factors", {}, (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/me/passkeys", {}, (401, 200, 200, 200, 200, 401)),
    # Enrolling, removing and proving factors are credentials: a session or an admin-scoped key. This
    # appliance has no passkey domain configured (409).
    ("POST", "/api/v1/me/totp/confirm", {"json": {"code": "000000"}}, (401, 403, 403, 400, 403, 401)),
    ("POST", "/api/v1/me/totp/remove", {"json": {"password": "wrong one", "code": "1"}}, (401, 403, 403, 404, 403, 401)),
    ("POST", "/api/v1/me/recovery-codes", {"json": {"password": "wrong one", "code": "1"}}, (401, 403, 403, 400, 403, 401)),
    ("POST", "/api/v1/me/second-factor/verify", {"json": {"code": "1"}}, (401, 403, 403, 400, 403, 401)),
    ("POST", "/api/v1/me/second-factor/passkey-options", {}, (401, 403, 403, 409, 403, 401)),
    ("POST", "/api/v1/me/passkeys/options", {}, (401, 403, 403, 409, 403, 401)),
    ("POST", "/api/v1/me/passkeys", {"json": {"credential": {}}}, (401, 403, 403, 409, 403, 401)),
    ("PUT", "/api/v1/me/passkeys/{nokey}", {"json": {"name": "x"}}, (401, 403, 403, 404, 403, 401)),
    ("DELETE", "/api/v1/me/passkeys/{nokey}", {"json": {"password": "wrong one"}}, (401, 403, 403, 400, 403, 401)),
    ("POST", "/api/v1/me/totp", {}, (401, 403, 403, 200, 403, 401)),
    ("GET", "/api/v1/second-factor-policy", {}, (401, 403, 403, 200, 403, 401)),
    ("PUT", "/api/v1/second-factor-policy", {"json": {"roles": []}}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/users/{carol}/second-factors/reset", {}, (401, 403, 403, 200, 403, 401)),
    # Subtitles on a video: anyone who may read the transcript (here without a video: 400); renders are
    # their starter's alone (an unknown one is 404 to everyone).
    ("POST", "/api/v1/transcripts/{t}/video", {}, (401, 400, 400, 400, 404, 401)),
    ("GET", "/api/v1/video-renders/{nokey}", {}, (401, 404, 404, 404, 404, 401)),
    ("GET", "/api/v1/video-renders/{nokey}/file", {}, (401, 404, 404, 404, 404, 401)),
    ("DELETE", "/api/v1/video-renders/{nokey}", {}, (401, 404, 404, 404, 404, 401)),
    # Directory sign-in (not configured here: a check has nothing to check).
    ("GET", "/api/v1/directory", {}, (401, 403, 403, 200, 403, 401)),
    ("POST", "/api/v1/directory/sync", {}, (401, 403, 403, 409, 403, 401)),
    # Single sign-on's back-channel logout (not configured here: nothing to end, for anyone).
    ("POST", "/auth/oidc/backchannel-logout", {"data": {"logout_token": "x"}}, (404,) * 6),
    # Last: an admin's sign-out-everywhere revokes its keys (the tests after this one get fresh keys).
    ("POST", "/api/v1/auth/logout-all", {}, (401, 403, 403, 200, 403, 401)),
]


@pytest.mark.parametrize(("method", "path", "kw", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_route_matrix(
    world: tuple[World, httpx.Client], method: str, path: str, kw: dict[str, Any], expected: tuple[int, ...]
) -> None:
    w, client = world
    got = tuple(_call(client, w, persona, method, path, **kw) for persona in PERSONAS)
    assert got == expected, dict(zip(PERSONAS, got, strict=False))


def test_every_route_is_in_the_matrix(world: tuple[World, httpx.Client]) -> None:
    _, client = world
    app_paths = {p.split("{")[0] for p in client.get("/schema/openapi.json").json()["paths"]}
    covered = {p.split("{")[0] for _, p, _, _ in MATRIX} | {"/api/v1/transcriptions", "/api/v1/transcripts/"}
    assert app_paths <= covered, app_paths - covered


def test_upload_matrix(world: tuple[World, httpx.Client]) -> None:
    w, client = world
    w.fresh_keys()
    got = {}
    for persona in PERSONAS:
        got[persona] = client.post(
            "/api/v1/transcriptions",
            params={"workspace_id": w.legal},
            files={"file": ("a.wav", _wav(), "audio/wav")},
            headers=w.headers(persona),
        ).status_code
    assert got == {"anonymous": 401, "viewer": 403, "member": 202, "admin": 202, "outsider": 404, "revoked": 401}


def test_delete_matrix(world: tuple[World, httpx.Client]) -> None:
    w, client = world
    w.fresh_keys()
    expected = {"anonymous": 401, "viewer": 403, "member": 204, "admin": 204, "outsider": 404, "revoked": 401, "carol": 403}
    for persona, status in expected.items():
        transcript = w.new_transcript(by="member")
        headers = w.headers(persona) if persona != "carol" else {"Authorization": f"Bearer {w.keys['carol']}"}
        assert client.delete(f"/api/v1/transcripts/{transcript}", headers=headers).status_code == status, persona


def test_lists_never_show_other_workspaces(world: tuple[World, httpx.Client]) -> None:
    w, client = world
    outsider = client.get("/api/v1/transcripts", headers=w.headers("outsider")).json()
    assert all(item["workspace_id"] != w.legal for item in outsider["items"])
    viewer = client.get("/api/v1/transcripts", headers=w.headers("viewer")).json()
    assert any(item["id"] == w.transcript for item in viewer["items"])
