"""`appliance worker --join`: make this machine a worker node of a control node's cluster.

Before Ray starts, the node's key file is read and the control node is dialled with it over mutual TLS:
a key file from another cluster, an expired one or a wrong address is refused here with a sentence
that says which, instead of Ray retrying for minutes. Then Ray's worker node runs in the foreground
(the container's main process), with this node's settings in its environment for the replicas.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from appliance.cluster import ray_node
from appliance.cluster.keys import NodeKeys, TlsFiles
from appliance.core.config import Settings
from appliance.transcription.capacity import cpu_cores, plan

JOIN_CHECK_SECONDS = 15.0


class JoinError(RuntimeError):
    """This node cannot join; the message says why and what to do."""


@dataclass(frozen=True)
class WorkerNode:
    name: str
    address: str
    slots: int
    gpus: int
    plan: ray_node.NodePlan


def prepare(settings: Settings, keys_file: Path, join: str, address: str | None, slots: int | None) -> WorkerNode:
    keys = NodeKeys.from_file(keys_file)
    address = address or keys.address
    if address != keys.address:
        raise JoinError(
            f"this node's key file was made for the address {keys.address}, not {address}: issue a new one with "
            f"`appliance cluster add-node {keys.name} --address {address}` on the control node"
        )
    tls = keys.write_tls_files(settings.storage.data_dir / "cluster" / "tls")
    check_join(join, tls)
    gpus = gpu_count(settings)
    if slots is None or slots <= 0:
        slots = settings.cluster.slots or default_slots(settings, gpus)
    cluster = dataclasses.replace(settings.cluster, address=address)
    # Ray reserves CPUs per task; replicas ask for none (their threads are sized by `slots`), so the
    # number only keeps Ray's own helpers schedulable.
    plan_ = ray_node.worker(cluster, tls, settings.storage.data_dir, join, keys.name, slots, gpus, max(1, cpu_cores()))
    return WorkerNode(keys.name, address, slots, gpus, plan_)


def default_slots(settings: Settings, gpus: int) -> int:
    """As many replicas as the single box would run jobs at once: workers_per_device on each GPU (2 unless
    set, measured), or on a CPU node the box's own plan for its cores."""
    device = "cuda" if gpus else "cpu"
    return max(1, gpus) * plan(settings.models, settings.worker, device, cpu_cores()).workers_per_device


def gpu_count(settings: Settings) -> int:
    if settings.models.device == "cpu":
        return 0
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:
        return 0


def check_join(join: str, tls: TlsFiles) -> None:
    """Dial the control node's cluster port with this node's certificate; it must accept it, and show
    one signed by the same CA."""
    import grpc

    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(), private_key=tls.key.read_bytes(), certificate_chain=tls.cert.read_bytes()
    )
    channel = grpc.secure_channel(join, credentials)
    try:
        grpc.channel_ready_future(channel).result(timeout=JOIN_CHECK_SECONDS)
    except grpc.FutureTimeoutError:
        raise JoinError(
            f"could not join the cluster at {join}: no TLS connection with this node's key within "
            f"{int(JOIN_CHECK_SECONDS)} s. Check that the control node runs with cluster mode on at that address and "
            "port, that the firewall lets this node reach it, and that the key file was made by that control node "
            "(`appliance cluster add-node`)."
        ) from None
    finally:
        channel.close()


def run(node: WorkerNode) -> None:  # pragma: no cover - replaces this process (tested through the CLI)
    environment = {**os.environ, **node.plan.environment}
    os.execvpe(node.plan.command[0], node.plan.command, environment)
