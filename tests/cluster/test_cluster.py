"""Cluster mode for real: a control node (`appliance serve`, cluster mode on, its kernel egress lock on)
and two worker nodes (`appliance worker --join`), each a real Ray node in its own process tree on this
machine, each under strace from its first instruction, with the embedded tiny.en on the CPU.

- 8 recordings sent at once are spread over both nodes;
- a worker node killed (its whole process group, SIGKILL) while it runs a job: that job completes on the
  other node, the second try;
- a node that joins later takes work; a drained node takes none, and resumes;
- a node without this cluster's keys cannot join (our `worker` with another cluster's file, and Ray's
  own `ray start` with no TLS at all): neither ever shows up;
- at the end, on every process of every node: no connection anywhere but loopback and the cluster's
  own address and ports, no DNS, no file written outside the node's data dir and RAM (/dev/shm), and
  no file anywhere under them holding a piece of a recording.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from appliance.cluster.keys import Authority
from appliance.web.server import free_port
from tests.strace_support import TRACED, Trace, _strace
from tests.support import REPO, bootstrap, settings_in, speak, wait_for_job

SENTENCE = "Orange giraffes painted the lighthouse in Marseille yesterday."
LONG = " ".join(["The harbour pilot counted seven blue boats before noon, and the keeper wrote each name down."] * 14)
OBJECT_STORE = str(100 * 1024 * 1024)


def _address() -> str:
    """This machine's address on its network: Ray nodes advertise a real address, never loopback."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("172.17."):  # a container bridge, not the host's network
            return address
    pytest.fail(f"no global IPv4 address on this machine for the cluster nodes: {out!r}")


@dataclass
class Node:
    name: str
    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    traces: list[Path] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("console-*.log")))


@dataclass
class Cluster:
    address: str
    control: Node
    workers: dict[str, Node]
    url: str
    key: str
    keys_dir: Path
    wav: bytes
    long_wav: bytes


PORT_KEYS = (
    "NODE_MANAGER_PORT",
    "OBJECT_MANAGER_PORT",
    "RUNTIME_ENV_AGENT_PORT",
    "DASHBOARD_AGENT_GRPC_PORT",
    "DASHBOARD_AGENT_LISTEN_PORT",
    "METRICS_EXPORT_PORT",
)


def _ports() -> dict[str, int]:
    ports = {key: free_port() for key in PORT_KEYS}
    ports["MIN_WORKER_PORT"], ports["MAX_WORKER_PORT"] = _range()
    return ports


_next_range = [0]


def _range() -> tuple[int, int]:
    """A block of 30 worker ports per node, away from the ephemeral range free_port() draws from."""
    _next_range[0] += 1
    start = 20000 + (os.getpid() % 50) * 300 + _next_range[0] * 30
    return start, start + 29


def _environment(node: Node, address: str, gcs_port: int, models: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "ORT_", "XDG_", "RAY_")) and k != "TMPDIR"}
    env.update(
        {
            "APPLIANCE_DATA_DIR": str(node.data_dir),
            "APPLIANCE_MODELS_DIR": str(models),
            "APPLIANCE_SECURITY__TLS": "off",
            "APPLIANCE_QUOTAS__REQUESTS_PER_MINUTE": "100000",
            "APPLIANCE_QUOTAS__CONCURRENT_JOBS": "20",
            "APPLIANCE_DIARIZATION__DEVICE": "cpu",
            "APPLIANCE_MODELS__CPU_THREADS": "1",
            "APPLIANCE_CLUSTER__ADDRESS": address,
            "APPLIANCE_CLUSTER__PORT": str(gcs_port),
            "APPLIANCE_CLUSTER__OBJECT_STORE_BYTES": OBJECT_STORE,
            "APPLIANCE_CLUSTER__RETRY_WAIT_SECONDS": "60",
            "HOME": str(node.root / "home"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update({f"APPLIANCE_CLUSTER__{k}": str(v) for k, v in node.ports.items()})
    return env


def _traced(node: Node, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`appliance ARGS` under strace (every thread and child), in its own process group."""
    node.runs += 1
    trace_dir = node.root / f"trace-{node.runs}"
    trace_dir.mkdir(parents=True)
    node.traces.append(trace_dir)
    (node.root / "home").mkdir(exist_ok=True)
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
        sys.executable,
        "-c",
        "from appliance.cli import app; app()",
        *args,
    ]
    with (node.root / f"console-{node.runs}.log").open("wb") as sink:
        return subprocess.Popen(command, cwd=node.root, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(node: Node, sig: int = signal.SIGTERM) -> None:
    process = node.process
    if process is None or process.poll() is not None:
        return
    import psutil

    tracees = psutil.Process(process.pid).children()
    for tracee in tracees:
        tracee.send_signal(sig)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _kill_group(node: Node) -> None:
    """The node's machine lost: every process of the node at once (strace, Ray's raylet, the replica)."""
    assert node.process is not None
    os.killpg(node.process.pid, signal.SIGKILL)
    node.process.wait(10)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from appliance.cli import app; app()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _status(cluster: Cluster) -> dict[str, str]:
    with httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {cluster.key}"}, timeout=30) as http:
        response = http.get("/api/v1/admin/cluster")
        assert response.status_code == 200, response.text
        nodes = response.json()["nodes"]
    return {n["name"]: n["state"] for n in nodes}


def _wait_states(cluster: Cluster, wanted: dict[str, str], timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = _status(cluster)
        if all(states.get(k) == v for k, v in wanted.items()):
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {n.name}\n{n.log()[-3000:]}" for n in [cluster.control, *cluster.workers.values()])
    raise AssertionError(f"nodes are {states}, wanted {wanted}\n{logs}")


def _start_worker(cluster: Cluster, name: str, models: Path, gcs_port: int) -> None:
    node = cluster.workers[name]
    env = _environment(node, cluster.address, gcs_port, models)
    node.process = _traced(
        node, env, "worker", "--join", f"{cluster.address}:{gcs_port}", "--keys", str(cluster.keys_dir / f"{name}.sotto-node"), "--slots", "1"
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Short paths: Ray puts Unix sockets under its session dir inside each node's data dir.
    root = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    models = root / "models"
    models.mkdir()
    address = _address()
    gcs_port = free_port()
    control = Node("control", root / "control", _ports())
    workers = {name: Node(name, root / name, _ports()) for name in ("alpha", "beta")}
    keys_dir = root / "keys"
    env = _environment(control, address, gcs_port, models)
    for name in workers:
        made = _cli(env, "cluster", "add-node", name, "--address", address, "--out", str(keys_dir / f"{name}.sotto-node"))
        assert made.returncode == 0, made.stdout + made.stderr
        assert (keys_dir / f"{name}.sotto-node").stat().st_mode & 0o077 == 0  # a secret: owner-only
    key = bootstrap(settings_in(control.data_dir))
    web_port = free_port()
    control.process = _traced(control, {**env, "APPLIANCE_CLUSTER__ENABLED": "true"}, "serve", "--port", str(web_port))
    url = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + 180
    while True:
        assert control.process.poll() is None, control.log()
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, control.log()
        time.sleep(0.5)
    wav = speak(root / "short.wav", SENTENCE).read_bytes()
    long_wav = speak(root / "long.wav", LONG).read_bytes()
    made = Cluster(address, control, workers, url, key, keys_dir, wav, long_wav)
    made.gcs_port = gcs_port  # type: ignore[attr-defined]
    made.models = models  # type: ignore[attr-defined]
    for name in workers:
        _start_worker(made, name, models, gcs_port)
    try:
        _wait_states(made, {"alpha": "ready", "beta": "ready"})
        yield made
    finally:
        for node in [*workers.values(), control]:
            _stop(node)


def _http(cluster: Cluster) -> httpx.Client:
    return httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {cluster.key}"}, timeout=120)


def _send(http: httpx.Client, audio: bytes, name: str = "a.wav") -> str:
    response = http.post("/api/v1/transcriptions", files={"file": (name, audio, "audio/wav")})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def test_eight_recordings_at_once_are_spread_over_both_nodes(cluster: Cluster) -> None:
    with _http(cluster) as http:
        ids = [_send(http, cluster.wav) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            done = list(pool.map(lambda job_id: wait_for_job(http.get, job_id, timeout=300), ids))
        assert [job["state"] for job in done] == ["done"] * 8, [job["error"] for job in done]
        assert {job["node"] for job in done} == {"alpha", "beta"}
        for job in done:
            text = http.get(f"/api/v1/transcripts/{job['transcript_id']}").json()["text"].lower()
            assert "giraffe" in text and "marseille" in text, text
        metrics = http.get("/metrics").text
    assert 'sotto_cluster_node_up{node="alpha"} 1.0' in metrics
    assert 'sotto_cluster_node_up{node="beta"} 1.0' in metrics


def test_a_node_killed_mid_job_its_job_completes_on_the_other(cluster: Cluster) -> None:
    with _http(cluster) as http:
        job_id = _send(http, cluster.long_wav, "long.wav")
        deadline = time.monotonic() + 120
        while True:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            if job["node"] and job["stage"] == "transcribing" and job["progress"] > 0:
                break
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        victim = job["node"]
        _kill_group(cluster.workers[victim])
        finished = wait_for_job(http.get, job_id, timeout=300)
    survivor = ({"alpha", "beta"} - {victim}).pop()
    assert finished["state"] == "done", finished["error"]
    assert finished["node"] == survivor and finished["attempts"] == 2
    _wait_states(cluster, {victim: "down", survivor: "ready"})
    cluster.killed = victim  # type: ignore[attr-defined]


def test_a_node_that_joins_later_takes_work_and_a_drained_one_takes_none(cluster: Cluster) -> None:
    victim = getattr(cluster, "killed", "alpha")
    survivor = ({"alpha", "beta"} - {victim}).pop()
    _start_worker(cluster, victim, cluster.models, cluster.gcs_port)  # type: ignore[attr-defined]
    _wait_states(cluster, {victim: "ready"})
    env = _environment(cluster.control, cluster.address, cluster.gcs_port, cluster.models)  # type: ignore[attr-defined]
    drained = _cli(env, "cluster", "drain", survivor)
    assert drained.returncode == 0, drained.stderr
    _wait_states(cluster, {survivor: "drained"}, timeout=30)
    with _http(cluster) as http:
        jobs = [wait_for_job(http.get, _send(http, cluster.wav), timeout=300) for _ in range(3)]
        assert [(j["state"], j["node"]) for j in jobs] == [("done", victim)] * 3
        listed = _cli(env, "cluster", "nodes").stdout
        assert survivor in listed and "drained" in listed
        assert _cli(env, "cluster", "resume", survivor).returncode == 0
        _wait_states(cluster, {survivor: "ready"}, timeout=30)


def test_a_node_without_this_clusters_keys_cannot_join(cluster: Cluster, tmp_path: Path) -> None:
    rogue = Node("rogue", tmp_path / "rogue", _ports())
    rogue.root.mkdir(parents=True)
    Authority(tmp_path / "other-ca").issue("rogue", cluster.address).to_file(tmp_path / "rogue.sotto-node")
    env = _environment(rogue, cluster.address, cluster.gcs_port, cluster.models)  # type: ignore[attr-defined]
    refused = subprocess.run(
        [sys.executable, "-c", "from appliance.cli import app; app()", "worker", "--join", f"{cluster.address}:{cluster.gcs_port}"]  # type: ignore[attr-defined]
        + ["--keys", str(tmp_path / "rogue.sotto-node")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "could not join the cluster" in refused.stderr and "key file was made by that control node" in refused.stderr
    # Ray itself, with no TLS: it cannot even register.
    plain = {k: v for k, v in env.items() if not k.startswith("RAY_")}
    raw = subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--address", f"{cluster.address}:{cluster.gcs_port}"]  # type: ignore[attr-defined]
        + ["--node-ip-address", cluster.address, "--temp-dir", str(rogue.root / "ray"), "--resources", '{"sotto_node_rogue": 1}']
        + ["--disable-usage-stats", "--num-cpus", "1"],
        env=plain,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert raw.returncode != 0, raw.stdout + raw.stderr
    status = _status(cluster)
    assert "rogue" not in status
    with _http(cluster) as http:
        assert http.get("/api/v1/admin/cluster").json()["unknown_nodes"] == []


def test_no_node_wrote_audio_or_sent_anything_beyond_the_cluster(cluster: Cluster) -> None:
    """Last: stops every node, then reads their traces."""
    time.sleep(float(os.environ.get("SOTTO_CLUSTER_IDLE_SECONDS", "20")))  # background threads wake up
    for node in [*cluster.workers.values(), cluster.control]:
        _stop(node)
    ports = {cluster.gcs_port}  # type: ignore[attr-defined]
    for node in [cluster.control, *cluster.workers.values()]:
        ports |= set(node.ports.values())
        ports |= set(range(node.ports["MIN_WORKER_PORT"], node.ports["MAX_WORKER_PORT"] + 1))

    def in_cluster(host: str, port: int) -> bool:
        return host == cluster.address and port in ports

    for node in [cluster.control, *cluster.workers.values()]:
        for trace_dir in node.traces:
            trace = Trace.read(trace_dir)
            assert trace.lines, f"{node.name}: no trace"
            assert trace.outbound(in_cluster) == [], f"{node.name}: {trace.outbound(in_cluster)[:5]}"
            writes = trace.writes_outside(node.data_dir, node.root, also=("/dev/shm/",))
            assert writes == [], f"{node.name}: {writes[:5]}"
    # No file any node left (logs, Ray's session dirs, /dev/shm) holds a piece of a recording.
    needles = [audio[len(audio) // 2 : len(audio) // 2 + 48] for audio in (cluster.wav, cluster.long_wav)]
    places = [n.data_dir for n in [cluster.control, *cluster.workers.values()]] + [Path("/dev/shm")]
    for place in places:
        for path in place.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    content = path.read_bytes()
                except OSError:
                    continue
                assert not any(needle in content for needle in needles), f"audio found in {path}"
