"""The Docker files and README stay in step with the code (no Docker engine needed)."""

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from appliance.core.config import load
from appliance.distribution import bundle
from tests.locks import lock_pins, parse_lock
from tests.support import REPO


def _dockerfile_env() -> dict[str, str]:
    text = (REPO / "Dockerfile.cuda").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def test_dockerfile_settings_are_valid_and_offline() -> None:
    env = _dockerfile_env()
    settings = load(None, {k: v for k, v in env.items() if k.startswith("APPLIANCE_")})
    assert settings.storage.data_dir == Path("/data")
    assert settings.models.models_dir == Path("/models")
    for key, value in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYANNOTE_METRICS_ENABLED": "0"}.items():
        assert env[key] == value


def test_compose_reserves_gpu_and_mounts_models_read_only() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["appliance"]
    devices = service["deploy"]["resources"]["reservations"]["devices"][0]
    assert devices["driver"] == "nvidia" and "gpu" in devices["capabilities"]
    assert "./models:/models:ro" in service["volumes"]
    assert service["pull_policy"] == "never"
    load(None, {k: str(v) for k, v in service.get("environment", {}).items()})


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    assert "scripts/run" in readme and "scripts/test" in readme
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


# --------------------------------------------------------------------------- air-gapped packaging (issue #9)

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYANNOTE_METRICS_ENABLED": "0", "DO_NOT_TRACK": "1"}


def _dockerfile() -> str:
    return (REPO / "Dockerfile.cuda").read_text().replace("\\\n", " ")


def _instructions(keyword: str) -> list[str]:
    return [line.strip()[len(keyword) + 1 :] for line in _dockerfile().splitlines() if line.strip().startswith(keyword + " ")]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


LOCKS = {"requirements-test.lock": ("test", "pyannote"), "requirements.lock": ("pyannote",), "requirements-base.lock": ()}


@pytest.mark.parametrize("name", list(LOCKS))
def test_each_lock_is_generated_from_this_pyproject_and_pins_everything_with_hashes(name: str) -> None:
    header, entries = parse_lock(name)
    # Written by scripts/lock from exactly these inputs: a dependency changed in pyproject.toml without
    # running scripts/lock fails here.
    assert f"# inputs-sha256: {bundle.lock_inputs_digest()}\n" in header, f"{name} is stale: run scripts/lock"
    assert entries
    pins = lock_pins(name)
    project = _pyproject()["project"]
    wanted = list(project["dependencies"]) + [
        r for e in LOCKS[name] for r in project["optional-dependencies"][e] if not r.startswith("sotto-appliance")
    ]
    for line in wanted:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is in pyproject.toml but not in {name}"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name} has {requirement.name}=={version}, pyproject wants {requirement.specifier}"
        )
    # What ships is what the tests ran: the image's and scripts/run's locks take the test lock's versions.
    tested = lock_pins("requirements-test.lock")
    assert all(tested.get(key) == version for key, version in pins.items()), name
    # onnxruntime and onnxruntime-gpu provide the same module: exactly one.
    assert ("onnxruntime" in pins) != ("onnxruntime-gpu" in pins)
    assert "sotto-appliance" not in pins


def test_every_install_command_requires_hashes() -> None:
    for script, lock in (("scripts/test", "requirements-test.lock"), ("scripts/run", "requirements-base.lock")):
        text = (REPO / script).read_text()
        installs = [line for line in text.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
        assert any(f"--require-hashes --no-deps -r {lock}" in line for line in installs), script
        # Nothing else is resolved: the project itself goes in without dependencies or a build environment.
        assert all("--require-hashes" in line or ("--no-deps" in line and "--no-build-isolation" in line) for line in installs), (
            script
        )


def test_pip_refuses_a_package_whose_hash_was_changed_in_the_lock(tmp_path: Path) -> None:
    """The mechanism the test command relies on, end to end, offline: a wheel made here, a lock line with
    its real hash (installs), and the same line with one hex digit changed (refused, nothing installed)."""
    source = tmp_path / "src"
    (source / "sotto_hash_probe").mkdir(parents=True)
    (source / "sotto_hash_probe" / "__init__.py").write_text("")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "sotto-hash-probe"\nversion = "1.0"\n'
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    made = subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    wheel = next(wheels.glob("*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    bad = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    results = {}
    for label, value in (("right", digest), ("changed", bad)):
        lock = tmp_path / f"{label}.lock"
        lock.write_text(f"sotto-hash-probe==1.0 --hash=sha256:{value}\n")
        results[label] = subprocess.run(
            [
                *pip,
                "install",
                "--require-hashes",
                "--no-deps",
                "--no-index",
                "--find-links",
                str(wheels),
                "--target",
                str(tmp_path / label),
                "-r",
                str(lock),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert results["right"].returncode == 0, results["right"].stderr
    assert results["changed"].returncode != 0 and "DO NOT MATCH THE HASHES" in results["changed"].stderr
    assert not (tmp_path / "changed" / "sotto_hash_probe").exists()


def test_dockerfile_is_multistage_cuda12_nonroot_with_volumes_healthcheck_and_tls_port() -> None:
    stages = _instructions("FROM")
    # Every stage starts from the CUDA base or from an earlier stage (the app stage extends the build's).
    names: set[str] = set()
    for stage in stages:
        assert stage.startswith("${CUDA_IMAGE}") or stage.split()[0] in names, stage
        names.add(stage.split()[-1])
    assert len(stages) >= 2 and stages[-1] == "${CUDA_IMAGE}"
    base = bundle.dockerfile_base(REPO / "Dockerfile.cuda")
    assert base.startswith("nvidia/cuda:12.") and "ubuntu" in base
    user = _instructions("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert "--uid 10001" in _dockerfile()  # install.sh hands models/ to this uid (--owner 10001:10001)
    volumes = json.loads(_instructions("VOLUME")[-1])
    assert set(volumes) == {"/data", "/models"}
    env = _dockerfile_env()
    assert _instructions("EXPOSE") == [env["APPLIANCE_SERVER__PORT"]] == ["8443"]
    assert env["APPLIANCE_SECURITY__TLS"] == "on"
    for key, value in OFFLINE.items():
        assert env[key] == value
    healthcheck = _instructions("HEALTHCHECK")[-1]
    assert "https://127.0.0.1:8443/healthz" in healthcheck
    labels = bundle.dockerfile_labels(REPO / "Dockerfile.cuda")
    assert re.fullmatch(r"\d{3}\.\d+\.\d+", labels["sotto.min-nvidia-driver"])
    assert labels["org.opencontainers.image.version"] == _pyproject()["project"]["version"]


def test_every_python_dependency_the_dockerfile_installs_is_hash_locked() -> None:
    installs = [cmd for run in _instructions("RUN") for cmd in run.split("&&") if "pip install" in cmd]
    assert installs
    for cmd in installs:
        tokens = cmd.split()[cmd.split().index("install") + 1 :]
        # No resolver at build time: only the lock's exact, hashed files, then the package itself.
        assert "--no-deps" in tokens, cmd
        assert not any("==" in t for t in tokens), f"a pin outside the lock: {cmd}"
    assert any("--require-hashes --no-deps -r /src/requirements.lock" in c for c in installs)
    # Offline: only the wheelhouse scripts/wheelhouse.sh made (tests/distribution/test_image.py builds it).
    assert all("--no-index" in c for c in installs)
    assert any(c.strip().endswith("/src") and "--no-build-isolation" in c for c in installs)


def test_compose_appliance_service_is_locked_down() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["appliance"]
    assert service["image"] == f"sotto/appliance:{_pyproject()['project']['version']}"
    assert "build" not in service  # the customer has no build context, only the loaded image
    assert service["ports"] == ["8443:8443"]
    assert service["restart"] == "unless-stopped" and service["read_only"] is True
    assert "appliance-data:/data" in service["volumes"] and "appliance-data" in compose["volumes"]
    assert "/etc/machine-id:/etc/machine-id:ro" in service["volumes"]
    assert "8443/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["healthcheck"]["test"][0] == "CMD"
    # The hardening the egress lock must work under (tests/core/test_no_egress.py runs it the same way).
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    assert service["tmpfs"] == ["/tmp"]
    # The console log lands on the host's disk: bounded (and content-free, tests/core/test_no_egress.py).
    assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def test_compose_admin_profile_has_no_network() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    admin = compose["services"]["admin"]
    assert admin["profiles"] == ["admin"] and admin["network_mode"] == "none" and "ports" not in admin
    assert admin["pull_policy"] == "never" and admin["image"] == compose["services"]["appliance"]["image"]
    assert admin["entrypoint"] == ["appliance"] and admin["command"] == ["doctor", "--selftest"]
    assert "./models:/models" in admin["volumes"]  # writable: model packs are imported here
    assert admin["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    load(None, {k: str(v) for k, v in admin.get("environment", {}).items()})


def test_compose_worker_profile_is_locked_down_and_serves_no_users() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    worker = compose["services"]["worker"]
    appliance = compose["services"]["appliance"]
    # Only with `--profile worker`: a plain `docker compose up -d` is still the single box.
    assert worker["profiles"] == ["worker"] and "profiles" not in appliance
    assert worker["image"] == appliance["image"] and worker["pull_policy"] == "never" and "build" not in worker
    # Host networking (Ray connects to the node's own address) and no published port: no web port either.
    assert worker["network_mode"] == "host" and "ports" not in worker
    assert worker["command"][:3] == ["appliance", "worker", "--join"]
    assert worker["command"][3].endswith(":6379") and "--keys" in worker["command"] and "--address" in worker["command"]
    assert worker["read_only"] is True and worker["tmpfs"] == ["/tmp"]
    assert worker["cap_drop"] == ["ALL"] and "no-new-privileges:true" in worker["security_opt"]
    assert worker["shm_size"] == "4g"  # Ray's object store is in /dev/shm
    assert "./keys:/keys:ro" in worker["volumes"] and "./models:/models:ro" in worker["volumes"]
    # A worker node keeps no state of the control node's: not its data volume, not the licence's machine id.
    assert not any(v.startswith("appliance-data:") or "machine-id" in v for v in worker["volumes"])
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert worker["healthcheck"] == {"disable": True}  # the image's check asks for a web server it does not run
    assert worker["logging"] == appliance["logging"]
    load(None, {k: str(v) for k, v in worker.get("environment", {}).items()})


def test_compose_control_node_cluster_lines_are_valid_once_uncommented() -> None:
    """The appliance service carries the control node's cluster settings as comments; uncommented as the
    operator guide says, the file still parses and the cluster ports are published on one address only."""
    text = (REPO / "compose.yaml").read_text()
    lines = [
        re.sub(r"^(\s*)# ", r"\1", line) if re.match(r"\s*# (APPLIANCE_CLUSTER__|- \"10\.|shm_size:)", line) else line
        for line in text.splitlines()
    ]
    assert lines != text.splitlines()
    service = yaml.safe_load("\n".join(lines))["services"]["appliance"]
    assert service["environment"]["APPLIANCE_CLUSTER__ENABLED"] == "true"
    address = service["environment"]["APPLIANCE_CLUSTER__ADDRESS"]
    cluster_ports = [p for p in service["ports"] if p != "8443:8443"]
    assert cluster_ports == [f"{address}:6379-6385:6379-6385", f"{address}:6400-6499:6400-6499"]
    assert service["shm_size"] == "6g"


def test_scripts_are_strict_executable_and_parse() -> None:
    for name in ("offline-bundle.sh", "install.sh"):
        script = REPO / "scripts" / name
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
        assert script.stat().st_mode & 0o111
        subprocess.run(["bash", "-n", str(script)], check=True)
    # install.sh trusts the release keys that ship in tools/release_keys.py: the grep it uses finds them.
    from appliance.distribution import release_keys

    found = re.findall(r'"(RW[A-Za-z0-9+/=]*)"', (REPO / "appliance" / "distribution" / "release_keys.py").read_text())
    assert found == list(release_keys.RELEASE_KEYS)


def test_operator_guide_covers_the_operations_and_readme_links_it() -> None:
    guide = (REPO / "docs" / "operator-guide.md").read_text().lower()
    for topic in (
        "install",
        "upgrade",
        "backup",
        "restore",
        "licence",
        "tls",
        "certificate",
        "model pack",
        "rollback",
        "selftest",
        "troubleshooting",
        "driver",
        "535.54.03",
    ):
        assert topic in guide, topic
    assert "docs/operator-guide.md" in (REPO / "README.md").read_text()


def test_the_sbom_tools_lock_and_the_image_build_make_the_sbom() -> None:
    header, entries = parse_lock("requirements-sbom.lock")
    assert entries
    assert f"# inputs-sha256: {bundle.lock_inputs_digest()}\n" in header
    pins = lock_pins("requirements-sbom.lock")
    tested = lock_pins("requirements-test.lock")
    for line in bundle.sbom_tools():
        name, _, version = line.partition("==")
        assert pins[name] == version == tested[name]
    assert all(tested.get(key) == version for key, version in pins.items())
    # The runtime stage writes the SBOM of its own filesystem, with the tools mounted, not copied.
    runs = _instructions("RUN")
    sbom_run = next(r for r in runs if "appliance.distribution.sbom" in r)
    assert "--mount=type=bind,from=build,source=/opt/tools" in sbom_run and "--dpkg-status /var/lib/dpkg/status" in sbom_run
    assert "/opt/tools" not in " ".join(_instructions("COPY"))
