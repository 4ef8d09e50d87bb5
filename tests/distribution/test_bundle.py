"""The offline bundle: scripts/offline-bundle.sh makes it, the customer's install.sh verifies it.

No Docker and no network: a stand-in `docker save` archive and a local model directory replace the
image build and the hub download; install.sh runs with --skip-docker --skip-driver-check.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from appliance.distribution import bundle, bundle_verify, minisign, release_keys
from appliance.transcription.asr import ModelRegistry
from tests.signing_keys import OTHER_KEY, TEST_KEY
from tests.support import REPO

STAND_IN_SBOM = {
    "sbom.cdx.json": b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}\n',
    "THIRD_PARTY_NOTICES.txt": b"Third-party software in the Sotto appliance (stand-in image).\n",
}


def stand_in_image(path: Path, oci: bool = True) -> dict[str, str | None]:
    """A small archive shaped like `docker save` output (OCI layout on docker 25+, classic before), whose
    one layer holds what Dockerfile.cuda writes for the bundle: the SBOM and the third-party notices."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer_tar:
        for name, data in STAND_IN_SBOM.items():
            info = tarfile.TarInfo(f"{bundle.IMAGE_SBOM_DIR}/{name}")
            info.size = len(data)
            layer_tar.addfile(info, io.BytesIO(data))
    layer = buffer.getvalue()
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> str:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            return hashlib.sha256(data).hexdigest()

        if oci:
            layer_digest = add(f"blobs/sha256/{hashlib.sha256(layer).hexdigest()}", layer)
            config = json.dumps(
                {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": [f"sha256:{layer_digest}"]}}
            ).encode()
            config_digest = add(f"blobs/sha256/{hashlib.sha256(config).hexdigest()}", config)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "config": {"digest": f"sha256:{config_digest}"},
                    "layers": [{"digest": f"sha256:{layer_digest}"}],
                }
            ).encode()
            manifest_digest = add(f"blobs/sha256/{hashlib.sha256(manifest).hexdigest()}", manifest)
            add("index.json", json.dumps({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{manifest_digest}"}]}).encode())
            add(
                "manifest.json",
                json.dumps(
                    [
                        {
                            "Config": f"blobs/sha256/{config_digest}",
                            "RepoTags": ["sotto/appliance:0.1.0"],
                            "Layers": [f"blobs/sha256/{layer_digest}"],
                        }
                    ]
                ).encode(),
            )
            add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            return {"config_digest": f"sha256:{config_digest}", "manifest_digest": f"sha256:{manifest_digest}"}
        add("abc/layer.tar", layer)
        config_digest = add("0123.json", b'{"os": "linux"}')
        add(
            "manifest.json",
            json.dumps([{"Config": "0123.json", "RepoTags": ["sotto/appliance:0.1.0"], "Layers": ["abc/layer.tar"]}]).encode(),
        )
        return {"config_digest": f"sha256:{config_digest}", "manifest_digest": None}


def fake_whisper(directory: Path) -> Path:
    """A complete-looking Whisper directory: the bundle checks completeness and hashes, it never loads it."""
    directory.mkdir(parents=True)
    (directory / "model.bin").write_bytes(os.urandom(4096))
    (directory / "config.json").write_text('{"lang_ids": []}')
    (directory / "tokenizer.json").write_text("{}")
    (directory / "vocabulary.txt").write_text("a\nb\n")
    (directory / "preprocessor_config.json").write_text('{"feature_size": 80}')
    return directory


def fake_pyannote(directory: Path) -> Path:
    for name in (
        "config.yaml",
        "segmentation/pytorch_model.bin",
        "embedding/pytorch_model.bin",
        "plda/plda.npz",
        "plda/xvec_transform.npz",
        "LICENSE",
    ):
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(os.urandom(256))
    return directory


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", *args], capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One bundle, made once by the real script; tests copy it before altering anything."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "secret.key").write_text(TEST_KEY.to_text())
    (root / "public.key").write_text(TEST_KEY.public.to_text())
    digests = stand_in_image(root / "image.tar")
    fake_whisper(root / "local" / "large-v3")
    fake_pyannote(root / "local" / "pyannote-speaker-diarization-community-1")
    result = _script(
        str(REPO / "scripts" / "offline-bundle.sh"),
        "--signing-key",
        str(root / "secret.key"),
        "--out",
        str(root / "bundle"),
        "--models-from",
        str(root / "local"),
        "--image-archive",
        str(root / "image.tar"),
        "--cache",
        str(root / "cache"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"root": root, "bundle": root / "bundle", "public": root / "public.key", "digests": digests, "log": result.stdout}


def _copy(made: dict[str, object], tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(made["bundle"], target)  # type: ignore[arg-type]
    return target


def _install(
    bundle_dir: Path, public: Path, target: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _script(
        str(bundle_dir / "install.sh"),
        "--dir",
        str(target),
        "--public-key",
        str(public),
        "--skip-docker",
        "--skip-driver-check",
        *extra,
        env=env,
    )


def test_bundle_layout_and_manifest(made: dict[str, object]) -> None:
    root: Path = made["bundle"]  # type: ignore[assignment]
    files = set(bundle_verify.bundle_files(root))
    assert {
        "bundle.json",
        "SHA256SUMS",
        "SHA256SUMS.minisig",
        "install.sh",
        "compose.yaml",
        "config.example.toml",
        "README.txt",
        "images/appliance-0.1.0.tar.zst",
        "tools/bundle_verify.py",
        "tools/minisign.py",
        "tools/release_keys.py",
        "tools/model_packs.py",
        "sdk/sotto-client-0.1.0.tgz",
        "sbom.cdx.json",
        "THIRD_PARTY_NOTICES.txt",
    } <= files
    assert (root / "install.sh").stat().st_mode & 0o111
    # The image's SBOM and notices, taken out of its layers, listed by the signed manifest.
    for name, data in STAND_IN_SBOM.items():
        assert (root / name).read_bytes() == data
    sbom_entry = json.loads((root / "bundle.json").read_text())["sbom"]
    assert sbom_entry == {
        "path": "sbom.cdx.json",
        "sha256": hashlib.sha256(STAND_IN_SBOM["sbom.cdx.json"]).hexdigest(),
        "notices": "THIRD_PARTY_NOTICES.txt",
        "notices_sha256": hashlib.sha256(STAND_IN_SBOM["THIRD_PARTY_NOTICES.txt"]).hexdigest(),
    }
    manifest = json.loads((root / "bundle.json").read_text())
    assert manifest["version"] == "0.1.0"
    assert manifest["min_nvidia_driver"] == bundle.dockerfile_labels(REPO / "Dockerfile.cuda")["sotto.min-nvidia-driver"]
    assert manifest["image"]["config_digest"] == made["digests"]["config_digest"]  # type: ignore[index]
    assert manifest["image"]["manifest_digest"] == made["digests"]["manifest_digest"]  # type: ignore[index]
    kinds = {m["name"]: m["kind"] for m in manifest["models"]}
    assert kinds == {"large-v3": "whisper", "pyannote-speaker-diarization-community-1": "pyannote"}
    sums = bundle_verify.parse_sums((root / "SHA256SUMS").read_text())
    for model in manifest["models"]:
        assert model["path"] == f"models/{model['name']}@{model['revision']}"
        assert model["revision"] == "edaa852ec7e145841d8ffdb056a99866b5f0a478" if model["name"] == "large-v3" else True
        for f in model["files"]:
            assert sums[f"{model['path']}/{f['path']}"] == f["sha256"]
    # Sums cover every file but the sums and their signature.
    assert set(sums) == files - {"SHA256SUMS", "SHA256SUMS.minisig"}


def test_install_verifies_and_places_models_and_is_safe_to_rerun(made: dict[str, object], tmp_path: Path) -> None:
    target = tmp_path / "opt"
    first = _install(made["bundle"], made["public"], target)  # type: ignore[arg-type]
    assert first.returncode == 0, first.stdout + first.stderr
    assert "verified" in first.stdout and "Next steps" in first.stdout
    link = target / "models" / "large-v3"
    assert link.is_symlink() and os.readlink(link).startswith(".packs/large-v3@")
    assert (target / "compose.yaml").read_bytes() == (REPO / "compose.yaml").read_bytes()
    models, problems = ModelRegistry(target / "models", embedded=None).scan()
    assert models["large-v3"].revision == "edaa852ec7e145841d8ffdb056a99866b5f0a478" and not problems
    assert (target / "models" / "pyannote-speaker-diarization-community-1" / "plda" / "plda.npz").is_file()
    again = _install(made["bundle"], made["public"], target)  # type: ignore[arg-type]
    assert again.returncode == 0, again.stderr
    assert "(unchanged)" in again.stdout
    assert not list(Path(made["bundle"]).rglob("__pycache__"))  # type: ignore[arg-type]


def test_tampered_model_file_fails_verification(made: dict[str, object], tmp_path: Path) -> None:
    copy = _copy(made, tmp_path)
    weights = next(copy.glob("models/large-v3@*/model.bin"))
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = _install(copy, made["public"], tmp_path / "opt")  # type: ignore[arg-type]
    assert result.returncode != 0
    assert "model.bin does not match its SHA-256" in result.stderr
    assert not (tmp_path / "opt").exists()  # nothing was installed


def test_unlisted_extra_file_fails_verification(made: dict[str, object], tmp_path: Path) -> None:
    copy = _copy(made, tmp_path)
    (copy / "models" / "evil.sh").write_text("#!/bin/sh\n")
    result = _install(copy, made["public"], tmp_path / "opt")  # type: ignore[arg-type]
    assert result.returncode != 0
    assert "not listed in SHA256SUMS" in result.stderr and "models/evil.sh" in result.stderr


def test_bad_signature_fails_verification(made: dict[str, object], tmp_path: Path) -> None:
    copy = _copy(made, tmp_path)
    # An attacker re-signs the sums with their own key...
    (copy / "SHA256SUMS.minisig").write_text(OTHER_KEY.sign((copy / "SHA256SUMS").read_bytes()))
    result = _install(copy, made["public"], tmp_path / "opt")  # type: ignore[arg-type]
    assert result.returncode != 0 and "signature" in result.stderr.lower()
    # ...or edits SHA256SUMS to match a file they changed, keeping the original signature.
    copy2 = _copy(made, tmp_path / "second")
    sums = (copy2 / "SHA256SUMS").read_text()
    (copy2 / "README.txt").write_text("changed\n")
    line = next(line for line in sums.splitlines() if line.endswith("  README.txt"))
    new_line = f"{hashlib.sha256(b'changed' + bytes([10])).hexdigest()}  README.txt"
    (copy2 / "SHA256SUMS").write_text(sums.replace(line, new_line))
    result = _install(copy2, made["public"], tmp_path / "opt2")  # type: ignore[arg-type]
    assert result.returncode != 0 and "signature" in result.stderr.lower()


def test_bundle_signed_by_a_test_key_is_refused_without_it(made: dict[str, object], tmp_path: Path) -> None:
    """Without --public-key only Sotto's release keys are trusted (and the test key is not one of them)."""
    result = _script(
        str(Path(made["bundle"]) / "install.sh"),
        "--dir",
        str(tmp_path / "opt"),  # type: ignore[arg-type]
        "--skip-docker",
        "--skip-driver-check",
    )
    assert result.returncode != 0
    assert "not signed by a Sotto release key" in result.stderr or "unknown key" in result.stderr


def test_real_minisign_verifies_the_bundle_signature(made: dict[str, object]) -> None:
    if shutil.which("minisign") is None:
        pytest.fail("minisign is required (scripts/test installs it)")
    result = subprocess.run(
        ["minisign", "-Vm", str(Path(made["bundle"]) / "SHA256SUMS"), "-p", str(made["public"])],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "sotto-bundle 0.1.0" in result.stdout


def test_verifier_runs_with_a_bare_python(made: dict[str, object], tmp_path: Path) -> None:
    """The customer's python3 has neither our package nor `cryptography`: -S leaves only the stdlib."""
    copy = _copy(made, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(copy / "tools" / "bundle_verify.py"),
            "verify",
            str(copy),
            "--public-key",
            str(made["public"]),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert not list(copy.rglob("__pycache__"))
    (copy / "README.txt").write_text("altered")
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(copy / "tools" / "bundle_verify.py"),
            "verify",
            str(copy),
            "--public-key",
            str(made["public"]),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "README.txt does not match" in result.stderr


def test_image_archive_digests_classic_and_damaged(tmp_path: Path) -> None:
    classic = stand_in_image(tmp_path / "classic.tar", oci=False)
    with open(tmp_path / "classic.tar", "rb") as fh:
        assert bundle_verify.image_digests(fh)["config_digest"] == classic["config_digest"]
    stand_in_image(tmp_path / "oci.tar")
    with tarfile.open(tmp_path / "oci.tar") as src, tarfile.open(tmp_path / "bad.tar", "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("blobs/") and len(data) > 500:
                data = data[:-1] + b"!"  # a damaged layer
            out.addfile(member, io.BytesIO(data))
    with open(tmp_path / "bad.tar", "rb") as fh, pytest.raises(bundle_verify.BundleError, match="does not match its name"):
        bundle_verify.image_digests(fh)


def test_sums_with_unsafe_paths_are_refused() -> None:
    digest = "0" * 64
    for path in ("../etc/passwd", "/etc/passwd", "a/../../b", "a\\b"):
        with pytest.raises(bundle_verify.BundleError):
            bundle_verify.parse_sums(f"{digest}  {path}\n")
    with pytest.raises(bundle_verify.BundleError, match="twice"):
        bundle_verify.parse_sums(f"{digest}  a\n{digest}  a\n")


def test_bundle_script_dry_run_and_unpinned_models_need_a_revision(tmp_path: Path) -> None:
    dry = _script(str(REPO / "scripts" / "offline-bundle.sh"), "--dry-run", "--out", str(tmp_path / "b"))
    assert dry.returncode == 0, dry.stderr
    assert "Systran/faster-whisper-large-v3 @ edaa852ec7e145841d8ffdb056a99866b5f0a478" in dry.stdout
    assert "pyannote/speaker-diarization-community-1 @ 3533c8cf8e369892e6b79ff1bf80f7b0286a54ee" in dry.stdout
    assert not (tmp_path / "b").exists()
    (tmp_path / "key").write_text(TEST_KEY.to_text())
    stand_in_image(tmp_path / "image.tar")
    unpinned = _script(
        str(REPO / "scripts" / "offline-bundle.sh"),
        "--models",
        "small",
        "--signing-key",
        str(tmp_path / "key"),
        "--image-archive",
        str(tmp_path / "image.tar"),
        "--out",
        str(tmp_path / "b"),
        "--cache",
        str(tmp_path / "c"),
    )
    assert unpinned.returncode != 0 and "no pinned revision" in unpinned.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


# --------------------------------------------------------------------------- minisign compatibility


def test_minisign_signatures_round_trip_prehashed_and_legacy() -> None:
    data = b"SHA256SUMS contents\n"
    for prehashed in (True, False):
        text = TEST_KEY.sign(data, "file:SHA256SUMS", prehashed=prehashed)
        sig = minisign.verify(data, text, [TEST_KEY.public])
        assert sig.trusted_comment == "file:SHA256SUMS" and sig.algorithm == (b"ED" if prehashed else b"Ed")
        with pytest.raises(minisign.SignatureError, match="does not match"):
            minisign.verify(data + b"x", text, [TEST_KEY.public])
        with pytest.raises(minisign.SignatureError, match="unknown key"):
            minisign.verify(data, text, [OTHER_KEY.public])
        lines = text.splitlines()
        forged = "\n".join([lines[0], lines[1], "trusted comment: file:other", lines[3]]) + "\n"
        with pytest.raises(minisign.SignatureError, match="trusted comment"):
            minisign.verify(data, forged, [TEST_KEY.public])
    assert minisign.load_secret_key(TEST_KEY.to_text()) == TEST_KEY
    assert minisign.PublicKey.from_text(TEST_KEY.public.to_text()) == TEST_KEY.public


def test_pure_python_ed25519_agrees_with_cryptography() -> None:
    for i in range(8):
        key = minisign.generate()
        message = os.urandom(i * 13)
        signature = key._private().sign(message)
        assert minisign.pure_ed25519_verify(key.public.key, signature, message)
        broken = bytearray(signature)
        broken[i * 7] ^= 1
        assert not minisign.pure_ed25519_verify(key.public.key, bytes(broken), message)
        assert not minisign.pure_ed25519_verify(key.public.key, signature, message + b"!")


def test_interoperates_with_the_minisign_tool(tmp_path: Path) -> None:
    if shutil.which("minisign") is None:
        pytest.fail("minisign is required (scripts/test installs it)")
    subprocess.run(
        ["minisign", "-G", "-W", "-p", str(tmp_path / "pub"), "-s", str(tmp_path / "sec")], check=True, capture_output=True
    )
    theirs = minisign.load_secret_key((tmp_path / "sec").read_text())
    public = minisign.PublicKey.from_text((tmp_path / "pub").read_text())
    assert theirs.public == public
    (tmp_path / "file").write_bytes(b"payload")
    (tmp_path / "file.minisig").write_text(theirs.sign(b"payload", "ours"))
    subprocess.run(["minisign", "-Vm", str(tmp_path / "file"), "-p", str(tmp_path / "pub")], check=True, capture_output=True)
    (tmp_path / "other").write_bytes(b"theirs")
    subprocess.run(
        ["minisign", "-Sm", str(tmp_path / "other"), "-s", str(tmp_path / "sec"), "-t", "signed by minisign"],
        check=True,
        capture_output=True,
    )
    sig = minisign.verify(b"theirs", (tmp_path / "other.minisig").read_text(), [public])
    assert sig.trusted_comment == "signed by minisign"


def test_test_keys_are_not_release_keys() -> None:
    release = {minisign.PublicKey.from_text(k) for k in release_keys.RELEASE_KEYS}
    assert release and TEST_KEY.public not in release and OTHER_KEY.public not in release
