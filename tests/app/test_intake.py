"""The upload use case on its own (no HTTP): real SQLite file, real audio vault, real options and probe.
Whatever is refused leaves nothing behind: no job row, no audio in memory, no slot held."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from appliance.accounts import apikeys, authz
from appliance.accounts import users as accounts
from appliance.app.intake import Recording, UploadIntake
from appliance.core.config import Settings
from appliance.transcription import audio, jobs
from appliance.transcription.options import OptionsError
from appliance.web.services import Services, build
from tests.support import bootstrap

ALICE = "alice@example.org"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    bootstrap(settings)
    services = build(settings)
    with services.databases.borrowed() as db:
        from appliance.core import migrations

        migrations.apply(db)
    yield services
    services.databases.close()


def _principal(services: Services) -> authz.Principal:
    with services.databases.borrowed() as db:
        user = accounts.by_email(db, ALICE)
        assert user is not None
        key_id = apikeys.for_user(db, user.id)[0]["id"]
    return authz.Principal(user, "key", "transcribe", key_id=key_id)


def _recording(services: Services, data: bytes, name: str = "clip.wav") -> Recording:
    upload = jobs.Upload(services.vault)
    upload.append(data)
    return Recording(upload, name, "audio/wav")


def _submit(uploads: UploadIntake, principal: authz.Principal, recording: Recording, options: dict[str, object]) -> dict:  # type: ignore[type-arg]
    async def run() -> dict:  # type: ignore[type-arg]
        slot = await uploads.reserve(principal, None)
        try:
            return await uploads.submit(slot, principal, recording, options, None)
        finally:
            slot.release()

    return asyncio.run(run())


def _nothing_left(services: Services) -> None:
    assert services.vault.used == 0  # no audio held in memory
    assert services.gate is not None and services.gate.uploading() == 0  # no slot held
    with services.databases.borrowed() as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("data", "options", "error", "says"),
    [
        (None, {"beam_size": "99"}, OptionsError, "beam_size must be a whole number from 1 to 20"),
        (None, {"model": "no-such-model"}, OptionsError, "unknown model"),
        (b"this is a text file, not a recording" * 100, {}, audio.AudioError, "audio"),
    ],
)
def test_refused_uploads_leave_nothing_behind(
    services: Services, speech_bytes: bytes, data: bytes | None, options: dict[str, object], error: type, says: str
) -> None:
    uploads = services.uploads
    assert uploads is not None
    with pytest.raises(error, match=says):
        _submit(uploads, _principal(services), _recording(services, data or speech_bytes), options)
    _nothing_left(services)


def test_an_accepted_upload_is_one_queued_job_holding_its_audio(services: Services, speech_bytes: bytes) -> None:
    uploads = services.uploads
    assert uploads is not None
    row = _submit(uploads, _principal(services), _recording(services, speech_bytes), {"language": "en", "beam_size": 2})
    assert row["state"] == "queued" and row["filename"] == "clip.wav"
    assert row["id"] in services.vault and services.vault.used == len(speech_bytes)
    assert services.gate is not None and services.gate.uploading() == 0  # the slot became the job row
