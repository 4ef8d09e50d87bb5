"""An appliance started as its own process for a benchmark (`appliance serve`, as in production).

with Served({"APPLIANCE_WORKER__SHARE_IDLE_LANES": "false"}) as app:
    seconds = app.transcribe(wav)
app.peak_rss  # the kernel's high-water mark of its resident memory, read just before it stopped
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from appliance.accounts import apikeys
from appliance.accounts import users as accounts
from appliance.core import migrations
from appliance.core.config import load
from appliance.core.db import connect
from appliance.transcription import jobs
from appliance.web.server import free_port


def high_water_mark(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/<pid>/status")


class Served:
    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.env = {
            **os.environ,
            "APPLIANCE_DATA_DIR": self._tmp.name,
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "1000",
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYANNOTE_METRICS_ENABLED": "0",
            "DO_NOT_TRACK": "1",
            **(overrides or {}),
        }
        self.settings = load(None, self.env)
        self.peak_rss = 0
        self.startup = 0.0

    def __enter__(self) -> Served:
        db = connect(self.settings.storage.database_path)
        migrations.apply(db)
        user = accounts.create(db, "bench@example.org", "bench-test-password", "member")
        self.key, _ = apikeys.create(db, user.id, "bench", "transcribe")
        db.close()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(Path(self._tmp.name) / "serve.log", "wb")
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from appliance.cli import app; app()", "serve", "--port", str(port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=3600)
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the appliance exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        self.startup = time.perf_counter() - began
        return self

    def log(self) -> str:
        return (Path(self._tmp.name) / "serve.log").read_text(errors="replace")

    def transcribe(self, wav: bytes, name: str = "bench.wav") -> float:
        """Upload, wait for the job to end (server-sent events), fetch the transcript: wall seconds."""
        began = time.perf_counter()
        response = self.client.post("/api/v1/transcriptions", files={"file": (name, wav, "audio/wav")})
        response.raise_for_status()
        job_id = response.json()["job_id"]
        with self.client.stream("GET", f"/api/v1/jobs/{job_id}/events") as events:
            for _ in events.iter_lines():
                pass
        job = self.client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] != "done":
            raise RuntimeError(f"job ended {job['state']}: {job.get('error')}")
        for transcript_id in job["transcript_ids"]:
            self.client.get(f"/api/v1/transcripts/{transcript_id}").raise_for_status()
        assert job["state"] in jobs.TERMINAL
        return time.perf_counter() - began

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # gone already: no figure rather than a wrong one
            self.peak_rss = high_water_mark(self.process.pid)
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self._tmp.cleanup()
