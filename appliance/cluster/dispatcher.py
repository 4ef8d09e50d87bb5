"""The control node's dispatcher: a process of its own that starts the cluster's head, is its only
driver, keeps one model replica per slot of every issued worker node, and runs each job the web server
hands it on a free replica.

Why a process of its own: the web server's kernel egress lock forbids new network sockets after start,
and a Ray driver opens sockets to replicas as they come and go. The dispatcher is started before the
lock and holds no model and no database; the recording reaches it over a Unix socket, in memory, and
goes to a replica through Ray's store (RAM, /dev/shm) and mutual TLS.

A worker node that stops mid-job (its process killed, its machine lost) fails the call with an actor or
node error: the job runs again, once, on another replica, from the recording still held here; if that
fails too, or no replica comes within cluster.retry_wait_seconds, the job fails with the reason.

Run as `python -m appliance.cluster.dispatcher SOCKET` with the connection key on the first line of
stdin; it prints "ready" when the head is up, and ends when stdin closes (its web server is gone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from appliance.cluster import protocol, ray_node
from appliance.cluster.keys import TlsFiles
from appliance.cluster.replica import Health, Replica
from appliance.core import config
from appliance.core.config import Settings

log = logging.getLogger("appliance.cluster")
MAINTAIN_SECONDS = 1.0  # how often replicas are matched to the nodes that are up
HEALTH_SECONDS = 5.0
POLL_SECONDS = 0.25  # progress of a running job
NODE_LOST = (
    "The worker node running this recording stopped, twice ({nodes}). It was not transcribed; "
    "send it again, and ask your administrator to check the worker nodes."
)
NO_REPLICA = (
    "The worker node running this recording stopped ({nodes}), and no other worker node could take it "
    "within {seconds} seconds. It was not transcribed; send it again, and ask your administrator to check "
    "the worker nodes."
)


@dataclass
class ReplicaSlot:
    key: str  # node/slot
    node: str
    node_id: str
    actor: Any
    ready_ref: Any = None
    ready: bool = False
    leased: bool = False
    health: Health | None = None
    health_ref: Any = None


@dataclass
class NodeSeen:
    name: str
    node_id: str
    address: str
    slots: int
    gpus: int
    alive: bool


@dataclass
class Pool:
    """The replicas, matched every second to the issued nodes that are up; leased one job at a time."""

    ray: Any
    remote_replica: Any
    nodes: dict[str, bool] = field(default_factory=dict)  # issued name -> drained
    gpu_limit: int | None = None
    slots: dict[str, ReplicaSlot] = field(default_factory=dict)
    seen: dict[str, NodeSeen] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    unlicensed: set[str] = field(default_factory=set)
    done: dict[str, int] = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)
    configured: bool = False

    def configure(self, nodes: dict[str, bool], gpu_limit: int | None) -> None:
        with self.lock:
            self.nodes, self.gpu_limit, self.configured = dict(nodes), gpu_limit, True
            self.lock.notify_all()

    def maintain(self) -> None:
        last_health = 0.0
        while True:
            try:
                self._match()
                if time.monotonic() - last_health >= HEALTH_SECONDS:
                    last_health = time.monotonic()
                    self._ask_health()
            except Exception:
                log.exception("matching replicas to nodes failed")
            time.sleep(MAINTAIN_SECONDS)

    def _scan(self) -> dict[str, NodeSeen]:
        seen: dict[str, NodeSeen] = {}
        for node in self.ray.nodes():
            resources = node.get("Resources") or {}
            names = [k[len(ray_node.NODE_PREFIX) :] for k in resources if k.startswith(ray_node.NODE_PREFIX)]
            if not names:
                continue  # the head
            name = names[0]
            entry = NodeSeen(
                name,
                node["NodeID"],
                node.get("NodeManagerAddress", ""),
                int(resources.get(ray_node.SLOT, 0)),
                int(resources.get("GPU", 0)),
                bool(node.get("Alive")),
            )
            # A node that restarted shows twice (the old one dead): the live one wins.
            if name not in seen or entry.alive:
                seen[name] = entry
        return seen

    def _match(self) -> None:
        if not self.configured:
            return
        seen = self._scan()
        with self.lock:
            self.seen = seen
            self.unknown = sorted(name for name in seen if name not in _resource_names(self.nodes) and seen[name].alive)
            # Replicas whose node went away, or that were dropped while idle (drained, removed): gone.
            for key, slot in list(self.slots.items()):
                node = seen.get(slot.node)
                gone = node is None or not node.alive or node.node_id != slot.node_id
                unwanted = self._issued_name(slot.node) is None or self.nodes.get(self._issued_name(slot.node) or "", False)
                if gone or (unwanted and not slot.leased):
                    del self.slots[key]
                    if not gone:
                        with contextlib.suppress(Exception):
                            self.ray.kill(slot.actor)
            gpus_used = sum(seen[s.node].gpus / max(1, seen[s.node].slots) for s in self.slots.values() if s.node in seen)
            self.unlicensed = set()
            for name, node in sorted(seen.items()):
                issued = self._issued_name(name)
                if not node.alive or issued is None or self.nodes.get(issued, False):
                    continue
                for index in range(node.slots):
                    key = f"{name}/{index}"
                    if key in self.slots:
                        continue
                    share = node.gpus / node.slots if node.slots else 0
                    if share and self.gpu_limit is not None and gpus_used + share > self.gpu_limit + 1e-9:
                        self.unlicensed.add(name)
                        continue
                    gpus_used += share
                    self.slots[key] = self._start(key, name, node, share)
            for slot in self.slots.values():
                if not slot.ready and slot.ready_ref is not None:
                    done, _ = self.ray.wait([slot.ready_ref], timeout=0)
                    if done:
                        try:
                            slot.health = self.ray.get(done[0])
                            slot.ready = True
                            log.info("replica %s ready", slot.key)
                        except Exception as exc:
                            log.error("replica %s could not start: %s", slot.key, _first_line(exc))
                            slot.ready_ref = None
            self.lock.notify_all()

    def display(self, resource_name: str) -> str:
        """The node's name as issued (`add-node gpu-2`), for people; Ray's resource names use underscores."""
        return self._issued_name(resource_name) or resource_name

    def _issued_name(self, resource_name: str) -> str | None:
        for name in self.nodes:
            if ray_node.node_resource(name)[len(ray_node.NODE_PREFIX) :] == resource_name:
                return name
        return None

    def _start(self, key: str, name: str, node: NodeSeen, share: float) -> ReplicaSlot:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = self.remote_replica.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
            resources={ray_node.SLOT: 1},
            num_gpus=share,
            num_cpus=0,
            max_concurrency=4,
            max_restarts=0,
        ).remote(self._issued_name(name) or name, node.slots)
        log.info("starting a replica on node %s", name)
        return ReplicaSlot(key, name, node.node_id, actor, actor.ready.remote())

    def _ask_health(self) -> None:
        with self.lock:
            slots = [s for s in self.slots.values() if s.ready]
        for slot in slots:
            if slot.health_ref is not None:
                done, _ = self.ray.wait([slot.health_ref], timeout=0)
                if done:
                    with contextlib.suppress(Exception):
                        slot.health = self.ray.get(done[0])
                    slot.health_ref = None
            if slot.health_ref is None:
                slot.health_ref = slot.actor.health.remote()

    def acquire(self, timeout: float, avoid: set[str] = frozenset()) -> ReplicaSlot | None:  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for slot in sorted(self.slots.values(), key=lambda s: (self.done.get(s.node, 0), s.key)):
                    issued = self._issued_name(slot.node)
                    if slot.ready and not slot.leased and slot.node not in avoid and issued and not self.nodes.get(issued):
                        slot.leased = True
                        return slot
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(min(left, MAINTAIN_SECONDS))

    def release(self, slot: ReplicaSlot, broken: bool = False, finished: bool = False) -> None:
        with self.lock:
            slot.leased = False
            if finished:
                self.done[slot.node] = self.done.get(slot.node, 0) + 1
            if broken:
                self.slots.pop(slot.key, None)
            self.lock.notify_all()

    def status(self) -> protocol.ClusterStatus:
        with self.lock:
            nodes = []
            names = set(self.nodes) | {n for n in self.seen if self._issued_name(n) is None}
            for name in sorted(names):
                seen = self.seen.get(ray_node.node_resource(name)[len(ray_node.NODE_PREFIX) :])
                slots = [s for s in self.slots.values() if s.node == (seen.name if seen else None)]
                drained = self.nodes.get(name, False)
                if seen is None or not seen.alive:
                    state = "down"
                elif name not in self.nodes:
                    state = "not issued"
                elif drained:
                    state = "draining" if any(s.leased for s in slots) else "drained"
                elif seen.name in self.unlicensed and not slots:
                    state = "unlicensed"
                elif slots and all(s.ready for s in slots):
                    state = "ready"
                else:
                    state = "starting"
                memory = tuple(g for s in slots if s.health for g in s.health.gpus)
                nodes.append(
                    protocol.NodeStatus(
                        name,
                        seen.address if seen else "",
                        state,
                        seen.gpus if seen and seen.alive else 0,
                        len(slots),
                        sum(1 for s in slots if s.leased),
                        self.done.get(seen.name if seen else name, 0),
                        tuple({g.index: g for g in memory}.values()),
                    )
                )
            gpus = sum(n.gpus for n in self.seen.values() if n.alive and self._issued_name(n.name) is not None)
            return protocol.ClusterStatus(nodes, gpus, self.gpu_limit, list(self.unknown))


def _resource_names(nodes: dict[str, bool]) -> set[str]:
    return {ray_node.node_resource(name)[len(ray_node.NODE_PREFIX) :] for name in nodes}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class Dispatcher:
    def __init__(self, settings: Settings, ray: Any, pool: Pool) -> None:
        self.settings = settings
        self.ray = ray
        self.pool = pool

    def serve(self, listener: Listener) -> None:
        while True:
            conn = listener.accept()
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: Connection) -> None:
        slot: ReplicaSlot | None = None
        try:
            while True:
                message = conn.recv()
                if isinstance(message, protocol.Acquire):
                    if slot is None:
                        slot = self.pool.acquire(message.timeout)
                    conn.send(protocol.Lease(self.pool.display(slot.node) if slot else None))
                elif isinstance(message, protocol.Release):
                    if slot is not None:
                        self.pool.release(slot)
                        slot = None
                elif isinstance(message, protocol.Run):
                    self._run(conn, message, slot)
                    slot = None  # _run gave it back
                elif isinstance(message, protocol.Configure):
                    self.pool.configure(message.nodes, message.gpu_limit)
                    conn.send(True)
                elif isinstance(message, protocol.StatusRequest):
                    conn.send(self.pool.status())
        except (EOFError, OSError):
            pass
        finally:
            if slot is not None:
                self.pool.release(slot)
            conn.close()

    def _run(self, conn: Connection, message: protocol.Run, slot: ReplicaSlot | None) -> None:
        """Run the job on the leased replica; on a lost node, once more on another. Ends with Finished or Failed."""
        ray = self.ray
        lost: list[str] = []
        data_ref = ray.put(message.data)  # into this node's store (RAM); replicas pull it from there
        try:
            for attempt in (1, 2):
                if slot is None:
                    wait = self.settings.cluster.retry_wait_seconds if lost else 30.0
                    slot = self.pool.acquire(wait, avoid=set(lost))
                    if slot is None:
                        names = ", ".join(self.pool.display(n) for n in lost) or "none"
                        conn.send(protocol.Failed("NodeLost", NO_REPLICA.format(nodes=names, seconds=int(wait))))
                        return
                conn.send(protocol.Started(self.pool.display(slot.node), attempt))
                outcome = self._attempt(conn, slot, message, data_ref)
                if outcome is None:  # its node stopped
                    lost.append(slot.node)
                    log.warning("node %s stopped while running job %s (attempt %d)", slot.node, message.job_id, attempt)
                    self.pool.release(slot, broken=True)
                    slot = None
                    continue
                self.pool.release(slot, finished=True)
                slot = None
                conn.send(outcome)
                return
            conn.send(protocol.Failed("NodeLost", NODE_LOST.format(nodes=", ".join(self.pool.display(n) for n in lost))))
        finally:
            if slot is not None:
                self.pool.release(slot)
            del data_ref

    def _attempt(
        self, conn: Connection, slot: ReplicaSlot, message: protocol.Run, data_ref: Any
    ) -> protocol.Finished | protocol.Failed | None:
        from ray import exceptions as rex

        lost_errors = (
            rex.RayActorError,
            rex.NodeDiedError,
            rex.ObjectLostError,
            rex.WorkerCrashedError,
            rex.LocalRayletDiedError,
        )
        call = slot.actor.run.remote(message.job_id, data_ref, message.raw, message.keep_voices)
        try:
            while True:
                done, _ = self.ray.wait([call], timeout=POLL_SECONDS)
                if conn.poll() and isinstance(conn.recv(), protocol.Cancel):
                    slot.actor.cancel.remote(message.job_id)
                if done:
                    break
                with contextlib.suppress(rex.GetTimeoutError):
                    update = self.ray.get(slot.actor.poll.remote(message.job_id), timeout=POLL_SECONDS * 4)
                    if update.progress is not None or update.texts:
                        conn.send(protocol.Progressed(update.progress, update.texts))
            outputs = self.ray.get(call)
            return protocol.Finished(outputs)
        except rex.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, lost_errors):
                return None
            return protocol.Failed(
                type(cause).__name__, str(cause) if not isinstance(cause, rex.RayError) else _first_line(cause)
            )
        except lost_errors:
            return None


def _listening(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def main() -> None:
    socket_path = Path(sys.argv[1])
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = config.load()
    data_dir = settings.storage.data_dir
    tls_dir = data_dir / "cluster" / "tls"
    tls = TlsFiles(tls_dir / "node.key", tls_dir / "node.crt", tls_dir / "ca.crt")
    # The head's store holds every recording in flight, and the vault (server.max_audio_memory_bytes)
    # already bounds those: sized to it, an accepted recording always fits, and a full vault answers 503.
    store = max(settings.cluster.object_store_bytes, settings.server.max_audio_memory_bytes)
    plan = ray_node.head(dataclasses.replace(settings.cluster, object_store_bytes=store), tls, data_dir)
    head = subprocess.Popen(
        plan.command, env={**os.environ, **plan.environment}, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True
    )

    def stop(*_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    import ray

    address = f"{settings.cluster.address}:{settings.cluster.port}"
    deadline = time.monotonic() + 120
    while True:
        if head.poll() is not None:
            print(f"the cluster head did not start (exit {head.returncode}); see the lines above", file=sys.stderr)
            sys.exit(2)
        if not _listening(settings.cluster.address, settings.cluster.port):
            if time.monotonic() > deadline:
                print(f"the cluster head did not open {address} in time", file=sys.stderr)
                stop()
            time.sleep(0.5)
            continue
        try:
            ray.init(
                address=address,
                _node_ip_address=settings.cluster.address,
                namespace="sotto",
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                print(f"could not connect to the cluster head at {address}: {_first_line(exc)}", file=sys.stderr)
                stop()
            time.sleep(1.0)
    pool = Pool(ray, ray.remote(Replica))
    threading.Thread(target=pool.maintain, name="replicas", daemon=True).start()
    listener = Listener(str(socket_path), family="AF_UNIX", authkey=authkey)
    dispatcher = Dispatcher(settings, ray, pool)
    threading.Thread(target=dispatcher.serve, args=(listener,), name="connections", daemon=True).start()
    print("ready", flush=True)
    # The web server holds our stdin: when it goes (even killed), so do we, and the head with us.
    sys.stdin.read()
    stop()


if __name__ == "__main__":
    main()
