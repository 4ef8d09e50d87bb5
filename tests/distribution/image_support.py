"""The appliance image on a CPU host, for tests/distribution/test_image.py: a Docker engine (started here
when none runs), a Debian bookworm stand-in for the CUDA base image, the wheelhouse, the build, and
compose.yaml brought up under its own project name.

Everything slow is cached on the machine under ~/.cache/sotto-test (override: SOTTO_TEST_CACHE): the
base image by its tag in the engine, the wheelhouse and the build context (a stable path, so BuildKit
sends only what changed), and the engine's own layer cache."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SOTTO_TEST_CACHE") or Path.home() / ".cache" / "sotto-test")
BASE_IMAGE = "sotto-test/cpu-base:bookworm"
IMAGE = "sotto-test/appliance:cpu"
SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/tmp/sotto-test-dockerd.log")
# What the image build reads (Dockerfile.cuda's COPY lines and .dockerignore): the build context holds
# these and the wheelhouse, nothing else.
CONTEXT_FILES = ("Dockerfile.cuda", ".dockerignore", "requirements.lock", "requirements-sbom.lock", "pyproject.toml", "README.md")
# The NVIDIA Container Toolkit's prestart hook, by the name Docker looks for: the engine registers its
# "nvidia" device driver only when this is on its PATH. compose.yaml reserves the GPU that way and an
# override cannot remove a reservation (Compose merges the device lists), so a CPU host gets this
# stand-in, which lets the container start with no GPU, the way the CPU base stands in for CUDA's.
NVIDIA_HOOK = "nvidia-container-runtime-hook"
HOOK_STAND_IN = (
    "#!/bin/sh\n# CPU stand-in for the NVIDIA hook (tests/distribution/image_support.py): no GPU to add.\ncat >/dev/null\n"
)


class NoEngine(Exception):
    """No Docker engine runs here and none could be started (the image test is skipped)."""


@dataclass(frozen=True)
class Engine:
    """A running Docker engine and the clients that talk to it."""

    docker: str  # a client that builds with BuildKit (see _client)
    compose: tuple[str, ...]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: IO[bytes] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _run([self.docker, *args], timeout=timeout, check=check, stdin=stdin)

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0


def _run(
    argv: list[str],
    *,
    timeout: float,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: IO[bytes] | None = None,
) -> subprocess.CompletedProcess[str]:
    # stdin (a pipe from tar) is passed on as a file descriptor: text mode applies to the answer only.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv[:4])} ... failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def _client() -> str | None:
    """A client whose `docker build` uses BuildKit: one with the buildx plugin, or one from before
    Docker 23 (BuildKit built in, as Debian's docker.io ships). A newer client without buildx (one
    installed beside the distribution's engine, say) can only use the legacy builder, which has no
    `RUN --mount`. Every client negotiates the API version with the engine."""
    candidates = list(dict.fromkeys(p for p in (shutil.which("docker"), "/usr/bin/docker") if p and Path(p).exists()))
    for docker in candidates:
        if subprocess.run([docker, "buildx", "version"], capture_output=True, timeout=30).returncode == 0:
            return docker
        version = subprocess.run(
            [docker, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, timeout=30
        )
        major = version.stdout.strip().split(".", 1)[0]
        if major.isdigit() and int(major) < 23:
            return docker
    return candidates[0] if candidates else None


def _answers(docker: str) -> bool:
    return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


def engine() -> Engine:
    """The local engine, started (as root, in the background, its log in /tmp) when none answers."""
    docker = _client()
    if docker is None:
        raise NoEngine("no docker client installed (scripts/test installs docker.io)")
    if not _answers(docker):
        _start_dockerd()
        deadline = time.monotonic() + 60
        while not (SOCKET.exists() and _answers(docker)):
            if time.monotonic() > deadline:
                raise NoEngine(f"dockerd did not answer within 60 s; its log: {DOCKERD_LOG}\n{_tail(DOCKERD_LOG)}")
            time.sleep(0.5)
    compose: tuple[str, ...]
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        compose = (docker, "compose")
    elif shutil.which("docker-compose"):
        compose = (str(shutil.which("docker-compose")),)
    else:
        raise NoEngine("no Compose implementation (scripts/test installs docker-compose)")
    return Engine(docker, compose)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start_dockerd() -> None:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise NoEngine("no Docker engine installed (scripts/test installs docker.io)")
    if os.geteuid() != 0:
        raise NoEngine("no Docker engine runs and starting one needs root")
    env = dict(os.environ)
    if shutil.which(NVIDIA_HOOK) is None:
        hooks = CACHE / "bin"
        hooks.mkdir(parents=True, exist_ok=True)
        hook = hooks / NVIDIA_HOOK
        hook.write_text(HOOK_STAND_IN)
        hook.chmod(0o755)
        env["PATH"] = f"{hooks}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    with DOCKERD_LOG.open("ab") as log:
        # A daemon of its own session: it outlives the test run, like a system service, so its layer
        # cache serves the next run on this machine.
        subprocess.Popen([dockerd], stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True)


# --------------------------------------------------------------------------- the stand-in base


def _host_apt_proxy() -> list[str]:
    """The host's apt proxy settings (Acquire::http(s)::Proxy), to reach the same mirror from the base."""
    try:
        dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in dump.splitlines() if line.lower().startswith(("acquire::http::proxy", "acquire::https::proxy"))]


def _host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 or one-line sources), else deb.debian.org."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and words[1].rstrip("/").endswith("/debian"):
                return words[1].rstrip("/")
            if len(words) > 2 and words[0] == "deb" and words[1].startswith("http") and words[2] == "bookworm":
                return words[1].rstrip("/")
    return "http://deb.debian.org/debian"


def base_image(engine: Engine, workdir: Path) -> float | None:
    """Make the stand-in for the CUDA base: a Debian bookworm minbase root filesystem (debootstrap) whose
    apt reaches bookworm, bookworm-updates and security like the host's, imported as BASE_IMAGE. Skipped
    when the tag exists. Returns the seconds debootstrap took, or None when cached."""
    if engine.image_exists(BASE_IMAGE):
        return None
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    mirror = _host_mirror()
    root = workdir / "rootfs"
    started = time.monotonic()
    _run([debootstrap, "--variant=minbase", "bookworm", str(root), mirror], timeout=900)
    took = time.monotonic() - started
    security = (
        mirror.rsplit("/", 1)[0] + "/debian-security" if mirror.endswith("/debian") else "http://deb.debian.org/debian-security"
    )
    (root / "etc/apt/sources.list").write_text(
        f"deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\ndeb {security} bookworm-security main\n"
    )
    proxy = _host_apt_proxy()
    if proxy:
        (root / "etc/apt/apt.conf.d/01proxy").write_text("\n".join(proxy) + "\n")
    # What debootstrap downloaded is not part of the system: the image starts as small as CUDA's.
    for leftover in [*(root / "var/cache/apt/archives").glob("*.deb"), *(root / "var/lib/apt/lists").glob("*_*")]:
        leftover.unlink()
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        engine.run("import", "-", BASE_IMAGE, stdin=tar.stdout, timeout=300)
    finally:
        tar.wait(timeout=300)
    shutil.rmtree(root, ignore_errors=True)
    return took


# --------------------------------------------------------------------------- the wheelhouse and the build


def context_dir() -> Path:
    return CACHE / "context"


def wheelhouse(python: str) -> float:
    """scripts/wheelhouse.sh into the build context's wheelhouse (a second run only checks the hashes)."""
    started = time.monotonic()
    env = {**os.environ, "PYTHON": python}
    _run([str(REPO / "scripts/wheelhouse.sh"), str(context_dir() / "wheelhouse")], timeout=900, env=env)
    return time.monotonic() - started


def sync_context(marker: str | None = None) -> Path:
    """Copy what the build reads from the checkout into the cached context; `marker` is appended to
    the appliance package as a comment: a code change, for the layer-cache check."""
    context = context_dir()
    context.mkdir(parents=True, exist_ok=True)
    for name in CONTEXT_FILES:
        shutil.copy2(REPO / name, context / name)
    shutil.rmtree(context / "appliance", ignore_errors=True)
    shutil.copytree(REPO / "appliance", context / "appliance", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if marker is not None:
        with (context / "appliance/__init__.py").open("a") as init:
            init.write(f"# {marker}\n")
    return context


@dataclass(frozen=True)
class Build:
    seconds: float
    log: str

    def step_cached(self, fragment: str) -> bool:
        """Whether BuildKit took the step whose instruction contains `fragment` from its cache."""
        steps: dict[str, str] = {}
        for line in self.log.splitlines():
            parts = line.split(" ", 1)
            if len(parts) == 2 and parts[0].startswith("#") and parts[0][1:].isdigit():
                steps.setdefault(parts[0], parts[1])
                if parts[1].strip() == "CACHED":
                    steps[parts[0]] += " CACHED"
        matching = [text for text in steps.values() if fragment in text and text.startswith("[")]
        if not matching:
            raise AssertionError(f"no build step with {fragment!r} in the log:\n{self.log[-4000:]}")
        return all(text.endswith(" CACHED") for text in matching)


def build(engine: Engine, context: Path, tag: str = IMAGE) -> Build:
    """Dockerfile.cuda with only the base changed, by the engine's built-in BuildKit."""
    started = time.monotonic()
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    done = _run(
        [
            engine.docker,
            "build",
            "--progress=plain",
            "-f",
            "Dockerfile.cuda",
            "--build-arg",
            f"CUDA_IMAGE={BASE_IMAGE}",
            "-t",
            tag,
            ".",
        ],
        timeout=1200,
        env=env,
        cwd=context,
    )
    # The build this tag named before is left untagged: drop such images of ours (only dangling ones
    # with the image's title label), or every code change would keep another copy on the disk.
    engine.run("image", "prune", "-f", "--filter", "label=org.opencontainers.image.title=Sotto appliance", timeout=300)
    return Build(time.monotonic() - started, done.stdout + done.stderr)


def image_size(engine: Engine, ref: str) -> int:
    return int(engine.run("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


# --------------------------------------------------------------------------- compose


def free_loopback_port(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Deployment:
    """compose.yaml under a project name of its own, with an override for what a CPU host lacks."""

    engine: Engine
    project: str
    override: Path
    models: Path
    transfer: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def volume(self) -> str:
        return f"{self.project}_appliance-data"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*self.engine.compose, "-p", self.project, "-f", str(REPO / "compose.yaml"), "-f", str(self.override), *args]
        return _run(argv, timeout=timeout, check=check, cwd=REPO)

    def container(self, service: str = "appliance") -> str:
        ids = self.compose("ps", "-q", service).stdout.split()
        if len(ids) != 1:
            raise AssertionError(f"expected one {service} container, found {ids}")
        return ids[0]

    def inspect(self, container: str) -> dict[str, object]:
        loaded: list[dict[str, object]] = json.loads(self.engine.run("inspect", container).stdout)
        return loaded[0]

    def health(self) -> str:
        state = self.inspect(self.container())["State"]
        assert isinstance(state, dict)
        health = state.get("Health") or {}
        return str(health.get("Status", "none"))

    def wait_healthy(self, timeout: float = 240) -> float:
        """Until Docker's own health check (the image's HEALTHCHECK, compose.yaml's interval) passes."""
        started = time.monotonic()
        while (status := self.health()) != "healthy":
            if status == "unhealthy" or time.monotonic() - started > timeout:
                logs = self.compose("logs", "--no-color", "--tail", "60", "appliance", check=False).stdout
                raise AssertionError(f"the appliance is {status} after {time.monotonic() - started:.0f} s:\n{logs}")
            time.sleep(1)
        return time.monotonic() - started

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "appliance").stdout

    def volume_files(self) -> list[str]:
        """Every path in the data volume, relative to it, read by a throwaway container of the image."""
        listed = self.engine.run(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{self.volume}:/data:ro",
            "--entrypoint",
            "find",
            IMAGE,
            "/data",
            "-mindepth",
            "1",
        )
        return sorted(line.removeprefix("/data/") for line in listed.stdout.splitlines())

    def down(self) -> None:
        self.compose("--profile", "admin", "down", "-v", "--remove-orphans", timeout=180, check=False)
