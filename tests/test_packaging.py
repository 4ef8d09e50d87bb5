"""The Docker files and README stay in step with the code (no Docker engine needed)."""

import re
from pathlib import Path

import yaml

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
