"""Cluster mode for real: a control node (`appliance serve`, cluster mode on, its kernel egress lock on)
and two worker nodes (`appliance worker --join`), each a real Ray node in its own process tree on this
machine, each under strace from its first instruction, with the embedded tiny.en on the CPU
(tests/cluster_support.py starts them).

- 8 recordings sent at once are spread over both nodes;
- a worker node killed (every process of it, SIGKILL) while it runs a job: that job completes on the
  other node, the second try;
- a node that joins later takes work; a drained node takes none, and resumes (also from the Models page);
- a node lost with no other node to take its job: the job fails with the reason, stored data untouched;
- a node without this cluster's keys cannot join (our `worker` with another cluster's file, and Ray's
  own `ray start` with no TLS at all): neither ever shows up;
- at the end, on every process of every node: no connection anywhere but loopback and the cluster's
  own address and ports, no DNS, no file written outside the node's data dir and RAM (/dev/shm), and
  no file anywhere under them holding a piece of a recording.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.cluster.keys import Authority
from tests.cluster_support import LocalCluster, Node
from tests.strace_support import Trace
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, speak, wait_for_job

SENTENCE = "Orange giraffes painted the lighthouse in Marseille yesterday."
LONG = " ".join(["The harbour pilot counted seven blue boats before noon, and the keeper wrote each name down."] * 20)


@dataclass
class Cluster:
    nodes: LocalCluster
    wav: bytes
    long_wav: bytes
    killed: str = ""  # the node the failure test killed


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    nodes = LocalCluster.create(("alpha", "beta"), traced=True)
    try:
        nodes.start()
        for name in nodes.workers:  # a secret: owner-only
            assert (nodes.keys_dir / f"{name}.sotto-node").stat().st_mode & 0o077 == 0
        wav = speak(nodes.root / "short.wav", SENTENCE).read_bytes()
        long_wav = speak(nodes.root / "long.wav", LONG).read_bytes()
        yield Cluster(nodes, wav, long_wav)
    finally:
        nodes.stop_all()
    shutil.rmtree(nodes.root, ignore_errors=True)  # traces and logs, once every test has read them


def _send(http: httpx.Client, audio: bytes, name: str = "a.wav") -> str:
    response = http.post("/api/v1/transcriptions", files={"file": (name, audio, "audio/wav")})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def test_eight_recordings_at_once_are_spread_over_both_nodes(cluster: Cluster) -> None:
    with cluster.nodes.http() as http:
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
    with cluster.nodes.http() as http:
        job_id = _send(http, cluster.long_wav, "long.wav")
        deadline = time.monotonic() + 120
        while True:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            if job["node"] and job["state"] == "running":
                break
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        victim = job["node"]
        cluster.nodes.kill(victim)
        finished = wait_for_job(http.get, job_id, timeout=300)
    survivor = ({"alpha", "beta"} - {victim}).pop()
    assert finished["state"] == "done", finished["error"]
    assert (finished["node"], finished["attempts"]) == (survivor, 2), finished
    cluster.nodes.wait_states({victim: "down", survivor: "ready"})
    cluster.killed = victim


def test_a_node_that_joins_later_takes_work_and_a_drained_one_takes_none(cluster: Cluster) -> None:
    victim = cluster.killed or "alpha"
    survivor = ({"alpha", "beta"} - {victim}).pop()
    cluster.nodes.start_worker(victim)
    cluster.nodes.wait_states({victim: "ready"})
    drained = cluster.nodes.cli("cluster", "drain", survivor)
    assert drained.returncode == 0, drained.stderr
    cluster.nodes.wait_states({survivor: "drained"}, timeout=30)
    with cluster.nodes.http() as http:
        jobs = [wait_for_job(http.get, _send(http, cluster.wav), timeout=300) for _ in range(3)]
        assert [(j["state"], j["node"]) for j in jobs] == [("done", victim)] * 3
        listed = cluster.nodes.cli("cluster", "nodes").stdout
        assert survivor in listed and "drained" in listed
        assert cluster.nodes.cli("cluster", "resume", survivor).returncode == 0
        cluster.nodes.wait_states({survivor: "ready"}, timeout=30)


SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def test_an_administrator_sees_the_nodes_and_drains_one_from_the_models_page(cluster: Cluster, browser: Any) -> None:
    nodes = cluster.nodes
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 390):
        page = browser.new_context(viewport={"width": width, "height": 844 if width < 800 else 768}).new_page()
        page.goto(f"{nodes.url}/login")
        page.fill("input[name=email]", ADMIN_EMAIL)
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{nodes.url}/")
        page.goto(f"{nodes.url}/admin/models")
        for name in ("alpha", "beta"):
            page.locator(f"#cluster-nodes tr[data-node={name}] .node-state", has_text="ready").wait_for()
        page.screenshot(path=str(SHOTS / f"cluster-nodes-{width}.png"), full_page=True)
        if width != 1366:
            page.close()
            continue
        # Keyboard first: the Drain button takes focus and Enter presses it.
        page.locator("#cluster-nodes tr[data-node=alpha] button[data-drain=true]").focus()
        page.keyboard.press("Enter")
        page.locator("#cluster-nodes tr[data-node=alpha] .node-state", has_text="drained").wait_for(timeout=30000)
        assert nodes.states()["alpha"] == "drained"
        page.screenshot(path=str(SHOTS / "cluster-nodes-drained-1366.png"), full_page=True)
        page.locator("#cluster-nodes tr[data-node=alpha] button[data-drain=false]").click()
        page.locator("#cluster-nodes tr[data-node=alpha] .node-state", has_text="ready").wait_for(timeout=60000)
        page.close()
    nodes.wait_states({"alpha": "ready", "beta": "ready"}, timeout=60)


def test_a_node_without_this_clusters_keys_cannot_join(cluster: Cluster, tmp_path: Path) -> None:
    nodes = cluster.nodes
    rogue = Node.new("rogue", tmp_path / "rogue")
    rogue.root.mkdir(parents=True)
    Authority(tmp_path / "other-ca").issue("rogue", nodes.address).to_file(tmp_path / "rogue.sotto-node")
    env = nodes.environment(rogue)
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            "from appliance.cli import app; app()",
            "worker",
            "--join",
            f"{nodes.address}:{nodes.gcs_port}",
            "--keys",
            str(tmp_path / "rogue.sotto-node"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "could not join the cluster" in refused.stderr and "key file was made by that control node" in refused.stderr
    # Ray itself, with no TLS: it never gets through (it retries for minutes; 20 s of it are watched).
    plain = {k: v for k, v in env.items() if not k.startswith("RAY_")}
    short = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
    raw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--address",
            f"{nodes.address}:{nodes.gcs_port}",
            "--node-ip-address",
            nodes.address,
            "--temp-dir",
            str(short),
            "--resources",
            '{"sotto_node_rogue": 1}',
            "--disable-usage-stats",
            "--num-cpus",
            "1",
            "--block",
        ],
        env=plain,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and raw.poll() is None:
            assert "rogue" not in cluster.nodes.states()
            time.sleep(2)
    finally:
        import psutil

        for process in [psutil.Process(raw.pid), *psutil.Process(raw.pid).children(recursive=True)] if raw.poll() is None else []:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        raw.wait(10)
    status = cluster.nodes.states()
    assert "rogue" not in status
    with cluster.nodes.http() as http:
        assert http.get("/api/v1/admin/cluster").json()["unknown_nodes"] == []


def test_a_job_whose_node_is_lost_with_no_other_to_take_it_fails_with_the_reason(cluster: Cluster) -> None:
    """The other node drained, the one running the job killed: the job waits cluster.retry_wait_seconds for
    a replica, then fails saying what happened; what was stored before is untouched."""
    nodes = cluster.nodes
    with nodes.http() as http:
        before = wait_for_job(http.get, _send(http, cluster.wav), timeout=300)
        assert before["state"] == "done"
        assert nodes.cli("cluster", "drain", "beta").returncode == 0
        nodes.wait_states({"beta": "drained", "alpha": "ready"}, timeout=30)
        job_id = _send(http, cluster.long_wav, "long.wav")
        deadline = time.monotonic() + 120
        while (job := http.get(f"/api/v1/jobs/{job_id}").json())["node"] != "alpha" or job["state"] != "running":
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        nodes.kill("alpha")
        failed = wait_for_job(http.get, job_id, timeout=300)
        assert failed["state"] == "failed", failed
        assert "The worker node running this recording stopped (alpha)" in failed["error"]
        assert "no other worker node could take it within 8 seconds" in failed["error"]
        kept = http.get(f"/api/v1/transcripts/{before['transcript_id']}")
        assert kept.status_code == 200 and "giraffe" in kept.json()["text"].lower()
        assert nodes.cli("cluster", "resume", "beta").returncode == 0


def _needle(audio: bytes, size: int = 64) -> bytes:
    """A piece of the recording found nowhere by chance: speech, not silence (zeros are in every file)."""
    for start in range(len(audio) // 3, len(audio) - size, size):
        piece = audio[start : start + size]
        if len(set(piece)) >= size // 2:
            return piece
    raise AssertionError("no varied stretch in the recording")


def test_no_node_wrote_audio_or_sent_anything_beyond_the_cluster(cluster: Cluster) -> None:
    """Last: stops every node, then reads their traces."""
    time.sleep(float(os.environ.get("SOTTO_CLUSTER_IDLE_SECONDS", "15")))  # background threads wake up
    nodes = cluster.nodes
    nodes.stop_all()
    everyone = [nodes.control, *nodes.workers.values()]
    ports = {nodes.gcs_port}
    for node in everyone:
        ports |= set(node.ports.values())
        ports |= set(range(node.ports["MIN_WORKER_PORT"], node.ports["MAX_WORKER_PORT"] + 1))

    def in_cluster(host: str, port: int) -> bool:
        return host == nodes.address and port in ports

    for node in everyone:
        for trace_dir in node.traces:
            trace = Trace.read(trace_dir)
            assert trace.lines, f"{node.name}: no trace"
            assert trace.outbound(in_cluster) == [], f"{node.name}: {trace.outbound(in_cluster)[:5]}"
            writes = [
                line
                for line in trace.writes_outside(node.data_dir, node.root, also=("/dev/shm/",))
                # Ray's raylet tells the kernel which of its workers to sacrifice first under memory
                # pressure: a kernel setting of a process, not a file.
                if not re.search(r'"/proc/\d+/oom_score_adj"', line)
            ]
            assert writes == [], f"{node.name}: {writes[:5]}"
    # No file any node left (logs, Ray's session dirs, /dev/shm) holds a piece of a recording.
    needles = [_needle(audio) for audio in (cluster.wav, cluster.long_wav)]
    places = [n.data_dir for n in everyone] + [Path("/dev/shm")]
    for place in places:
        for path in place.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    content = path.read_bytes()
                except OSError:
                    continue
                assert not any(needle in content for needle in needles), f"audio found in {path}"
