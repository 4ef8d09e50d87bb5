import threading
from pathlib import Path

from appliance.core import migrations
from appliance.core.db import Databases
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcripts import store as transcripts


def _result(text: str) -> AsrResult:
    words = [Word(i * 0.5, i * 0.5 + 0.4, f" {w}", 0.9) for i, w in enumerate(text.split())]
    return AsrResult([Segment(0.0, 2.0, text, words)], "en", 1.0, 2.0, 0.1)


def test_concurrent_writers_and_deletes_never_hit_a_locked_database(tmp_path: Path) -> None:
    # sqlite-utils reads the schema before inserting; without BEGIN IMMEDIATE a concurrent commit makes
    # SQLite refuse the transaction at once (SQLITE_BUSY_SNAPSHOT). This is the worker + web pattern.
    databases = Databases(tmp_path / "t.db")
    migrations.apply(databases.get())
    errors: list[BaseException] = []
    stored: list[str] = []

    def writer(n: int) -> None:
        db = databases.get()
        try:
            for i in range(25):
                transcript_id = transcripts.store(
                    db,
                    _result(f"writer {n} item {i}"),
                    job_id=None,
                    filename="a.wav",
                    size_bytes=1,
                    model="m",
                    options={},
                    timings={},
                )
                stored.append(transcript_id)
                if i % 5 == 0:
                    transcripts.delete(db, transcript_id)  # checkpoints while others write
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    page = transcripts.list_page(databases.get(), limit=500, offset=0)
    assert page["total"] == 3 * 25 - 3 * 5
    doc = transcripts.get(databases.get(), page["items"][0]["id"])
    assert doc is not None and doc.segments[0].words
    databases.close()
