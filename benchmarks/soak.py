"""Soak: mixed uploads, reads, exports and deletes against one appliance for a while.

    python benchmarks/soak.py PATH/sample.wav [--minutes 10] [--clients 4]

Ends with: the count of 5xx answers (must be 0), memory after the load against memory before it
(must be within ±10%), and a check that every transcript not deleted is intact (same text and word
count as when it was last read or edited). Edits are part of the mix: each client corrects words in
the transcripts it uploaded, against the revision it read.

The baseline is the steady state: after every path has run once, the same mixed load runs for
`--warmup-minutes` (thread pools filled, allocator arenas and SQLite caches at their working size),
then memory is read and the soak proper starts. Growth after that point is what a leak looks like.
`--trace` also compares Python allocations (tracemalloc) between the baseline and the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402

from appliance.accounts import apikeys  # noqa: E402
from appliance.accounts import users as accounts  # noqa: E402
from appliance.core import migrations  # noqa: E402
from appliance.core.config import load  # noqa: E402
from appliance.core.db import connect  # noqa: E402
from appliance.transcription import jobs  # noqa: E402
from benchmarks.load import looped  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup-minutes", type=float, default=1.0)
    parser.add_argument("--trace", action="store_true", help="report the biggest Python allocation growth")
    args = parser.parse_args()

    from appliance.web.app import create_app
    from appliance.web.server import BackgroundServer

    clip, _ = looped(args.audio.read_bytes(), 20)
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(
            None,
            {
                "APPLIANCE_DATA_DIR": tmp,
                "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
                "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1000",
            },
        )
        db = connect(settings.storage.database_path)
        migrations.apply(db)
        key, _ = apikeys.create(
            db, accounts.create(db, "soak@example.org", "soak-test-password", "member").id, "soak", "transcribe"
        )
        with BackgroundServer(create_app(settings)) as server:
            headers = {"Authorization": f"Bearer {key}"}
            client = httpx.Client(base_url=server.url, headers=headers, timeout=600)
            # Warm-up: every path once (model resident, fonts and caches loaded), so the baseline is the
            # steady state, and growth after it means a leak.
            for _ in range(2):
                job = client.post("/api/v1/transcriptions", files={"file": ("warm.wav", clip)}).json()
                while (row := client.get(f"/api/v1/jobs/{job['job_id']}").json())["state"] not in jobs.TERMINAL:
                    time.sleep(0.1)
                for fmt in ("srt", "vtt", "docx", "pdf", "txt"):
                    client.get(f"/api/v1/transcripts/{row['transcript_id']}/export", params={"format": fmt})
                client.delete(f"/api/v1/transcripts/{row['transcript_id']}")
            time.sleep(1)
            cold = proc.memory_info().rss
            server_errors: list[str] = []
            kept: dict[str, tuple[str, int]] = {}
            deleted: set[str] = set()
            lock = threading.Lock()
            deadline = 0.0
            counts = {"uploads": 0, "reads": 0, "exports": 0, "edits": 0, "deletes": 0}
            owner: dict[str, int] = {}

            def check(response: httpx.Response, what: str) -> httpx.Response:
                if response.status_code >= 500:
                    server_errors.append(f"{what} {response.status_code}")
                return response

            def worker(seed: int) -> None:
                rng = random.Random(seed)
                with httpx.Client(base_url=server.url, headers=headers, timeout=600) as c:
                    while time.monotonic() < deadline:
                        action = rng.random()
                        if action < 0.3 or not kept:
                            r = check(c.post("/api/v1/transcriptions", files={"file": ("s.wav", clip)}), "upload")
                            if r.status_code == 202:
                                job_id = r.json()["job_id"]
                                while (row := check(c.get(f"/api/v1/jobs/{job_id}"), "job").json())["state"] not in jobs.TERMINAL:
                                    time.sleep(0.2)
                                if row["state"] == "done":
                                    doc = check(c.get(f"/api/v1/transcripts/{row['transcript_id']}"), "read").json()
                                    with lock:
                                        kept[doc["id"]] = (doc["text"], sum(len(s["words"]) for s in doc["segments"]))
                                        owner[doc["id"]] = seed
                                        counts["uploads"] += 1
                        elif action < 0.6:
                            with lock:
                                tid = rng.choice(list(kept))
                            check(c.get(f"/api/v1/transcripts/{tid}"), "read")
                            check(c.get("/api/v1/transcripts"), "list")
                            counts["reads"] += 1
                        elif action < 0.7:
                            with lock:
                                mine = [t for t in kept if owner.get(t) == seed]
                            if not mine:
                                continue
                            tid = rng.choice(mine)
                            doc = check(c.get(f"/api/v1/transcripts/{tid}"), "read").json()
                            seg = next((s for s in doc["segments"] if s["words"]), None)
                            if seg is None:
                                continue
                            words = [
                                {"word": w["word"].strip() or "x", "start": w["start"], "end": w["end"]} for w in seg["words"]
                            ]
                            words[0]["word"] = rng.choice(["Corrected", "Edited", "Fixed"])
                            r = check(
                                c.post(
                                    f"/api/v1/transcripts/{tid}/edits",
                                    json={
                                        "base_revision": doc["revision"],
                                        "ops": [
                                            {"op": "segment", "sid": seg["sid"], "words": words},
                                            {"op": "note", "text": f"edit {counts['edits']}"},
                                        ],
                                    },
                                ),
                                "edit",
                            )
                            if r.status_code == 200:
                                doc = check(c.get(f"/api/v1/transcripts/{tid}"), "read").json()
                                with lock:
                                    if tid in kept:
                                        kept[tid] = (doc["text"], sum(len(s["words"]) for s in doc["segments"]))
                                    counts["edits"] += 1
                        elif action < 0.9:
                            with lock:
                                tid = rng.choice(list(kept))
                            check(
                                c.get(
                                    f"/api/v1/transcripts/{tid}/export",
                                    params={"format": rng.choice(["srt", "vtt", "docx", "pdf", "txt"])},
                                ),
                                "export",
                            )
                            counts["exports"] += 1
                        else:
                            with lock:
                                tid = rng.choice(list(kept))
                                kept.pop(tid)
                                owner.pop(tid, None)
                                deleted.add(tid)
                            check(c.delete(f"/api/v1/transcripts/{tid}"), "delete")
                            counts["deletes"] += 1

            def run_load(minutes: float, first_seed: int) -> None:
                nonlocal deadline
                deadline = time.monotonic() + minutes * 60
                threads = [threading.Thread(target=worker, args=(first_seed + n,)) for n in range(args.clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                time.sleep(2)

            run_load(args.warmup_minutes, 1000)
            warm_counts = dict(counts)
            counts.update(dict.fromkeys(counts, 0))
            baseline = proc.memory_info().rss
            if args.trace:
                import tracemalloc

                tracemalloc.start(8)
                before_trace = tracemalloc.take_snapshot()
            run_load(args.minutes, 0)
            after = proc.memory_info().rss
            if args.trace:
                growth = tracemalloc.take_snapshot().compare_to(before_trace, "traceback")
                print("biggest Python allocation growth since the baseline:")
                for stat in growth[:8]:
                    print(f"  {stat.size_diff / 2**20:+.1f} MB in {stat.count_diff:+d} blocks at")
                    for line in stat.traceback.format()[-6:]:
                        print(f"    {line}")
                tracemalloc.stop()
            intact = 0
            for tid, (text, words) in kept.items():
                doc = client.get(f"/api/v1/transcripts/{tid}").json()
                intact += doc["text"] == text and sum(len(s["words"]) for s in doc["segments"]) == words
            gone = sum(client.get(f"/api/v1/transcripts/{tid}").status_code == 404 for tid in deleted)
            client.close()
    drift = (after - baseline) / baseline
    print(f"{args.minutes:g} min, {args.clients} clients: {counts}")
    print(f"5xx answers: {len(server_errors)}" + ("".join(f"\n  {e}" for e in server_errors[:10]) if server_errors else ""))
    print(f"warm-up ({args.warmup_minutes:g} min, same mix): {warm_counts}")
    print(
        f"memory: {cold / 2**20:.0f} MB after one pass of each path, {baseline / 2**20:.0f} MB after the warm-up (baseline), "
        f"{after / 2**20:.0f} MB at the end ({drift * 100:+.1f}%, target within ±10%)"
    )
    print(f"transcripts intact: {intact}/{len(kept)}; deleted ones gone: {gone}/{len(deleted)}")
    ok = not server_errors and abs(drift) <= 0.10 and intact == len(kept) and gone == len(deleted)
    print("soak: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
