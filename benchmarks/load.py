"""Load benchmark: N concurrent clients against one appliance, compared with sequential faster-whisper.

    python benchmarks/load.py PATH/sample.wav [--clients 8] [--seconds 120] [--workers 1] [--cpu-threads 0]

Each client uploads the recording looped to `--seconds` and waits for its transcript. In the same run,
the same model transcribes the same audio sequentially with faster-whisper (word timestamps), as a
peer server would. Printed: aggregate audio seconds per wall second and its ratio to sequential,
p50/p95/p99 latency of GET /healthz, of the library page (GET /, the HTML a person sees) and of its API
(GET /api/v1/transcripts) during the load, peak memory (whole process), start-up time, errors, and whether jobs started in arrival order.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from appliance import accounts, apikeys, jobs, migrations  # noqa: E402
from appliance.audio import decode  # noqa: E402
from appliance.config import load  # noqa: E402
from appliance.db import connect  # noqa: E402


def looped(data: bytes, seconds: float) -> tuple[bytes, np.ndarray]:
    samples = decode(data).samples
    reps = int(np.ceil(seconds * 16000 / len(samples)))
    audio = np.tile(samples, reps)[: int(seconds * 16000)]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue(), audio


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=1, help="worker threads (jobs at once) per device")
    parser.add_argument("--cpu-threads", type=int, default=0)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from appliance.asr import ModelRegistry, resolve_device
    from appliance.web.app import create_app
    from appliance.web.server import BackgroundServer

    wav, audio = looped(args.audio.read_bytes(), args.seconds)
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample_memory() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    threading.Thread(target=sample_memory, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"APPLIANCE_DATA_DIR": tmp, "APPLIANCE_WORKER__WORKERS_PER_DEVICE": str(args.workers),
               "APPLIANCE_MODELS__CPU_THREADS": str(args.cpu_threads), "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1000",
               "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000"}
        settings = load(None, env)
        model = ModelRegistry(settings.models.models_dir).get(settings.models.default_model)
        device, compute = resolve_device(settings.models)

        # Sequential faster-whisper, as a peer serves it: one request at a time, word timestamps.
        whisper = WhisperModel(str(model.path), device=device, compute_type=compute, cpu_threads=args.cpu_threads)
        list(whisper.transcribe(audio[:16000 * 5], word_timestamps=True)[0])  # warm-up
        started = time.perf_counter()
        list(whisper.transcribe(audio, word_timestamps=True, beam_size=5)[0])
        sequential = time.perf_counter() - started
        del whisper

        db = connect(settings.storage.database_path)
        migrations.apply(db)
        key, _ = apikeys.create(db, accounts.create(db, "load@example.org", "load-test-password", "member").id, "load", "transcribe")
        startup_began = time.perf_counter()
        app = create_app(settings)
        with BackgroundServer(app) as server:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, timeout=10) as probe:
                while probe.get("/healthz").status_code != 200:
                    time.sleep(0.01)
            startup = time.perf_counter() - startup_began
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as warm:  # model loaded once
                job = warm.post("/api/v1/transcriptions", files={"file": ("warm.wav", wav[: 44 + 16000 * 2 * 3])}).json()
                while warm.get(f"/api/v1/jobs/{job['job_id']}").json()["state"] not in jobs.TERMINAL:
                    time.sleep(0.05)

            errors: list[str] = []
            latencies: dict[str, list[float]] = {"/healthz": [], "/": [], "/api/v1/transcripts": []}
            load_done = threading.Event()

            def prober() -> None:
                # Signed in as a person is (session cookie), so "/" is the library page, not a redirect.
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    client.post("/api/v1/auth/login", json={"email": "load@example.org", "password": "load-test-password"})
                    while not load_done.is_set():
                        for path, values in latencies.items():
                            t = time.perf_counter()
                            response = client.get(path)
                            values.append((time.perf_counter() - t) * 1000)
                            if response.status_code != 200:  # a redirect to sign-in would time the wrong page
                                errors.append(f"{path} {response.status_code}")
                        time.sleep(0.1)

            job_ids: list[str] = []
            lock = threading.Lock()

            def user(n: int) -> None:
                try:
                    with httpx.Client(base_url=server.url, headers=headers, timeout=900) as client:
                        response = client.post("/api/v1/transcriptions", files={"file": (f"c{n}.wav", wav, "audio/wav")})
                        if response.status_code != 202:
                            errors.append(f"upload {response.status_code} {response.text[:80]}")
                            return
                        job_id = response.json()["job_id"]
                        with lock:
                            job_ids.append(job_id)
                        with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as events:
                            last = None
                            for line in events.iter_lines():
                                if line.startswith("data:"):
                                    last = line
                        if not last or '"state": "done"' not in last:
                            errors.append(f"job {job_id} did not finish: {(last or '')[:120]}")
                except Exception as exc:  # noqa: BLE001 - counted, not fatal
                    errors.append(repr(exc))

            threading.Thread(target=prober, daemon=True).start()
            began = time.perf_counter()
            clients = [threading.Thread(target=user, args=(n,)) for n in range(args.clients)]
            for c in clients:
                c.start()
                time.sleep(0.05)  # a definite arrival order
            for c in clients:
                c.join()
            wall = time.perf_counter() - began
            load_done.set()
            rows = {r["id"]: r for r in db.query("SELECT id, created_at, started_at FROM jobs")}
            arrival = [j for j in sorted(job_ids, key=lambda j: rows[j]["created_at"])]
            started_order = sorted(job_ids, key=lambda j: rows[j]["started_at"] or "~")
    stop.set()

    total_audio = args.clients * args.seconds
    aggregate = total_audio / wall
    seq_rate = args.seconds / sequential
    print(f"audio: {args.audio.name} looped to {args.seconds:.0f} s; {args.clients} clients; workers/device {args.workers}; "
          f"model {model.name} on {device} ({compute})")
    print(f"sequential faster-whisper: {sequential:.2f} s for {args.seconds:.0f} s = {seq_rate:.1f} audio s/s")
    print(f"appliance under load:      {wall:.2f} s for {total_audio:.0f} s = {aggregate:.1f} audio s/s")
    print(f"aggregate vs sequential:   {aggregate / seq_rate:.2f}x  (target >= 1.25x)")
    for path, values in latencies.items():
        label = "/ (library page)" if path == "/" else path
        print(f"{label:<22} p50 {percentile(values, 50):7.1f} ms  p95 {percentile(values, 95):7.1f} ms  "
              f"p99 {percentile(values, 99):7.1f} ms  (n={len(values)}; target p99 < 100 ms)")
    print(f"peak memory (whole process): {peak[0] / 2**20:.0f} MB  (target < 1200 MB)")
    print(f"start-up (app built to healthy): {startup:.2f} s  (target < 3 s)")
    print(f"jobs started in arrival order: {arrival == started_order}")
    print(f"errors: {len(errors)}" + ("".join(f"\n  {e}" for e in errors[:10]) if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
