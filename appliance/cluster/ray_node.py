"""Starting a Ray node the way this appliance needs it: the control node's head and each worker node.

What is turned off, and why (docs/decisions.md, "Cluster mode on Ray"):
- the dashboard and with it the job-submission API (`--include-dashboard false`): a way to run code;
  the usage-reporting process Ray starts in its place probes cloud metadata (ray_start.py: not started);
- the Ray Client server: another way to run code, on port 10001 (ray_start.py);
- the autoscaler monitor (`--no-monitor`): nothing here autoscales, and it serves metrics on 0.0.0.0;
- usage statistics (`--disable-usage-stats`, RAY_USAGE_STATS_ENABLED=0): they are uploaded;
- object spilling (`automatic_object_spilling_enabled: false`): it writes objects, audio, to disk.

The object store lives in /dev/shm (RAM). When it is full Ray may still "fallback-allocate" objects in
files in the spilling directory, so that directory is also on a RAM filesystem, checked at start:
nothing Ray does with an object reaches a disk. Every port is fixed (settings.cluster), so a firewall
can name them; Ray is given the node's address, so it never probes a public address to find it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.cluster.keys import TlsFiles
from appliance.core.config import ClusterSettings

# A custom resource each worker node advertises: one unit per model replica it hosts, and one named
# after the node (from its key file), so a replica is placed on a node by name.
SLOT = "sotto_slot"
NODE_PREFIX = "sotto_node_"
RAM_FILESYSTEMS = {"tmpfs", "ramfs"}
SOCKET_PATH_BUDGET = 50  # Ray puts sockets at <temp>/session_<date>_<pid>/sockets/plasma_store (108 bytes max)


class NodeError(RuntimeError):
    """This node cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class NodePlan:
    command: list[str]
    environment: dict[str, str]
    temp_dir: Path
    spill_dir: Path


def node_resource(name: str) -> str:
    return NODE_PREFIX + "".join(c if c.isalnum() else "_" for c in name)


def environment(tls: TlsFiles) -> dict[str, str]:
    """What every process of a node (and the driver) needs: TLS on, statistics off."""
    return {
        **tls.environment(),
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray's helpers (agents, workers) name their node by loopback in log lines with it, instead of
        # asking the kernel for a route to 8.8.8.8; ray_start.py turns cluster support back on for itself.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # Worker stdout and logs stay on the node: they hold no content, but nothing needs them centrally.
        "RAY_LOG_TO_DRIVER": "0",
        "RAY_DEDUP_LOGS": "0",
        # pyannote and Hugging Face on the worker nodes: never the network.
        "PYANNOTE_METRICS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def ram_dir(path: Path) -> Path:
    """`path`, created, if it is on a RAM filesystem; else a NodeError naming it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    kind = filesystem_type(path)
    if kind not in RAM_FILESYSTEMS:
        raise NodeError(
            f"{path} is on a {kind or 'unknown'} filesystem, not RAM: Ray's store would put audio there when full. "
            "Give the container a larger /dev/shm (shm_size) or point it at a tmpfs."
        )
    return path


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path`, from /proc/self/mounts (longest mount point wins)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def short_temp_dir(data_dir: Path, role: str) -> Path:
    """Ray's session directory (logs, sockets): inside the data dir when its path is short enough for a
    Unix socket's name, else under /dev/shm (RAM) with a link in the data dir for whoever looks."""
    wanted = data_dir.resolve() / "run" / "ray"
    if len(str(wanted)) <= SOCKET_PATH_BUDGET:
        wanted.mkdir(parents=True, exist_ok=True, mode=0o700)
        return wanted
    fallback = ram_dir(
        Path("/dev/shm") / f"sotto-ray-{role}-{os.getuid()}-{hashlib.sha256(str(wanted).encode()).hexdigest()[:8]}"
    )
    return fallback


def spill_dir(data_dir: Path) -> Path:
    """Where Ray would put objects that do not fit its store (spilling is off; a full store may still
    fall back to files here): on /dev/shm, one per data dir, so restarts reuse it."""
    return Path("/dev/shm") / f"sotto-ray-spill-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]}"


def ray_command() -> list[str]:
    """`ray` through ray_start.py (which leaves the Client server out), in this interpreter."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise NodeError("Ray is not installed in this environment (the appliance image has it)") from None
    return [sys.executable, "-m", "appliance.cluster.ray_start"]


def _common(settings: ClusterSettings, temp_dir: Path, spill: Path, object_store: int) -> list[str]:
    return [
        "--node-ip-address",
        settings.address,
        "--node-manager-port",
        str(settings.node_manager_port),
        "--object-manager-port",
        str(settings.object_manager_port),
        "--runtime-env-agent-port",
        str(settings.runtime_env_agent_port),
        "--dashboard-agent-grpc-port",
        str(settings.dashboard_agent_grpc_port),
        "--dashboard-agent-listen-port",
        str(settings.dashboard_agent_listen_port),
        "--metrics-export-port",
        str(settings.metrics_export_port),
        "--min-worker-port",
        str(settings.min_worker_port),
        "--max-worker-port",
        str(settings.max_worker_port),
        "--temp-dir",
        str(temp_dir),
        "--plasma-directory",
        "/dev/shm",
        "--object-spilling-directory",
        str(spill),
        "--object-store-memory",
        str(object_store),
        "--disable-usage-stats",
        "--block",
    ]


SYSTEM_CONFIG = {"automatic_object_spilling_enabled": False}


def head(settings: ClusterSettings, tls: TlsFiles, data_dir: Path) -> NodePlan:
    """The control node's head: the cluster's registry (GCS) and a raylet with nothing to run."""
    temp_dir = short_temp_dir(data_dir, "control")
    spill = ram_dir(spill_dir(data_dir))
    command = [
        *ray_command(),
        "start",
        "--head",
        "--port",
        str(settings.port),
        "--num-cpus",
        "0",
        "--num-gpus",
        "0",
        "--include-dashboard",
        "false",
        "--no-monitor",
        "--system-config",
        json.dumps(SYSTEM_CONFIG),
        *_common(settings, temp_dir, spill, settings.object_store_bytes),
    ]
    return NodePlan(command, environment(tls), temp_dir, spill)


def worker(
    settings: ClusterSettings, tls: TlsFiles, data_dir: Path, join: str, name: str, slots: int, gpus: int, cpus: int
) -> NodePlan:
    """A worker node joining the control node at `join` (host:port), hosting `slots` replicas."""
    temp_dir = short_temp_dir(data_dir, "worker")
    spill = ram_dir(spill_dir(data_dir))
    command = [
        *ray_command(),
        "start",
        "--address",
        join,
        "--num-gpus",
        str(gpus),
        "--num-cpus",
        str(cpus),
        "--resources",
        json.dumps({SLOT: slots, node_resource(name): 1}),
        *_common(settings, temp_dir, spill, settings.object_store_bytes),
    ]
    return NodePlan(command, environment(tls), temp_dir, spill)
