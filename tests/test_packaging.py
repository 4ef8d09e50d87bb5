"""The Docker files and README stay in step with the code (no Docker engine needed)."""

import json
import re
import subprocess
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from appliance import bundle
from appliance.config import load
from tests.conftest import REPO


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


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and canonicalize_name(name) not in pins, f"bad or repeated lock line {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_dockerfile_is_multistage_cuda12_nonroot_with_volumes_healthcheck_and_tls_port() -> None:
    stages = _instructions("FROM")
    assert len(stages) >= 2 and all(s.startswith("${CUDA_IMAGE}") for s in stages)
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


def test_every_python_dependency_the_dockerfile_installs_matches_pyproject() -> None:
    installs = [cmd for run in _instructions("RUN") for cmd in run.split("&&") if "pip install" in cmd]
    assert installs
    pins = _lock()
    for cmd in installs:
        tokens = cmd.split()[cmd.split().index("install") + 1 :]
        # No resolver at build time: only the lock's exact versions, then the package itself.
        assert "--no-deps" in tokens, cmd
        for token in tokens:
            if "==" in token:  # an explicit pin must agree with the lock (and so with pyproject)
                requirement = Requirement(token.strip("'\""))
                assert pins[canonicalize_name(requirement.name)] == str(requirement.specifier)[2:], token
    assert any("-r /src/requirements.lock" in c for c in installs) and any(c.strip().endswith("/src") for c in installs)
    project = _pyproject()["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["pyannote"]
    for line in wanted:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is in pyproject.toml but not in requirements.lock"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"lock has {requirement.name}=={version}, pyproject wants {requirement.specifier}"
        )
    # The no-deps extra (its version is pinned in pyproject's comment and scripts/test) is in the lock too.
    resemblyzer = re.search(r"resemblyzer==([\d.]+)", (REPO / "pyproject.toml").read_text()).group(1)
    assert pins["resemblyzer"] == resemblyzer and f"resemblyzer=={resemblyzer}" in (REPO / "scripts" / "test").read_text()
    # onnxruntime and onnxruntime-gpu provide the same module: exactly one.
    assert ("onnxruntime" in pins) != ("onnxruntime-gpu" in pins)
    assert "sotto-appliance" not in pins


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
    # The hardening the egress lock must work under (tests/test_no_egress.py runs it the same way).
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    assert service["tmpfs"] == ["/tmp"]
    # The console log lands on the host's disk: bounded (and content-free, tests/test_no_egress.py).
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


def test_scripts_are_strict_executable_and_parse() -> None:
    for name in ("offline-bundle.sh", "install.sh"):
        script = REPO / "scripts" / name
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
        assert script.stat().st_mode & 0o111
        subprocess.run(["bash", "-n", str(script)], check=True)
    # install.sh trusts the release keys that ship in tools/release_keys.py: the grep it uses finds them.
    from appliance import release_keys

    found = re.findall(r'"(RW[A-Za-z0-9+/=]*)"', (REPO / "appliance" / "release_keys.py").read_text())
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
