"""The appliance image, built and run for real: Dockerfile.cuda on a Debian bookworm stand-in for the CUDA
base (the only build argument changed), from a wheelhouse made on the host, then compose.yaml itself with
an override for what a CPU host lacks. Through the running service: the first-run setup code from the log,
the administrator, an API key, a spoken recording transcribed; the admin service's self-test with no
network, a licence request, a licence from an unknown signer refused; a restart keeps the transcripts and
fails the jobs it interrupted with the documented reason, and a `down`/`up` keeps the transcripts. The container's promises:
a read-only root with nothing written to it, and a data volume that holds the appliance's files only.

Slow on a fresh machine (an engine, a debootstrap, 4 GB of wheels, the build); everything is cached for
the next run (tests/distribution/image_support.py). Skipped only where no Docker engine can be started."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.distribution import image_support as img
from tests.support import speak

SENTENCE = "Orange giraffes painted the lighthouse in Marseille yesterday."
HEARD = ("giraffe", "marseille")  # what tiny.en hears of it every time (tests/core/test_no_egress.py)
PORT = 8443  # compose.yaml's, published on the host's loopback only (see _override)
URL = f"https://127.0.0.1:{PORT}"
EMAIL, PASSWORD = "root@example.org", "a long enough password"
LOCK_STEP = "pip install --no-index --find-links /wheelhouse --require-hashes --no-deps -r /src/requirements.lock"
# What the appliance itself keeps in /data (top-level names), and nothing else: a library's cache (HOME is
# /data in the image; confinement points the XDG and library caches at /data/cache), a telemetry store or
# a stray file fails the test. The SQLite database in WAL mode (transcripts, never audio); the licence
# state (licensing/store.py); the egress lock's status (core/egress_lock.py); the session-signing secret
# (web/services.py); the self-signed certificate (core/tls.py).
OWN_DATA = {"appliance.db", "appliance.db-wal", "appliance.db-shm", "license", "run", "secret.key", "tls"}


def _override(models: Path, transfer: Path) -> dict[str, object]:
    """What a CPU test host changes in compose.yaml: the image tag (the CPU build) and the bind mounts, in
    temporary directories; the project's network binds published ports to the host's loopback, so the
    appliance under test is unreachable from outside (Compose merges port lists, so an override cannot
    narrow compose.yaml's "8443:8443" itself, and host networking refuses published ports). The GPU
    reservation stays: the engine's stand-in hook answers it (image_support). JSON is YAML."""
    image = {"image": img.IMAGE}
    return {
        "services": {
            "appliance": {**image, "volumes": [f"{models}:/models:ro"]},
            "admin": {**image, "volumes": [f"{models}:/models", f"{transfer}:/transfer"]},
        },
        "networks": {"default": {"driver_opts": {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}}},
    }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[img.Deployment]:
    try:
        engine = img.engine()
    except img.NoEngine as exc:
        pytest.skip(f"no Docker engine: {exc}")
    work = tmp_path_factory.mktemp("image")
    timings: dict[str, float] = {}
    debootstrap = img.base_image(engine, work)
    if debootstrap is not None:
        timings["debootstrap"] = debootstrap
    timings["wheelhouse"] = img.wheelhouse(sys.executable)
    built = img.build(engine, img.sync_context())
    timings["build"] = built.seconds
    assert engine.image_exists(img.IMAGE)
    models, transfer = work / "models", work / "transfer"
    models.mkdir()
    transfer.mkdir()
    transfer.chmod(0o777)  # the admin service runs as the image's user (uid 10001) and writes requests here
    override = work / "compose.override.json"
    override.write_text(json.dumps(_override(models, transfer), indent=2))
    assert img.free_loopback_port(PORT), f"port {PORT} is taken on this host: the appliance cannot listen there"
    deployment = img.Deployment(engine, f"sotto-test-{secrets.token_hex(4)}", override, models, transfer, timings)
    try:
        started = time.monotonic()
        try:
            deployment.compose("up", "-d", "appliance", timeout=300)
        except AssertionError as exc:
            if "could not select device driver" in str(exc):
                pytest.fail(
                    "the running Docker engine has no NVIDIA device driver for compose.yaml's GPU reservation: on a "
                    f"CPU host, run dockerd with {img.NVIDIA_HOOK} on its PATH (this test starts it so when no "
                    f"engine runs; tests/distribution/image_support.py)\n{exc}"
                )
            raise
        deployment.wait_healthy()
        timings["up_to_healthy"] = time.monotonic() - started
        yield deployment
    finally:
        deployment.down()


def _client(**kw: object) -> httpx.Client:
    return httpx.Client(base_url=URL, verify=False, timeout=120, **kw)  # type: ignore[arg-type]


def _transcribed(api: httpx.Client, name: str, wav: bytes) -> dict[str, str]:
    """Send a recording and wait for its job to end; the job must be done."""
    job = api.post("/api/v1/transcriptions", files={"file": (name, wav, "audio/wav")})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 180
    while (state := api.get(f"/api/v1/jobs/{job.json()['job_id']}").json())["state"] not in {"done", "failed"}:
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["state"] == "done", state
    return state


@pytest.mark.timeout(1200)
def test_the_image_builds_from_the_wheelhouse_and_the_service_becomes_healthy(deployment: img.Deployment) -> None:
    size = img.image_size(deployment.engine, img.IMAGE)
    times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in deployment.timings.items())
    print(f"\nimage {img.IMAGE}: {size / 1e9:.2f} GB ({size} bytes) on the bookworm stand-in base; {times}")
    assert deployment.health() == "healthy"
    inspected = deployment.inspect(deployment.container())
    host_config = inspected["HostConfig"]
    assert isinstance(host_config, dict)
    assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
    assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
    # Reachable from this host only: the published port is bound to loopback.
    published = deployment.engine.run("port", deployment.container(), f"{PORT}/tcp").stdout.split()
    assert published == [f"127.0.0.1:{PORT}"], published
    # compose.yaml's GPU reservation reached the engine unchanged (answered here by the CPU stand-in hook).
    assert [r["Driver"] for r in host_config.get("DeviceRequests") or []] == ["nvidia"]
    # The wheelhouse was mounted into the build, never copied into a layer.
    history = deployment.engine.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", img.IMAGE).stdout
    assert "wheelhouse" not in history


@pytest.mark.timeout(300)
def test_a_session_through_the_running_service(deployment: img.Deployment, tmp_path: Path) -> None:
    codes = re.findall(r"setup code ([0-9a-f]{8})", deployment.logs())
    assert codes, deployment.logs()[-2000:]
    with _client() as browser:
        made = browser.post("/setup", data={"setup_code": codes[-1], "email": EMAIL, "password": PASSWORD})
        assert made.status_code == 200 and "was created" in made.text, made.text[-1000:]
        login = browser.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        browser.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        key = browser.post("/api/v1/apikeys", json={"name": "image test", "scope": "admin"})
        assert key.status_code in (200, 201), key.text
    wav = speak(tmp_path / "giraffes.wav", SENTENCE)
    with _client(headers={"Authorization": f"Bearer {key.json()['key']}"}) as api:
        state = _transcribed(api, "giraffes.wav", wav.read_bytes())
        transcript = api.get(f"/api/v1/transcripts/{state['transcript_id']}").json()
    text = transcript["text"].lower()
    assert all(word in text for word in HEARD), text
    words = [w for segment in transcript["segments"] for w in segment["words"]]
    assert len(words) >= 5 and all(w["end"] >= w["start"] for w in words), words
    SESSION.update(key=key.json()["key"], transcript_id=state["transcript_id"], text=transcript["text"])


def _wait_serving(timeout: float = 180) -> None:
    """Until /healthz answers over HTTPS: Docker's own health check (the first test waits for it) runs
    every 30 s, which would only add waiting here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _client() as probe:
                if probe.get("/healthz").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the appliance did not answer /healthz within {timeout:.0f} s"
        time.sleep(0.5)


SESSION: dict[str, str] = {}  # what the session test made, for the tests after it (one module, in order)


def _transcript() -> str:
    assert SESSION, "the session test did not run or failed"
    with _client(headers={"Authorization": f"Bearer {SESSION['key']}"}) as api:
        got = api.get(f"/api/v1/transcripts/{SESSION['transcript_id']}")
    assert got.status_code == 200, got.text
    return str(got.json()["text"])


OUTBOUND = re.compile(r"^(?:\[pid +\d+\] |\d+ +)?(connect|sendto|sendmsg|sendmmsg)\((.*)$")
LOOPBACK = re.compile(r'sa_family=AF_UNIX|inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|sin6_addr=in6addr_loopback')


def _outbound(trace: str) -> list[str]:
    """connect/sendto/sendmsg lines aimed at an address that is not a Unix socket or loopback (a send on
    a connected socket names no address and is not one); and any socket the kernel lock refused."""
    bad = []
    for line in trace.splitlines():
        match = OUTBOUND.match(line)
        leaves = bool(match and "sa_family=" in match.group(2) and not LOOPBACK.search(match.group(2)))
        refused = "socket(" in line and ("EPERM" in line or "EACCES" in line)
        if leaves or refused:
            bad.append(line)
    return bad


@pytest.mark.timeout(240)
def test_the_containers_processes_connect_nowhere(deployment: img.Deployment, tmp_path: Path) -> None:
    """Syscall-level, from the host, as tests/core/test_no_egress.py does for the host process: every
    thread of the appliance in the container, traced through a transcription, opens no connection and
    sends no datagram beyond loopback and Unix sockets."""
    strace = shutil.which("strace")
    assert strace, "strace is required (scripts/test installs it)"
    pid = deployment.inspect(deployment.container())["State"]["Pid"]  # type: ignore[index]
    out = tmp_path / "trace"
    tracer = subprocess.Popen(
        [
            strace,
            "-f",
            "-qq",
            "-p",
            str(pid),
            "-e",
            "trace=socket,connect,sendto,sendmsg,sendmmsg,accept,accept4",
            "-o",
            str(out),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2)  # attached to every thread
        assert tracer.poll() is None, tracer.stderr.read().decode() if tracer.stderr else ""
        wav = speak(tmp_path / "second.wav", SENTENCE)
        with _client(headers={"Authorization": f"Bearer {SESSION['key']}"}) as api:
            _transcribed(api, "second.wav", wav.read_bytes())
    finally:
        tracer.send_signal(signal.SIGINT)  # strace detaches and leaves the process running
        tracer.wait(timeout=60)
    trace = out.read_text(errors="replace")
    # The server accepted the test's own connections: the trace saw the threads that do the work.
    assert re.search(r"accept4?\(", trace), f"strace saw no accepted connection: not attached?\n{trace[:2000]}"
    assert _outbound(trace) == [], _outbound(trace)[:20]
    assert deployment.health() != "unhealthy"


@pytest.mark.timeout(120)
def test_nothing_is_written_outside_data_and_tmp(deployment: img.Deployment) -> None:
    container = deployment.container()
    inspected = deployment.inspect(container)
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True  # type: ignore[index]
    # The engine creates a mount point missing from the image (/etc/machine-id, bind-mounted from the host)
    # in the container's layer before the process starts: those entries and their parent directories are
    # the engine's, not writes. Everything else would be.
    targets = {str(m["Destination"]) for m in inspected["Mounts"]}  # type: ignore[attr-defined]
    parents = {str(p) for t in targets for p in Path(t).parents}
    changes = [line.split(" ", 1) for line in deployment.engine.run("diff", container).stdout.splitlines() if line.strip()]
    written = [
        f"{kind} {path}" for kind, path in changes if not ((kind == "A" and path in targets) or (kind == "C" and path in parents))
    ]
    assert written == [], f"the container wrote to its own filesystem: {written}"


@pytest.mark.timeout(300)
def test_the_admin_service_runs_the_selftest_with_no_network(deployment: img.Deployment) -> None:
    done = deployment.compose("--profile", "admin", "run", "--rm", "admin", "doctor", "--selftest", timeout=280, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["ok"] is True and report["egress_attempts"] == [], report
    assert report["device"]["selected"] == "cpu"


@pytest.mark.timeout(180)
def test_a_licence_request_through_the_admin_service(deployment: img.Deployment) -> None:
    done = deployment.compose(
        "--profile", "admin", "run", "--rm", "admin", "license", "request", "--key", "ORDER-42",
        "--out", "/transfer/activation-request.json", timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    request = json.loads((deployment.transfer / "activation-request.json").read_text())
    assert "ORDER-42" in json.dumps(request) and request.get("fingerprint"), request


@pytest.mark.timeout(240)
def test_a_licence_from_an_unknown_signer_is_refused_by_the_admin_service(deployment: img.Deployment) -> None:
    """`license install` through the admin service (no network): the image trusts only the vendor's
    production keys, so a licence for this very machine signed by any other key is refused with a reason,
    and the licence state stays as it was. (A production-signed licence cannot be made here.)"""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from appliance.licensing.licence import PRODUCT
    from appliance.licensing.vendor import sign

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return deployment.compose("--profile", "admin", "run", "--rm", "admin", *args, timeout=170, check=False)

    request = json.loads((deployment.transfer / "activation-request.json").read_text())
    payload = {"product": PRODUCT, "license_key": "ORDER-42", "fingerprint": request["fingerprint"], "serial": 1}
    (deployment.transfer / "license.lic").write_text(sign(payload, Ed25519PrivateKey.generate(), "not-the-vendor"))
    before = admin("license", "status", "--json")
    assert before.returncode == 0, before.stderr[-2000:]
    refused = admin("license", "install", "/transfer/license.lic")
    assert refused.returncode != 0 and "not installed" in refused.stdout + refused.stderr, refused
    after = admin("license", "status", "--json")
    state = json.loads(after.stdout[after.stdout.index("{") :])
    assert state["state"] == json.loads(before.stdout[before.stdout.index("{") :])["state"] == "evaluation", state


@pytest.mark.timeout(300)
def test_a_restart_keeps_the_transcripts_and_fails_interrupted_jobs_with_the_reason(
    deployment: img.Deployment, tmp_path: Path
) -> None:
    from appliance.transcription.jobs import RESTART_REASON

    before = _transcript()
    # Several long recordings at once, then the restart: those still waiting or running lose their audio
    # (it was only ever in memory) and must say so, not hang or vanish.
    wav = speak(tmp_path / "long.wav", " ".join([SENTENCE] * 8)).read_bytes()
    with _client(headers={"Authorization": f"Bearer {SESSION['key']}"}) as api:
        jobs = []
        for n in range(4):
            sent = api.post("/api/v1/transcriptions", files={"file": (f"long-{n}.wav", wav, "audio/wav")})
            assert sent.status_code == 202, sent.text
            jobs.append(sent.json()["job_id"])
    deployment.compose("restart", "appliance", timeout=120)
    _wait_serving()
    assert _transcript() == before == SESSION["text"]
    with _client(headers={"Authorization": f"Bearer {SESSION['key']}"}) as api:
        states = [api.get(f"/api/v1/jobs/{job}").json() for job in jobs]
    assert all(s["state"] in {"done", "failed"} for s in states), states
    interrupted = [s for s in states if s["state"] == "failed"]
    assert interrupted, f"every job finished before the restart: nothing was interrupted {states}"
    assert all(s["error"] == RESTART_REASON for s in interrupted), interrupted


@pytest.mark.timeout(300)
def test_down_and_up_with_the_same_volume_keep_the_transcripts(deployment: img.Deployment) -> None:
    first = deployment.container()
    deployment.compose("down", timeout=120)  # the containers go, the named volume stays
    deployment.compose("up", "-d", "appliance", timeout=300)
    assert deployment.container() != first
    _wait_serving()
    assert _transcript() == SESSION["text"]


@pytest.mark.timeout(120)
def test_the_data_volume_holds_only_the_appliances_files(deployment: img.Deployment) -> None:
    files = deployment.volume_files()
    print("\n/data after the session:\n  " + "\n  ".join(files))
    assert "appliance.db" in files
    strangers = [f for f in files if f.split("/", 1)[0] not in OWN_DATA]
    assert strangers == [], f"files in /data that are not the appliance's own: {strangers}"
    caches = [f for f in files if re.search(r"(^|/)(\.cache|\.nv|Microsoft|\.onnxruntime|__pycache__)(/|$)", f)]
    assert caches == [], caches


@pytest.mark.timeout(600)
def test_a_code_change_rebuilds_the_code_layer_only(deployment: img.Deployment) -> None:
    engine = deployment.engine
    changed = img.build(engine, img.sync_context(marker=f"code change {secrets.token_hex(4)}"), tag=f"{img.IMAGE}-changed")
    try:
        assert changed.step_cached(LOCK_STEP), "a code change reinstalled the locked dependencies"
        assert not changed.step_cached("COPY appliance /src/appliance")
        layers = [
            engine.run("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout
            for ref in (img.IMAGE, f"{img.IMAGE}-changed")
        ]
        before, after = (json.loads(x) for x in layers)
        # Everything up to the environment is the same layer; only the code and the SBOM written from it differ.
        assert before[:-2] == after[:-2] and before[-2:] != after[-2:]
        print(f"\nrebuild after a code change: {changed.seconds:.0f} s")
    finally:
        engine.run("image", "rm", f"{img.IMAGE}-changed", check=False)
        img.sync_context()
