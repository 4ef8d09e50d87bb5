"""The web server's side of cluster mode: start the dispatcher (before the egress lock), keep the
issued nodes and the licence's GPU limit in step with it, and run jobs through it.

Each job thread of the worker holds one `Session` (a Unix-socket connection): it first gets a replica
(`acquire`), then claims a queued job, so no job shows "running" while it waits for a GPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path

from appliance.cluster import protocol, ray_node
from appliance.cluster.keys import CONTROL_NAME, Authority, NodeKeys, TlsFiles
from appliance.cluster.replica import GpuMemory
from appliance.core.config import Settings
from appliance.transcription.pipeline import ModelOutput, Progress

log = logging.getLogger("appliance.cluster")
START_SECONDS = 180.0


class ClusterError(RuntimeError):
    """The cluster could not start or a job could not be run on it; the message says why."""


class NodeLost(ClusterError):
    """The worker node running a job stopped, and so did (or no) other one: the job failed."""


def control_keys(settings: Settings) -> TlsFiles:
    """The control node's own key and certificate, issued by the cluster CA for its cluster address
    (made again if the address changed)."""
    directory = settings.storage.data_dir / "cluster"
    authority = Authority(directory)
    tls = TlsFiles(directory / "tls" / "node.key", directory / "tls" / "node.crt", directory / "tls" / "ca.crt")
    marker = directory / "tls" / "address"
    current = marker.read_text().strip() if marker.is_file() else ""
    if not (tls.key.is_file() and tls.cert.is_file()) or current != settings.cluster.address or not authority.exists():
        keys: NodeKeys = authority.issue(CONTROL_NAME, settings.cluster.address)
        keys.write_tls_files(directory / "tls")
        marker.write_text(settings.cluster.address)
    return tls


class Cluster:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.socket_path = settings.storage.data_dir / "run" / "cluster.sock"
        self.authkey = secrets.token_bytes(32)
        self.process: subprocess.Popen[str] | None = None
        self._configured: tuple[dict[str, bool], int | None] | None = None

    def start(self) -> None:
        """Start the dispatcher and the cluster's head; returns once they answer."""
        tls = control_keys(self.settings)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance.cluster.dispatcher", str(self.socket_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # Set before the interpreter starts: Ray's native code reads them once, early.
            env={**os.environ, **ray_node.environment(tls)},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(self.authkey.hex() + "\n")
        self.process.stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(
            target=lambda: answer.append(self.process.stdout.readline() if self.process and self.process.stdout else "")
        )
        reader.start()
        reader.join(START_SECONDS)
        if not answer or answer[0].strip() != "ready":
            self.stop()
            raise ClusterError(
                f"the cluster head did not start within {int(START_SECONDS)} s on {self.settings.cluster.address}:"
                f"{self.settings.cluster.port} (its messages are above)"
            )
        log.info("cluster head up on %s:%d", self.settings.cluster.address, self.settings.cluster.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.close()  # the dispatcher ends with its head when its stdin closes
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.process = None

    def connect(self) -> Connection:
        return Client(str(self.socket_path), family="AF_UNIX", authkey=self.authkey)

    def configure(self, nodes: dict[str, bool], gpu_limit: int | None) -> None:
        """Tell the dispatcher which nodes were issued keys (and drained), and the licence's GPU limit."""
        if self._configured == (nodes, gpu_limit):
            return
        with self.connect() as conn:
            conn.send(protocol.Configure(nodes, gpu_limit))
            conn.recv()
        self._configured = (dict(nodes), gpu_limit)

    def status(self) -> protocol.ClusterStatus | None:
        try:
            with self.connect() as conn:
                conn.send(protocol.StatusRequest())
                if conn.poll(5):
                    answer = conn.recv()
                    return answer if isinstance(answer, protocol.ClusterStatus) else None
        except (OSError, EOFError):
            pass
        return None

    def session(self) -> Session:
        return Session(self)


class Session:
    """One job thread's connection to the dispatcher."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.conn: Connection | None = None

    def _conn(self) -> Connection:
        if self.conn is None:
            self.conn = self.cluster.connect()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def acquire(self, timeout: float) -> str | None:
        """Hold a free replica for the next job; its node's name, or None if none came free in time."""
        try:
            conn = self._conn()
            conn.send(protocol.Acquire(timeout))
            lease = conn.recv()
        except (OSError, EOFError):
            self.close()
            return None
        return lease.node if isinstance(lease, protocol.Lease) else None

    def release(self) -> None:
        try:
            self._conn().send(protocol.Release())
        except (OSError, EOFError):
            self.close()

    def run(
        self,
        job_id: str,
        data: bytes,
        raw: dict[str, object],
        keep_voices: bool,
        *,
        on_started: Callable[[str, int], None],
        on_progress: Callable[[Progress], None],
        on_text: Callable[[str], None] | None,
        cancelled: Callable[[], bool],
    ) -> list[ModelOutput]:
        conn = self._conn()
        try:
            conn.send(protocol.Run(job_id, data, raw, keep_voices))
            del data
            cancel_sent = False
            while True:
                if not conn.poll(0.25):
                    if not cancel_sent and cancelled():
                        conn.send(protocol.Cancel())
                        cancel_sent = True
                    continue
                message = conn.recv()
                if isinstance(message, protocol.Started):
                    on_started(message.node, message.attempt)
                elif isinstance(message, protocol.Progressed):
                    if message.progress is not None:
                        on_progress(message.progress)
                    if on_text is not None:
                        for text in message.texts:
                            on_text(text)
                elif isinstance(message, protocol.Finished):
                    return message.outputs
                elif isinstance(message, protocol.Failed):
                    raise _error(message)
        except (OSError, EOFError):
            self.close()
            raise ClusterError(
                "The cluster's dispatcher stopped while this recording was being transcribed. Send it again."
            ) from None


def _error(failed: protocol.Failed) -> Exception:
    """The replica's exception as the worker knows it, so a job fails with the same words as on one box."""
    from appliance.transcription.asr import Cancelled, ModelError
    from appliance.transcription.audio import AudioError
    from appliance.transcription.diarization import DiarizationError
    from appliance.transcription.options import OptionsError

    known: dict[str, Callable[[str], Exception]] = {
        "AudioError": AudioError,
        "ModelError": ModelError,
        "OptionsError": OptionsError,
        "DiarizationError": DiarizationError,
        "NodeLost": NodeLost,
        "MemoryError": MemoryError,
        "Cancelled": lambda message: Cancelled(),
    }
    make = known.get(failed.kind)
    if make is None:
        return ClusterError(f"Internal error while transcribing on a worker node ({failed.kind}). Other jobs are unaffected.")
    return make(failed.message)


def status_path(settings: Settings) -> Path:
    return settings.storage.data_dir / "run" / "cluster-status.json"


def write_status(settings: Settings, status: protocol.ClusterStatus) -> None:
    """For `appliance cluster nodes` in another process: names, states, counts and GPU memory, no content."""
    path = status_path(settings)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"written_at": time.time(), "status": dataclasses.asdict(status)}))
    tmp.replace(path)


def read_status(settings: Settings, max_age: float = 30.0) -> protocol.ClusterStatus | None:
    """The status the running server wrote last, if it is fresh (else the server is not running)."""
    try:
        document = json.loads(status_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if time.time() - float(document.get("written_at", 0)) > max_age:
        return None
    raw = document["status"]
    nodes = [protocol.NodeStatus(**{**n, "gpu_memory": tuple(GpuMemory(**g) for g in n["gpu_memory"])}) for n in raw["nodes"]]
    return protocol.ClusterStatus(nodes, raw["cluster_gpus"], raw["licensed_gpus"], list(raw["unknown_nodes"]))
