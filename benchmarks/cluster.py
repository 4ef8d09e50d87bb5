"""Cluster mode: how much more audio per second N worker nodes transcribe than one, through the whole
appliance (upload over HTTP, the dispatcher, Ray's store and TLS, a replica, the transcript stored).

    python benchmarks/cluster.py [--nodes 2] [--jobs 8] [--seconds 40]

Starts a real local cluster on this machine (tests/cluster_support.py: a control node and N CPU worker
nodes, one replica each, one CPU thread each, the embedded tiny.en). Step 1 drains every node but the
first and sends --jobs recordings of --seconds each at once; step 2 gives every node work again and sends
the same. It prints each step's aggregate speed (audio seconds transcribed per wall second) and the
ratio of step 2 to step 1, measured in the same run (machines here are noisy). On this 2-core machine
two CPU nodes are the most that can gain; on a GPU host, each node a GPU, the same script measures GPUs.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCE = "The harbour pilot counted seven blue boats before noon, and the keeper wrote each name down."


def _step(cluster: object, audio: bytes, jobs: int, label: str) -> tuple[float, dict[str, int]]:
    from tests.support import wait_for_job

    with cluster.http() as http:  # type: ignore[attr-defined]
        started = time.perf_counter()
        ids = []
        for n in range(jobs):
            response = http.post("/api/v1/transcriptions", files={"file": (f"{label}-{n}.wav", audio, "audio/wav")})
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
        with ThreadPoolExecutor(jobs) as pool:
            done = list(pool.map(lambda job_id: wait_for_job(http.get, job_id, timeout=1800), ids))
        wall = time.perf_counter() - started
    failed = [job["error"] for job in done if job["state"] != "done"]
    assert not failed, failed
    seconds = sum(float(job["duration"] or 0.0) for job in done)
    nodes: dict[str, int] = {}
    for job in done:
        nodes[job["node"]] = nodes.get(job["node"], 0) + 1
    return seconds / wall, nodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each recording")
    args = parser.parse_args()

    from tests.cluster_support import LocalCluster
    from tests.support import speak

    names = tuple(f"node-{n + 1}" for n in range(args.nodes))
    cluster = LocalCluster.create(names, traced=False)
    try:
        print(f"starting a control node and {args.nodes} worker node(s) on {cluster.address} ...", flush=True)
        cluster.start()
        one = speak(cluster.root / "one.wav", SENTENCE)
        import wave

        with wave.open(str(one)) as w:
            sentence_seconds = w.getnframes() / w.getframerate()
        repeats = max(1, round(args.seconds / sentence_seconds))
        audio = speak(cluster.root / "clip.wav", " ".join([SENTENCE] * repeats)).read_bytes()
        for name in names[1:]:
            assert cluster.cli("cluster", "drain", name).returncode == 0
        cluster.wait_states({name: "drained" for name in names[1:]} | {names[0]: "ready"}, timeout=60)
        base, base_nodes = _step(cluster, audio, args.jobs, "one")
        for name in names[1:]:
            assert cluster.cli("cluster", "resume", name).returncode == 0
        cluster.wait_states(dict.fromkeys(names, "ready"), timeout=120)
        spread, spread_nodes = _step(cluster, audio, args.jobs, "all")
    finally:
        cluster.stop_all()
    print(f"{args.jobs} recordings of {repeats * sentence_seconds:.0f} s each, tiny.en, 1 CPU thread per replica")
    print(f"1 node : {base:7.1f} audio-s/s  (jobs per node: {base_nodes})")
    print(f"{args.nodes} nodes: {spread:7.1f} audio-s/s  (jobs per node: {spread_nodes})")
    print(f"ratio  : {spread / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
