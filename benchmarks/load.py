"""Load benchmark: N concurrent clients against one appliance, compared with sequential faster-whisper.

    python benchmarks/load.py PATH/sample.wav [--clients 8] [--seconds 120] [--workers N] [--cpu-threads N] [--unshared]

The appliance runs as its own process (`appliance serve`, as in production), so the load generators
here do not share its interpreter. Each client uploads the recording looped to `--seconds` and waits for
its transcript. In the same run, before and after the load, the same model transcribes the same audio
sequentially with faster-whisper's defaults (word timestamps, every core), as a peer server would; the
ratio is taken against the faster of the two baseline runs. Printed: aggregate audio seconds per wall
second and its ratio to sequential, p50/p95/p99 latency of GET /healthz, of the library page (GET /, the
HTML a person sees) and of its API (GET /api/v1/transcripts) during the load, the appliance's peak
memory, its start-up time (process start to healthy), CPU used by the appliance and by the load
generators, errors, and whether jobs started in arrival order.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
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

from appliance.accounts import apikeys  # noqa: E402
from appliance.accounts import users as accounts  # noqa: E402
from appliance.core import migrations  # noqa: E402
from appliance.core.config import load  # noqa: E402
from appliance.core.db import connect  # noqa: E402
from appliance.transcription import jobs  # noqa: E402
from appliance.transcription.audio import decode  # noqa: E402
from appliance.web.server import free_port  # noqa: E402


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


def sequential_seconds(model_path: Path, device: str, compute: str, audio: np.ndarray) -> float:
    """One request at a time through faster-whisper with its defaults (beam 5, all cores), word timestamps."""
    from faster_whisper import WhisperModel

    whisper = WhisperModel(str(model_path), device=device, compute_type=compute)
    list(whisper.transcribe(audio[: 16000 * 5], word_timestamps=True)[0])  # warm-up
    started = time.perf_counter()
    list(whisper.transcribe(audio, word_timestamps=True, beam_size=5)[0])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=None, help="jobs at once per device (default: the appliance's)")
    parser.add_argument("--cpu-threads", type=int, default=None, help="CPU threads per job (default: the appliance's)")
    parser.add_argument("--unshared", action="store_true", help="worker.share_idle_lanes = false (each job on its own lane)")
    args = parser.parse_args()

    from appliance.transcription.asr import ModelRegistry, resolve_device
    from appliance.transcription.capacity import for_settings

    wav, audio = looped(args.audio.read_bytes(), args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "APPLIANCE_DATA_DIR": tmp,
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1000",
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYANNOTE_METRICS_ENABLED": "0",
            "DO_NOT_TRACK": "1",
        }
        if args.workers is not None:
            env["APPLIANCE_WORKER__WORKERS_PER_DEVICE"] = str(args.workers)
        if args.cpu_threads is not None:
            env["APPLIANCE_MODELS__CPU_THREADS"] = str(args.cpu_threads)
        if args.unshared:
            env["APPLIANCE_WORKER__SHARE_IDLE_LANES"] = "false"
        settings = load(None, env)
        model = ModelRegistry(settings.models.models_dir).get(settings.models.default_model)
        device, compute = resolve_device(settings.models)
        capacity = for_settings(settings)
        workers, threads = capacity.workers_per_device, capacity.cpu_threads

        sequential = [sequential_seconds(model.path, device, compute, audio)]

        db = connect(settings.storage.database_path)
        migrations.apply(db)
        key, _ = apikeys.create(
            db, accounts.create(db, "load@example.org", "load-test-password", "member").id, "load", "transcribe"
        )
        db.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115 - the server writes to it until the finally below closes it
        startup_began = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-c", "from appliance.cli import app; app()", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        appliance = psutil.Process(server.pid)
        peak_sampled = [0]
        stop = threading.Event()

        def sample_memory() -> None:  # the exact peak comes from the kernel at exit; this shows it live
            while not stop.is_set():
                try:
                    peak_sampled[0] = max(peak_sampled[0], appliance.memory_info().rss)
                except psutil.NoSuchProcess:
                    return
                time.sleep(0.2)

        errors: list[str] = []
        latencies: dict[str, list[float]] = {"/healthz": [], "/": [], "/api/v1/transcripts": []}
        job_ids: list[str] = []
        try:
            with httpx.Client(base_url=url, timeout=10) as probe:
                while True:
                    if server.poll() is not None:
                        raise SystemExit(
                            f"the appliance exited with {server.returncode}; see its log:\n"
                            + (Path(tmp) / "serve.log").read_text(errors="replace")[-2000:]
                        )
                    try:
                        if probe.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.01)
            startup = time.perf_counter() - startup_began
            threading.Thread(target=sample_memory, daemon=True).start()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=600) as warm:  # model loaded once
                job = warm.post("/api/v1/transcriptions", files={"file": ("warm.wav", wav[: 44 + 16000 * 2 * 3])}).json()
                while warm.get(f"/api/v1/jobs/{job['job_id']}").json()["state"] not in jobs.TERMINAL:
                    time.sleep(0.05)
            cpu_before = appliance.cpu_times()
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            load_done = threading.Event()

            def prober() -> None:
                # Signed in as a person is (session cookie), so "/" is the library page, not a redirect.
                with httpx.Client(base_url=url, timeout=30) as client:
                    client.post("/api/v1/auth/login", json={"email": "load@example.org", "password": "load-test-password"})
                    while not load_done.is_set():
                        for path, values in latencies.items():
                            t = time.perf_counter()
                            response = client.get(path)
                            values.append((time.perf_counter() - t) * 1000)
                            if response.status_code != 200:  # a redirect to sign-in would time the wrong page
                                errors.append(f"{path} {response.status_code}")
                        time.sleep(0.1)

            lock = threading.Lock()

            def user(n: int) -> None:
                try:
                    with httpx.Client(base_url=url, headers=headers, timeout=900) as client:
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
                except Exception as exc:
                    errors.append(repr(exc))

            probe_thread = threading.Thread(target=prober, daemon=True)
            probe_thread.start()
            began = time.perf_counter()
            clients = [threading.Thread(target=user, args=(n,)) for n in range(args.clients)]
            for c in clients:
                c.start()
                time.sleep(0.05)  # a definite arrival order
            for c in clients:
                c.join()
            wall = time.perf_counter() - began
            load_done.set()
            probe_thread.join(30)
            cpu_after = appliance.cpu_times()
            own_after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            stop.set()
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        # ru_maxrss of the waited child: the kernel's record of the appliance's peak, in KiB on Linux.
        peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, peak_sampled[0])

        sequential.append(sequential_seconds(model.path, device, compute, audio))
        db = connect(settings.storage.database_path)
        rows = {r["id"]: r for r in db.query("SELECT id, created_at, started_at FROM jobs")}
        arrival = sorted(job_ids, key=lambda j: rows[j]["created_at"])
        # Two lanes claim two jobs in the same millisecond (the timestamps' resolution): such a tie is
        # no disorder, so ties go by arrival rather than by whichever upload's reply came back first.
        started_order = sorted(job_ids, key=lambda j: (rows[j]["started_at"] or "~", rows[j]["created_at"]))

    total_audio = args.clients * args.seconds
    aggregate = total_audio / wall
    seq_rate = args.seconds / min(sequential)
    appliance_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    own_cpu = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    print(
        f"audio: {args.audio.name} looped to {args.seconds:.0f} s; {args.clients} clients; model {model.name} on {device} "
        f"({compute}); appliance: {workers} job(s) at once x {threads or 'all'} CPU thread(s)"
    )
    print(
        f"sequential faster-whisper: {sequential[0]:.2f} s before, {sequential[1]:.2f} s after the load for "
        f"{args.seconds:.0f} s; the faster = {seq_rate:.1f} audio s/s"
    )
    print(f"appliance under load:      {wall:.2f} s for {total_audio:.0f} s = {aggregate:.1f} audio s/s")
    print(f"aggregate vs sequential:   {aggregate / seq_rate:.2f}x  (target >= 1.25x)")
    for path, values in latencies.items():
        label = "/ (library page)" if path == "/" else path
        print(
            f"{label:<22} p50 {percentile(values, 50):7.1f} ms  p95 {percentile(values, 95):7.1f} ms  "
            f"p99 {percentile(values, 99):7.1f} ms  (n={len(values)}; target p99 < 100 ms)"
        )
    print(
        f"CPU during the load: appliance {appliance_cpu:.1f} s, load generators {own_cpu:.1f} s, "
        f"of {wall * psutil.cpu_count():.1f} s available"
    )
    print(f"peak memory (appliance process): {peak / 2**20:.0f} MB  (target < 1200 MB)")
    print(f"start-up (process start to healthy): {startup:.2f} s  (target < 3 s)")
    print(f"jobs started in arrival order: {arrival == started_order}")
    print(f"errors: {len(errors)}" + ("".join(f"\n  {e}" for e in errors[:10]) if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
