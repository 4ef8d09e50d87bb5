"""A real local cluster on this machine: a control node (`appliance serve`, cluster mode on) and worker
nodes (`appliance worker --join`), each its own process tree, optionally under strace from its first
instruction. Used by tests/cluster/test_cluster.py and by benchmarks/cluster.py (same nodes, no strace).

Ray nodes advertise a real address (never loopback), so every node uses this machine's address, each
with its own ports; data dirs sit under a short path (Ray puts Unix sockets in its session dir there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from appliance.web.server import free_port
from tests.strace_support import TRACED, _strace
from tests.support import REPO, bootstrap, settings_in

OBJECT_STORE = str(100 * 1024 * 1024)
PORT_KEYS = (
    "NODE_MANAGER_PORT",
    "OBJECT_MANAGER_PORT",
    "RUNTIME_ENV_AGENT_PORT",
    "DASHBOARD_AGENT_GRPC_PORT",
    "DASHBOARD_AGENT_LISTEN_PORT",
    "METRICS_EXPORT_PORT",
)
APPLIANCE = ("-c", "from appliance.cli import app; app()")


class NoAddress(RuntimeError):
    """This machine has no non-loopback IPv4 address for Ray nodes to advertise."""


def machine_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("172.17."):  # Docker's bridge, not the machine's network
            return address
    raise NoAddress(f"no global IPv4 address on this machine for the cluster nodes: {out!r}")


_ranges = [0]


def _worker_ports() -> tuple[int, int]:
    """A block of 30 ports for a node's Ray workers, below the ephemeral range free_port() draws from."""
    _ranges[0] += 1
    start = 20000 + (os.getpid() % 50) * 300 + _ranges[0] * 30
    return start, start + 29


@dataclass
class Node:
    name: str
    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    traces: list[Path] = field(default_factory=list)

    @classmethod
    def new(cls, name: str, root: Path) -> Node:
        ports = {key: free_port() for key in PORT_KEYS}
        ports["MIN_WORKER_PORT"], ports["MAX_WORKER_PORT"] = _worker_ports()
        return cls(name, root, ports)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("console-*.log")))


@dataclass
class LocalCluster:
    root: Path
    address: str
    gcs_port: int
    models: Path
    control: Node
    workers: dict[str, Node]
    traced: bool
    url: str = ""
    key: str = ""

    @classmethod
    def create(cls, names: tuple[str, ...], traced: bool) -> LocalCluster:
        root = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
        models = root / "models"
        models.mkdir()
        workers = {name: Node.new(name, root / name) for name in names}
        return cls(root, machine_address(), free_port(), models, Node.new("control", root / "control"), workers, traced)

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def environment(self, node: Node) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "ORT_", "XDG_", "RAY_")) and k != "TMPDIR"}
        env.update(
            {
                "APPLIANCE_DATA_DIR": str(node.data_dir),
                "APPLIANCE_MODELS_DIR": str(self.models),
                "APPLIANCE_SECURITY__TLS": "off",
                "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
                "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "20",
                "APPLIANCE_DIARIZATION__DEVICE": "cpu",
                "APPLIANCE_MODELS__CPU_THREADS": "1",
                "APPLIANCE_CLUSTER__ADDRESS": self.address,
                "APPLIANCE_CLUSTER__PORT": str(self.gcs_port),
                "APPLIANCE_CLUSTER__OBJECT_STORE_BYTES": OBJECT_STORE,
                "APPLIANCE_SERVER__MAX_AUDIO_MEMORY_BYTES": OBJECT_STORE,  # the head's store is sized to it
                "APPLIANCE_CLUSTER__RETRY_WAIT_SECONDS": "8",
                "HOME": str(node.root / "home"),
                # A stopped node waits for its running jobs up to 30 s (Ray's graceful drain); the tests
                # stop idle nodes.
                "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "2",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(REPO),
            }
        )
        env.update({f"APPLIANCE_CLUSTER__{k}": str(v) for k, v in node.ports.items()})
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`appliance ARGS` on the control node (its data dir), to its end."""
        env = self.environment(self.control)
        return subprocess.run([sys.executable, *APPLIANCE, *args], env=env, capture_output=True, text=True, timeout=120)

    def _launch(self, node: Node, env: dict[str, str], *args: str) -> None:
        """`appliance ARGS` in its own session, under strace (every thread and child) when traced."""
        node.runs += 1
        (node.root / "home").mkdir(parents=True, exist_ok=True)
        command = [sys.executable, *APPLIANCE, *args]
        if self.traced:
            trace_dir = node.root / f"trace-{node.runs}"
            trace_dir.mkdir(parents=True)
            node.traces.append(trace_dir)
            command = [
                _strace(),
                "-f",
                "-ff",
                "-qq",
                "-y",
                "-s",
                "256",
                "-e",
                f"trace={TRACED}",
                "-o",
                str(trace_dir / "t"),
                *command,
            ]
        with (node.root / f"console-{node.runs}.log").open("wb") as sink:
            node.process = subprocess.Popen(
                command, cwd=node.root, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self) -> None:
        """Issue every worker's keys, start the control node and the workers; return once all are ready."""
        for name in self.workers:
            made = self.cli(
                "cluster", "add-node", name, "--address", self.address, "--out", str(self.keys_dir / f"{name}.sotto-node")
            )
            assert made.returncode == 0, made.stdout + made.stderr
        self.key = bootstrap(settings_in(self.control.root))
        web_port = free_port()
        self.url = f"http://127.0.0.1:{web_port}"
        env = {**self.environment(self.control), "APPLIANCE_CLUSTER__ENABLED": "true"}
        self._launch(self.control, env, "serve", "--port", str(web_port))
        deadline = time.monotonic() + 180
        while True:
            assert self.control.process is not None and self.control.process.poll() is None, self.control.log()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, self.control.log()
            time.sleep(0.5)
        for name in self.workers:
            self.start_worker(name)
        self.wait_states(dict.fromkeys(self.workers, "ready"))

    def start_worker(self, name: str, slots: int = 1) -> None:
        node = self.workers[name]
        keys = str(self.keys_dir / f"{name}.sotto-node")
        join = f"{self.address}:{self.gcs_port}"
        self._launch(node, self.environment(node), "worker", "--join", join, "--keys", keys, "--slots", str(slots))

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=120)

    def states(self) -> dict[str, str]:
        with self.http() as http:
            response = http.get("/api/v1/admin/cluster")
        assert response.status_code == 200, response.text
        return {n["name"]: n["state"] for n in response.json()["nodes"]}

    def wait_states(self, wanted: dict[str, str], timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.states()
            if all(states.get(k) == v for k, v in wanted.items()):
                return
            time.sleep(0.5)
        logs = "\n".join(f"--- {n.name}\n{n.log()[-3000:]}" for n in [self.control, *self.workers.values()])
        raise AssertionError(f"nodes are {states}, wanted {wanted}\n{logs}")

    def kill(self, name: str) -> None:
        """The node's machine lost: every process of the node at once (Ray's raylet starts its workers in
        sessions of their own, so the whole tree, not one process group)."""
        import psutil

        process = self.workers[name].process
        assert process is not None
        for member in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        process.wait(10)

    def stop(self, node: Node) -> None:
        """SIGTERM to the node's command (under strace: to the traced process, since strace blocks it)."""
        import psutil

        process = node.process
        if process is None or process.poll() is not None:
            return
        targets = psutil.Process(process.pid).children() if self.traced else [psutil.Process(process.pid)]
        for target in targets:
            target.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop_all(self) -> None:
        from appliance.cluster.ray_node import spill_dir

        for node in [*self.workers.values(), self.control]:
            self.stop(node)
            with contextlib.suppress(OSError):
                spill_dir(node.data_dir).rmdir()  # empty: nothing was ever spilled
