"""The software bill of materials and the third-party notices of an installation.

Made by maintained tools, then completed: `cyclonedx-py environment` lists the Python packages of an
environment (CycloneDX 1.6 JSON) and `pip-licenses` collects their licence and notice texts; this module
adds what those tools cannot see, the Debian packages (from dpkg's status file, with their copyright
files) and the model weights (with each file's SHA-256, from appliance/data/weights.json and the signed
manifests of installed model packs). Dockerfile.cuda runs it into the image's SBOM_DIR; the offline bundle
carries both files and lists them in its signed manifest; `appliance doctor` reports the SBOM's digest.

    python -m appliance.distribution.sbom --python /opt/venv/bin/python --out DIR [--dpkg-status FILE] [--models DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.transcription import weights

SBOM_NAME = "sbom.cdx.json"
NOTICES_NAME = "THIRD_PARTY_NOTICES.txt"
# Where an installed appliance keeps them: beside its virtual environment (/opt/venv/share/sotto in the image).
SBOM_DIR = Path(sys.prefix) / "share" / "sotto"

LGPL_NOTE = """\
================================================================================
LGPL-3.0 components and how to replace them
================================================================================
fpdf2 (the PDF export) is licensed under the GNU Lesser General Public License v3.0. It ships as
unmodified Python source in /opt/venv/lib/python3.11/site-packages/fpdf/, is imported by name only,
and can be replaced by any compatible version: build an image FROM the appliance image with
`RUN pip install --no-deps fpdf2==<version>`, or mount a directory holding another version over that
path (read-only). Its complete licence text is below, with its package entry. FFmpeg's libraries inside
PyAV (av) are LGPL builds, shipped as the shared libraries in av.libs/, replaceable the same way.
"""


class SbomError(RuntimeError):
    """A tool failed or an input is unreadable; the message says which."""


@dataclass(frozen=True)
class Made:
    sbom: Path
    notices: Path
    sbom_sha256: str
    components: int


def _tool(name: str) -> str:
    """A console script installed beside this interpreter (the test and build environments have them)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        raise SbomError(f"{name} is not installed (it comes with the test extra: requirements-test.lock)")
    return found


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SbomError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def debian_packages(status: Path) -> list[dict[str, str]]:
    """Installed packages from dpkg's status file: name, version, architecture, source."""
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SbomError(f"cannot read {status}: {exc}") from None
    packages = []
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            packages.append(
                {
                    "name": fields["Package"],
                    "version": fields.get("Version", ""),
                    "arch": fields.get("Architecture", ""),
                    "source": fields.get("Source", fields["Package"]).split()[0],
                }
            )
    return sorted(packages, key=lambda p: p["name"])


def _distro(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            if line.startswith("ID="):
                return line[3:].strip().strip('"') or "debian"
    except OSError:
        pass
    return "debian"


def _deb_component(package: dict[str, str], distro: str) -> dict[str, Any]:
    purl = f"pkg:deb/{distro}/{package['name']}@{package['version']}?arch={package['arch']}"
    return {
        "type": "library",
        "bom-ref": purl,
        "name": package["name"],
        "version": package["version"],
        "purl": purl,
        "properties": [{"name": "sotto:source-package", "value": package["source"]}],
    }


def _model_component(name: str, directory: Path, files: dict[str, str], origin: str) -> dict[str, Any]:
    return {
        "type": "machine-learning-model",
        "bom-ref": f"model:{name}",
        "name": name,
        "properties": [{"name": "sotto:origin", "value": origin}, {"name": "sotto:path", "value": str(directory)}],
        "components": [
            {"type": "file", "bom-ref": f"model:{name}/{path}", "name": path, "hashes": [{"alg": "SHA-256", "content": digest}]}
            for path, digest in sorted(files.items())
        ],
    }


def model_components(models_dir: Path | None) -> list[dict[str, Any]]:
    """The recorded weights (embedded Whisper, speaker encoder) and every installed model-pack version."""
    from appliance.distribution import model_packs

    data = json.loads(weights.RECORD.read_text(encoding="utf-8"))
    found = [
        _model_component(name, Path(entry["package"]), entry["files"], f"{entry['package']} ({entry['licence']})")
        for name, entry in data.items()
        if isinstance(entry, dict)
    ]
    store = models_dir / model_packs.PACKS if models_dir is not None else None
    if store is not None and store.is_dir():
        for record in sorted(store.glob("*@*.json")):
            manifest = model_packs.PackManifest.from_json(record.read_bytes())
            found.append(
                _model_component(
                    manifest.version,
                    store / manifest.version,
                    {f.path: f.sha256 for f in manifest.files},
                    f"model pack ({manifest.source or 'signed'})",
                )
            )
    return found


def generate(python: Path, out: Path, *, dpkg_status: Path | None = None, models_dir: Path | None = None) -> Made:
    """Write SBOM_NAME and NOTICES_NAME into `out` for the environment of `python`."""
    out.mkdir(parents=True, exist_ok=True)
    bom = json.loads(
        _run([_tool("cyclonedx-py"), "environment", "--of", "JSON", "--output-reproducible", "-o", "-", str(python)])
    )
    debs = debian_packages(dpkg_status) if dpkg_status is not None else []
    distro = _distro()
    bom["components"] = [*bom.get("components", []), *(_deb_component(p, distro) for p in debs), *model_components(models_dir)]
    sbom = out / SBOM_NAME
    sbom.write_text(json.dumps(bom, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    python_notices = _run(
        [
            _tool("pip-licenses"),
            "--python",
            str(python),
            "--with-license-file",
            "--with-notice-file",
            "--no-license-path",
            "--with-urls",
            "--format=plain-vertical",
        ]
    )
    parts = ["Third-party software in the Sotto appliance, and its licences.\n", LGPL_NOTE, "\n", python_notices]
    for package in debs:
        copyright_file = Path("/usr/share/doc") / package["name"] / "copyright"
        if copyright_file.is_file():
            parts.append(f"\n{'=' * 80}\n{package['name']} {package['version']} (Debian package)\n{'=' * 80}\n")
            parts.append(copyright_file.read_text(encoding="utf-8", errors="replace"))
    data = json.loads(weights.RECORD.read_text(encoding="utf-8"))
    parts.append(f"\n{'=' * 80}\nModel weights\n{'=' * 80}\n")
    parts.extend(f"{name}: {entry['package']}, {entry['licence']}\n" for name, entry in data.items() if isinstance(entry, dict))
    notices = out / NOTICES_NAME
    notices.write_text("".join(parts), encoding="utf-8")
    return Made(sbom, notices, weights.sha256_file(sbom), len(bom["components"]))


def report(directory: Path = SBOM_DIR) -> dict[str, Any]:
    """What `appliance doctor` says of the installation's SBOM: its digest, or that it is missing."""
    path = directory / SBOM_NAME
    if not path.is_file():
        return {
            "present": False,
            "path": str(path),
            "detail": "no SBOM here (it is made at image build; a development install has none)",
        }
    data = path.read_bytes()
    try:
        components = len(json.loads(data).get("components", []))
    except ValueError:
        return {"present": True, "path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "detail": "unreadable JSON"}
    return {
        "present": True,
        "path": str(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "components": components,
        "notices": (directory / NOTICES_NAME).is_file(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.distribution.sbom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the environment's interpreter")
    parser.add_argument("--out", type=Path, default=SBOM_DIR)
    parser.add_argument("--dpkg-status", type=Path, default=None, help="dpkg's status file (/var/lib/dpkg/status)")
    parser.add_argument("--models", type=Path, default=None, help="the models directory, for installed packs")
    args = parser.parse_args(argv)
    try:
        made = generate(args.python, args.out, dpkg_status=args.dpkg_status, models_dir=args.models)
    except SbomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{made.sbom} ({made.components} components, sha256 {made.sbom_sha256}); {made.notices}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
