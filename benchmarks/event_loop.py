"""Does a held SQLite write lock stall the web server? p50/p99 of /healthz, of an authenticated JSON route
and of opening a job's SSE progress stream (connect → first event), first with the database idle, then
while a worker thread in the same process stores a 3-hour transcript (one write transaction of ~1,500
segments and ~26,000 words) and deletes it again (with the checkpoint a delete runs), over and over.

    python -m benchmarks.event_loop [--seconds 20]

Prints each figure and the ratio contended / idle from the same run (machines here are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def _three_hour_result() -> object:
    from appliance.transcription.asr import AsrResult, Segment, Word

    segments, t = [], 0.0
    while t < 3 * 3600:
        words = [Word(t + i * 0.4, t + i * 0.4 + 0.35, f" word{i}", 0.9) for i in range(18)]
        segments.append(Segment(t, t + 7.2, "".join(w.word for w in words), words))
        t += 0.4 * 18 + 0.2
    return AsrResult(segments, "en", 1.0, t, 60.0)


def _writer(db_path: Path, stop: threading.Event, rounds: list[float]) -> None:
    from appliance.core.db import connect
    from appliance.transcripts import store as transcripts

    db = connect(db_path)
    result = _three_hour_result()
    while not stop.is_set():
        began = time.perf_counter()
        tid = transcripts.store(
            db,
            result,
            job_id=None,
            filename="three-hours.flac",
            size_bytes=1,
            model="tiny.en",  # type: ignore[arg-type]
            options={},
            timings={},
        )
        transcripts.delete(db, tid)
        rounds.append(time.perf_counter() - began)
    db.conn.close()


def _sample(call: Callable[[], None], stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        call()
        out.append((time.perf_counter() - began) * 1000)
        time.sleep(0.02)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    args = parser.parse_args(argv)

    from appliance.accounts import apikeys
    from appliance.accounts import users as accounts
    from appliance.core import migrations
    from appliance.core.config import load
    from appliance.core.db import connect
    from appliance.transcription import jobs
    from appliance.web.app import create_app
    from appliance.web.server import BackgroundServer

    root = Path(tempfile.mkdtemp(prefix="sotto-loop-"))
    (root / "models").mkdir()
    settings = load(
        None,
        {
            "APPLIANCE_DATA_DIR": str(root / "data"),
            "APPLIANCE_MODELS_DIR": str(root / "models"),
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
        },
    )
    db = connect(settings.storage.database_path)
    migrations.apply(db)
    user = accounts.create(db, "bench@example.org", "a benchmark password", "admin")
    key, _ = apikeys.create(db, user.id, "bench", "admin")
    job = jobs.create(
        db,
        jobs.JobRequest(
            filename="a.wav",
            size_bytes=1,
            content_type="audio/wav",
            models=["tiny.en"],
            options={},
            user_id=user.id,
            workspace_id=user.personal_workspace_id,
        ),
    )
    db.conn.close()

    headers = {"Authorization": f"Bearer {key}"}
    figures: dict[str, dict[str, list[float]]] = {}
    with BackgroundServer(create_app(settings)) as server:
        url = server.url
        with (
            httpx.Client(base_url=url, timeout=120) as health,
            httpx.Client(base_url=url, timeout=120, headers=headers) as api,
            httpx.Client(base_url=url, timeout=120, headers=headers) as sse,
        ):

            def first_event() -> None:
                with sse.stream("GET", f"/api/v1/jobs/{job['id']}/events") as response:
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            return

            probes = {
                "healthz": lambda: health.get("/healthz").raise_for_status(),
                "api": lambda: api.get("/api/v1/transcripts").raise_for_status(),
                "sse": first_event,
            }
            for phase in ("idle", "writing"):
                stop, rounds = threading.Event(), []
                results: dict[str, list[float]] = {name: [] for name in probes}
                threads = [threading.Thread(target=_sample, args=(call, stop, results[name])) for name, call in probes.items()]
                if phase == "writing":
                    threads.append(threading.Thread(target=_writer, args=(settings.storage.database_path, stop, rounds)))
                for t in threads:
                    t.start()
                time.sleep(args.seconds)
                stop.set()
                for t in threads:
                    t.join()
                figures[phase] = results
                if rounds:
                    print(
                        f"writer: {len(rounds)} store+delete rounds of a 3-hour transcript, {statistics.median(rounds):.1f} s each"
                    )
    print(f"{'route':10} {'idle p50':>9} {'idle p99':>9} {'write p50':>10} {'write p99':>10} {'p99 ratio':>10}")
    for name in figures["idle"]:
        idle, busy = figures["idle"][name], figures["writing"][name]
        print(
            f"{name:10} {_pct(idle, 50):8.1f}ms {_pct(idle, 99):8.1f}ms {_pct(busy, 50):9.1f}ms {_pct(busy, 99):9.1f}ms "
            f"{_pct(busy, 99) / _pct(idle, 99):9.1f}x  (n={len(idle)}/{len(busy)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
