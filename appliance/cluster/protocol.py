"""Messages between the web server and the dispatcher, over a Unix socket (both ends are this appliance,
same user, authenticated by a key made at start: multiprocessing's connection handshake).

A job thread keeps one connection: Acquire (a replica is held for it) → the thread claims a queued job →
Run (the recording, in memory) → Started, Progressed ... → Finished or Failed; or Release when no job was
waiting. Cancel may come at any time while a job runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.cluster.replica import GpuMemory
from appliance.transcription.pipeline import ModelOutput, Progress


@dataclass(frozen=True)
class Acquire:
    timeout: float


@dataclass(frozen=True)
class Lease:
    node: str | None  # None: no replica came free within the timeout


@dataclass(frozen=True)
class Release:
    pass


@dataclass(frozen=True)
class Run:
    job_id: str
    data: bytes
    raw: dict[str, object]  # the job's options, parsed again on the replica's node against its models
    keep_voices: bool


@dataclass(frozen=True)
class Started:
    node: str
    attempt: int


@dataclass(frozen=True)
class Progressed:
    progress: Progress | None
    texts: list[str]


@dataclass(frozen=True)
class Finished:
    outputs: list[ModelOutput]


@dataclass(frozen=True)
class Failed:
    kind: str  # the exception's class on the replica (AudioError, ModelError, ...), or NodeLost
    message: str


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Configure:
    nodes: dict[str, bool]  # the issued nodes' names -> drained
    gpu_limit: int | None  # the licence's GPU count for the whole cluster; None: no limit


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    # ready | starting | draining | drained | down (issued, not connected) | unlicensed (over the GPU limit)
    state: str
    gpus: int
    replicas: int
    busy: int
    jobs_done: int
    gpu_memory: tuple[GpuMemory, ...] = ()


@dataclass(frozen=True)
class ClusterStatus:
    nodes: list[NodeStatus] = field(default_factory=list)
    cluster_gpus: int = 0  # GPUs on the connected worker nodes
    licensed_gpus: int | None = None
    unknown_nodes: list[str] = field(default_factory=list)  # connected with a name no key was issued for
