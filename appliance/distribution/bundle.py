"""Making the offline bundle and model packs, on Sotto's connected build machine.

`scripts/offline-bundle.sh` fetches the image and the models, lays them out, then calls
`python -m appliance.distribution.bundle finalize` to write bundle.json, SHA256SUMS and its minisign signature and
to verify the result exactly as the customer's `install.sh` will. Nothing here opens a network
connection: downloads are the shell script's business, so the appliance package carries no hub code.

    python -m appliance.distribution.bundle check-model DIR --kind whisper|pyannote [--name NAME]
    python -m appliance.distribution.bundle finalize BUNDLE --version V --image-ref REF --image-archive REL
                                 --model name=N,kind=K,revision=R,source=S ... --signing-key FILE
    python -m appliance.distribution.bundle pack MODEL_DIR --name N --kind K --revision R --signing-key FILE --out PACK
    python -m appliance.distribution.bundle keygen --secret-key FILE --public-key FILE
    python -m appliance.distribution.bundle lock > requirements.lock
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from appliance.distribution import minisign
from appliance.distribution.bundle_verify import (
    MANIFEST,
    NAME,
    REVISION,
    SCHEMA,
    SIGNATURE,
    SUMS,
    BundleError,
    bundle_files,
    check_image_archive,
    format_sums,
    image_digests,
    open_archive,
    sha256_file,
    verify_bundle,
)
from appliance.distribution.model_packs import KINDS, PackError, build_pack, check_model_dir, describe_files

REPO = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "SOTTO_SIGNING_KEY_PASSWORD"
DISTRIBUTION = "sotto-appliance"
LOCK_BUILD_INPUT = "setuptools>=68"  # what scripts/lock adds to pyproject's requirements (the build backend)


def dockerfile_labels(dockerfile: Path) -> dict[str, str]:
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    labels: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("LABEL "):
            labels.update(re.findall(r'([\w.-]+)="([^"]*)"', line))
    return labels


def dockerfile_base(dockerfile: Path) -> str:
    match = re.search(r"^ARG CUDA_IMAGE=(\S+)", dockerfile.read_text(encoding="utf-8"), re.M)
    if not match:
        raise BundleError(f"{dockerfile} does not declare ARG CUDA_IMAGE")
    return match.group(1)


def parse_model_spec(spec: str) -> dict[str, str]:
    """`name=large-v3,kind=whisper,revision=abc123,source=hub:Systran/faster-whisper-large-v3`."""
    try:
        fields = dict(part.split("=", 1) for part in spec.split(","))
    except ValueError:
        raise BundleError(f"--model {spec!r}: expected name=…,kind=…,revision=…,source=…") from None
    if set(fields) != {"name", "kind", "revision", "source"}:
        raise BundleError(f"--model {spec!r}: expected exactly name, kind, revision and source")
    if not NAME.match(fields["name"]) or not REVISION.match(fields["revision"]) or fields["kind"] not in KINDS:
        raise BundleError(f"--model {spec!r}: bad name, revision or kind")
    return fields


def describe_model(bundle: Path, spec: dict[str, str]) -> dict[str, Any]:
    relative = f"models/{spec['name']}@{spec['revision']}"
    directory = bundle / relative
    try:
        check_model_dir(directory, spec["kind"], spec["name"])
    except PackError as exc:
        raise BundleError(str(exc)) from None
    files = describe_files(directory)
    return {
        **spec,
        "path": relative,
        "size_bytes": sum(f.size for f in files),
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
    }


def _sbom_entry(bundle: Path) -> dict[str, str]:
    sbom, notices = (bundle / name for name in SBOM_FILES)
    if not (sbom.is_file() and notices.is_file()):
        raise BundleError(f"the bundle needs {' and '.join(SBOM_FILES)} (add_sbom takes them from the image)")
    return {"path": sbom.name, "sha256": sha256_file(sbom), "notices": notices.name, "notices_sha256": sha256_file(notices)}


def finalize(
    bundle: Path,
    version: str,
    image_ref: str,
    image_archive: str,
    models: list[dict[str, str]],
    key: minisign.SecretKey,
    dockerfile: Path = REPO / "Dockerfile.cuda",
) -> dict[str, Any]:
    """Write bundle.json, SHA256SUMS and SHA256SUMS.minisig, then verify the bundle as install.sh will."""
    for stale in (SUMS, SIGNATURE):
        (bundle / stale).unlink(missing_ok=True)
    with open_archive(bundle / image_archive) as stream:
        digests = image_digests(stream)
    labels = dockerfile_labels(dockerfile)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest = {
        "schema": SCHEMA,
        "version": version,
        "created_at": created,
        "min_nvidia_driver": labels["sotto.min-nvidia-driver"],
        "base_image": dockerfile_base(dockerfile),
        "image": {
            "ref": image_ref,
            "archive": image_archive,
            "archive_sha256": sha256_file(bundle / image_archive),
            "config_digest": digests["config_digest"],
            "manifest_digest": digests["manifest_digest"],
            "platform": "linux/amd64",
        },
        "models": [describe_model(bundle, spec) for spec in models],
        # The image's bill of materials and licence notices (appliance/distribution/sbom.py), as files of the bundle.
        "sbom": _sbom_entry(bundle),
    }
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    entries = {path: sha256_file(bundle / path) for path in bundle_files(bundle)}
    (bundle / SUMS).write_text(format_sums(entries), encoding="utf-8")
    signature = key.sign(
        (bundle / SUMS).read_bytes(),
        f"sotto-bundle {version} {created}",
        untrusted_comment=f"Sotto offline bundle {version}, key {key.public.hex_id}",
    )
    (bundle / SIGNATURE).write_text(signature, encoding="utf-8")
    verified = verify_bundle(bundle, [key.public])
    check_image_archive(bundle, verified)
    return verified


# npm's own tarballs carry this mtime on every entry (so `npm pack` is reproducible); ours do the same.
NPM_MTIME = 499162500  # 1985-10-26T08:15:00Z


def npm_pack(package_dir: Path, out_dir: Path) -> Path:
    """The package tarball `npm pack` makes of a dependency-free package (package.json, its `files`, and
    README), without npm: a gzipped tar of `package/<path>` entries, root-owned, 0644, npm's fixed date.
    Named as npm names it: `@scope/name` 1.2.3 → scope-name-1.2.3.tgz."""
    manifest = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    if manifest.get("dependencies"):
        raise BundleError(f"{package_dir}: a package with dependencies needs npm itself to pack")
    names = {"package.json", *manifest.get("files", [])}
    names |= {p.name for p in package_dir.glob("README*") if p.is_file()}
    paths = sorted(names)
    for name in paths:
        if not (package_dir / name).is_file():
            raise BundleError(f"{package_dir}: {name} is listed in package.json's files but is not a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['name'].lstrip('@').replace('/', '-')}-{manifest['version']}.tgz"
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name in paths:
            data = (package_dir / name).read_bytes()
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, NPM_MTIME
            tar.addfile(info, io.BytesIO(data))
    return target


# Where Dockerfile.cuda writes the SBOM and the notices (appliance/distribution/sbom.py's SBOM_DIR in the image).
IMAGE_SBOM_DIR = "opt/venv/share/sotto"
SBOM_FILES = ("sbom.cdx.json", "THIRD_PARTY_NOTICES.txt")


def files_from_image(archive: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """Small files out of a `docker save` archive's layers, as the image's filesystem has them (the
    last layer that holds a path wins), read in one pass over the (possibly zstd) stream."""
    found: dict[str, dict[str, bytes]] = {}  # layer member → {path: bytes}
    order: list[str] = []
    with open_archive(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.isfile():
                continue
            fh = outer.extractfile(member)
            assert fh is not None
            if member.name == "manifest.json":
                order = [str(layer) for layer in json.loads(fh.read())[0]["Layers"]]
                continue
            try:
                with tarfile.open(fileobj=fh, mode="r|*") as layer:
                    for inner in layer:
                        path = inner.name.removeprefix("./")
                        if path in wanted and inner.isfile():
                            data = layer.extractfile(inner)
                            assert data is not None
                            found.setdefault(member.name, {})[path] = data.read()
            except (tarfile.TarError, EOFError, OSError):
                continue  # a config or manifest blob, not a layer
    result: dict[str, bytes] = {}
    for layer_name in order:
        result.update(found.get(layer_name, {}))
    missing = [p for p in wanted if p not in result]
    if missing:
        raise BundleError(f"the image has no {', '.join(missing)} (Dockerfile.cuda makes them at build)")
    return result


def add_sbom(bundle_dir: Path, image_archive: str) -> None:
    """Copy the image's SBOM and third-party notices beside it in the bundle (listed and signed by finalize)."""
    wanted = tuple(f"{IMAGE_SBOM_DIR}/{name}" for name in SBOM_FILES)
    for path, data in files_from_image(bundle_dir / image_archive, wanted).items():
        (bundle_dir / Path(path).name).write_bytes(data)


def read_signing_key(path: Path) -> minisign.SecretKey:
    return minisign.load_signing_key(path.read_text(encoding="utf-8"), os.environ.get(PASSWORD_ENV))


def lock_inputs_digest(pyproject: Path = REPO / "pyproject.toml") -> str:
    """SHA-256 of everything a lock is resolved from: pyproject's dependencies, extras and uv settings,
    and the build backend scripts/lock adds. Written into each lock's header; a test recomputes it, so a
    dependency changed without running scripts/lock fails the suite."""
    import tomllib

    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    inputs = {
        "dependencies": data["project"]["dependencies"],
        "optional-dependencies": data["project"].get("optional-dependencies", {}),
        "uv": data.get("tool", {}).get("uv", {}),
        "build": LOCK_BUILD_INPUT,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sbom_tools(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The pins of the tools appliance/distribution/sbom.py runs, as the test extra has them (one source of versions)."""
    import tomllib

    test = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["test"]
    return [line for line in test if line.split("==")[0] in {"cyclonedx-bom", "pip-licenses"}]


def lock_header(name: str) -> str:
    return (
        f"# {name}: every Python package, exact versions and SHA-256 hashes, for every platform. Generated by\n"
        "# scripts/lock (uv pip compile --generate-hashes --universal) from pyproject.toml; do not edit.\n"
        "# Install with: pip install --require-hashes --no-deps -r " + name + "\n"
        f"# inputs-sha256: {lock_inputs_digest()}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.distribution.bundle", description="Build Sotto bundles and model packs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-model", help="is this model directory complete?")
    check.add_argument("directory", type=Path)
    check.add_argument("--kind", choices=KINDS, required=True)
    check.add_argument("--name", default="model")
    fin = sub.add_parser("finalize", help="write bundle.json, SHA256SUMS, its signature; verify the bundle")
    fin.add_argument("bundle", type=Path)
    fin.add_argument("--version", required=True)
    fin.add_argument("--image-ref", required=True)
    fin.add_argument("--image-archive", required=True, help="path inside the bundle, e.g. images/appliance-0.1.0.tar.zst")
    fin.add_argument("--model", action="append", default=[], help="name=…,kind=…,revision=…,source=… (repeatable)")
    fin.add_argument("--signing-key", type=Path, required=True, help=f"minisign or PKCS#8 key; password from ${PASSWORD_ENV}")
    fin.add_argument("--dockerfile", type=Path, default=REPO / "Dockerfile.cuda")
    pack = sub.add_parser("pack", help="write a signed model pack")
    pack.add_argument("directory", type=Path)
    pack.add_argument("--name", required=True)
    pack.add_argument("--kind", choices=KINDS, required=True)
    pack.add_argument("--revision", required=True)
    pack.add_argument("--source", default="")
    pack.add_argument("--signing-key", type=Path, required=True)
    pack.add_argument("--out", type=Path, required=True, help="the pack file (.tar, or .tar.zst)")
    keygen = sub.add_parser("keygen", help="make an unencrypted minisign key pair (keep the secret key offline)")
    keygen.add_argument("--secret-key", type=Path, required=True)
    keygen.add_argument("--public-key", type=Path, required=True)
    npm = sub.add_parser("npm-pack", help="the package tarball of a dependency-free npm package (as `npm pack` makes it)")
    npm.add_argument("package", type=Path)
    npm.add_argument("--out", type=Path, required=True, help="the folder to write it in")
    sub.add_parser("sbom-tools", help="the test extra's SBOM and notices tools, as requirement lines (for scripts/lock)")
    header = sub.add_parser("lock-header", help="the header scripts/lock writes above a lock file (with the inputs' digest)")
    header.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "check-model":
            check_model_dir(args.directory, args.kind, args.name)
            print(f"{args.directory}: complete {args.kind} model")
        elif args.command == "finalize":
            add_sbom(args.bundle, args.image_archive)
            verified = finalize(
                args.bundle,
                args.version,
                args.image_ref,
                args.image_archive,
                [parse_model_spec(m) for m in args.model],
                read_signing_key(args.signing_key),
                args.dockerfile,
            )
            print(
                f"bundle {verified['version']} written and verified: signed by {verified['signed_by']}, "
                f"{len(verified['models'])} model(s)"
            )
        elif args.command == "pack":
            made = build_pack(
                args.directory, args.out, args.name, args.kind, args.revision, read_signing_key(args.signing_key), args.source
            )
            print(f"wrote {args.out}: {made.version}, {len(made.files)} file(s)")
        elif args.command == "npm-pack":
            print(npm_pack(args.package, args.out))
        elif args.command == "keygen":
            for path in (args.secret_key, args.public_key):
                if path.exists():
                    raise BundleError(f"{path} exists; not overwriting a key")
            key = minisign.generate()
            args.secret_key.touch(mode=0o600)
            args.secret_key.write_text(key.to_text(), encoding="utf-8")
            args.public_key.write_text(key.public.to_text(), encoding="utf-8")
            print(f"key {key.public.hex_id}: secret {args.secret_key}, public {args.public_key}")
        elif args.command == "sbom-tools":
            sys.stdout.write("".join(f"{line}\n" for line in sbom_tools()))
        elif args.command == "lock-header":
            sys.stdout.write(lock_header(Path(args.name).name))
    except (BundleError, PackError, minisign.SignatureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
