import threading
from pathlib import Path

import pytest

from appliance.core import migrations
from appliance.core.db import Databases, connect
from appliance.transcription import jobs


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = connect(tmp_path / "a.db")
    migrations.apply(database)
    return database


def _request(name: str = "a.wav", priority: int = 0) -> jobs.JobRequest:
    return jobs.JobRequest(name, 10, "audio/wav", ["tiny.en"], {"task": "transcribe"}, priority)


def test_db_pragmas(db) -> None:  # type: ignore[no-untyped-def]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_migrations_are_idempotent(db) -> None:  # type: ignore[no-untyped-def]
    migrations.apply(db)
    assert {"jobs", "transcripts", "segments", "words"} <= set(db.table_names())


def test_vault_counts_and_releases() -> None:
    vault = jobs.AudioVault(capacity=100, max_upload=60)
    upload = vault.upload()
    upload.append(b"x" * 50)
    assert vault.used == 50
    vault.put("j1", upload)
    assert vault.get("j1") == b"x" * 50
    with pytest.raises(jobs.VaultFull):
        other = vault.upload()
        other.append(b"y" * 30)
        other.append(b"y" * 30)
    assert vault.used == 50  # the refused upload gave its bytes back
    vault.release("j1")
    assert vault.used == 0 and "j1" not in vault


def test_vault_refuses_upload_over_file_cap() -> None:
    vault = jobs.AudioVault(capacity=1000, max_upload=60)
    upload = vault.upload()
    with pytest.raises(jobs.UploadTooLarge):
        upload.append(b"x" * 61)
    assert vault.used == 0


def test_claim_order_priority_then_age(db) -> None:  # type: ignore[no-untyped-def]
    low = jobs.create(db, _request("low"))
    high = jobs.create(db, _request("high", priority=5))
    assert jobs.claim_next(db)["id"] == high["id"]
    assert jobs.claim_next(db)["id"] == low["id"]
    assert jobs.claim_next(db) is None


def test_claim_never_gives_one_job_twice(tmp_path: Path) -> None:
    databases = Databases(tmp_path / "c.db")
    migrations.apply(databases.get())
    created = {jobs.create(databases.get(), _request(str(i)))["id"] for i in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        db = databases.get()
        while (job := jobs.claim_next(db)) is not None:
            with lock:
                claimed.append(job["id"])

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(created)
    databases.close()


def test_cancel_queued_is_immediate_running_is_requested(db) -> None:  # type: ignore[no-untyped-def]
    queued = jobs.create(db, _request())
    assert jobs.request_cancel(db, queued["id"])["state"] == "cancelled"
    running = jobs.create(db, _request())
    jobs.claim_next(db)
    row = jobs.request_cancel(db, running["id"])
    assert row["state"] == "running" and row["cancel_requested"] == 1
    assert jobs.cancel_requested(db, running["id"])


def test_finish_does_not_overwrite_an_ended_job(db) -> None:  # type: ignore[no-untyped-def]
    job = jobs.create(db, _request())
    jobs.request_cancel(db, job["id"])
    jobs.finish(db, job["id"], "done", transcript_ids=["t"])
    assert jobs.get(db, job["id"])["state"] == "cancelled"


def test_restart_fails_interrupted_jobs_with_reason(db) -> None:  # type: ignore[no-untyped-def]
    finished = jobs.create(db, _request())
    jobs.claim_next(db)
    jobs.finish(db, finished["id"], "done", transcript_ids=["t1"])
    running = jobs.create(db, _request())
    jobs.claim_next(db)
    queued = jobs.create(db, _request())
    assert jobs.fail_interrupted(db) == 2
    for job_id in (running["id"], queued["id"]):
        row = jobs.get(db, job_id)
        assert row["state"] == "failed"
        assert "audio is never kept on disk" in row["error"].lower()
    assert jobs.get(db, finished["id"])["state"] == "done"


def test_progress_is_clamped(db) -> None:  # type: ignore[no-untyped-def]
    job = jobs.create(db, _request())
    jobs.claim_next(db)
    jobs.report_progress(db, job["id"], stage="transcribing", progress=1.7, duration=3.0, eta=1.0)
    doc = jobs.document(jobs.get(db, job["id"]))
    assert doc["progress"] == 1.0 and doc["duration"] == 3.0 and doc["stage"] == "transcribing"
