"""The dispatcher's pool: which replicas it keeps on which nodes (the licence's GPU limit over the whole
cluster, drained and unknown nodes) and which replica a job gets. Ray's calls are stood in for here, to
reach states a two-CPU machine cannot have (GPUs); tests/cluster/test_cluster.py runs the same pool on a
real Ray cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.cluster import ray_node
from appliance.cluster.dispatcher import Pool
from appliance.cluster.replica import GpuMemory, Health


@dataclass
class Ref:
    value: Any


@dataclass
class Actor:
    node: str
    options: dict[str, Any]

    def __post_init__(self) -> None:
        gpus = (GpuMemory("0", 1 << 30, 80 << 30),) if self.options.get("num_gpus") else ()
        health = Health(self.node, 1, "cuda" if gpus else "cpu", False, 0, gpus)
        self.ready = self.health = type("Method", (), {"remote": staticmethod(lambda: Ref(health))})()


@dataclass
class Remote:
    made: list[Actor] = field(default_factory=list)
    pending: dict[str, Any] = field(default_factory=dict)

    def options(self, **options: Any) -> Remote:
        self.pending = options
        return self

    def remote(self, node: str, slots: int) -> Actor:
        actor = Actor(node, self.pending)
        self.made.append(actor)
        return actor


@dataclass
class FakeRay:
    listed: list[dict[str, Any]]
    killed: list[Actor] = field(default_factory=list)

    def nodes(self) -> list[dict[str, Any]]:
        return self.listed

    def wait(self, refs: list[Ref], timeout: float) -> tuple[list[Ref], list[Ref]]:
        return refs, []

    def get(self, ref: Ref) -> Any:
        return ref.value

    def kill(self, actor: Actor) -> None:
        self.killed.append(actor)


def node_id(name: str) -> str:
    return name.encode().hex().ljust(56, "0")  # Ray's node ids: 28 bytes in hex


def node(name: str, slots: int, gpus: int = 0, alive: bool = True) -> dict[str, Any]:
    resources = {ray_node.SLOT: float(slots), ray_node.node_resource(name): 1.0, "CPU": 4.0}
    if gpus:
        resources["GPU"] = float(gpus)
    return {"NodeID": node_id(name), "NodeManagerAddress": "10.0.0.9", "Alive": alive, "Resources": resources}


def test_the_licences_gpu_limit_counts_every_nodes_gpus() -> None:
    ray, remote = FakeRay([node("gpu-a", 2, gpus=2), node("gpu-b", 2, gpus=2)]), Remote()
    pool = Pool(ray, remote)
    pool.configure({"gpu-a": False, "gpu-b": False}, gpu_limit=3)
    pool._match()
    assert sorted(a.node for a in remote.made) == ["gpu-a", "gpu-a", "gpu-b"]
    assert all(a.options["num_gpus"] == 1.0 for a in remote.made)
    status = pool.status()
    assert status.cluster_gpus == 4 and status.licensed_gpus == 3
    assert {n.name: n.replicas for n in status.nodes} == {"gpu-a": 2, "gpu-b": 1}
    assert status.nodes[0].gpu_memory == (GpuMemory("0", 1 << 30, 80 << 30),)
    pool.configure({"gpu-a": False, "gpu-b": False}, gpu_limit=2)  # a smaller licence: no new replica
    ray.listed.append(node("gpu-c", 1, gpus=1))
    pool.configure({"gpu-a": False, "gpu-b": False, "gpu-c": False}, gpu_limit=2)
    pool._match()
    assert [n.state for n in pool.status().nodes if n.name == "gpu-c"] == ["unlicensed"]


def test_a_drained_node_keeps_running_jobs_and_gets_no_new_ones() -> None:
    ray, remote = FakeRay([node("alpha", 1), node("beta", 1)]), Remote()
    pool = Pool(ray, remote)
    pool.configure({"alpha": False, "beta": False}, None)
    pool._match()
    running = pool.acquire(1.0)
    assert running is not None
    pool.configure({"alpha": running.node == "alpha", "beta": running.node == "beta"}, None)
    pool._match()
    other = pool.acquire(1.0)
    assert other is not None and other.node != running.node
    assert pool.acquire(0.1) is None  # the drained node's replica is busy, and held back anyway
    assert {n.name: n.state for n in pool.status().nodes}[running.node] == "draining"
    pool.release(running, finished=True)
    pool._match()  # idle now: its replica is let go (its GPU memory freed for maintenance)
    assert [a.node for a in ray.killed] == [running.node]
    assert {n.name: n.state for n in pool.status().nodes}[running.node] == "drained"


def test_a_node_nobody_issued_keys_for_gets_nothing_and_is_reported() -> None:
    ray, remote = FakeRay([node("alpha", 1), node("intruder", 4)]), Remote()
    pool = Pool(ray, remote)
    pool.configure({"alpha": False}, None)
    pool._match()
    assert [a.node for a in remote.made] == ["alpha"]
    status = pool.status()
    assert status.unknown_nodes == ["intruder"]
    assert {n.name: n.state for n in status.nodes} == {"alpha": "ready", "intruder": "not issued"}


def test_a_job_goes_to_the_least_used_node_and_a_retry_avoids_the_lost_one() -> None:
    ray, remote = FakeRay([node("alpha", 1), node("beta", 1)]), Remote()
    pool = Pool(ray, remote)
    pool.configure({"alpha": False, "beta": False}, None)
    pool._match()
    first = pool.acquire(1.0)
    assert first is not None
    pool.release(first, finished=True)
    second = pool.acquire(1.0)
    assert second is not None and second.node != first.node  # the other has done less
    pool.release(second, broken=True)  # its node stopped: the replica is gone
    retry = pool.acquire(0.2, avoid={second.node})
    assert retry is not None and retry.node == first.node
    ray.listed = [n for n in ray.listed if n["NodeID"] != node_id(second.node)]
    pool.release(retry)
    pool._match()
    assert {n.name: n.state for n in pool.status().nodes}[second.node] == "down"


def test_people_see_the_name_the_node_was_issued_under() -> None:
    ray, remote = FakeRay([node("gpu-2", 1)]), Remote()
    pool = Pool(ray, remote)
    pool.configure({"gpu-2": False}, None)
    pool._match()
    slot = pool.acquire(1.0)
    assert slot is not None
    assert pool.display(slot.node) == "gpu-2"  # Ray's resource says gpu_2
    assert [n.name for n in pool.status().nodes] == ["gpu-2"]
    assert remote.made[0].node == "gpu-2"
