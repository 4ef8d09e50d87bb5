"""Verify an offline bundle: its signature, every file's hash, no unlisted file, and the image archive.

Standard library only: `install.sh` runs this file with the customer's python3, from the bundle's
`tools/` folder beside copies of `minisign.py` and `release_keys.py`. `offline-bundle.sh` runs the same
checks on the finished bundle before it is handed over.

    python3 tools/bundle_verify.py verify BUNDLE_DIR [--public-key FILE] [--json]
    python3 tools/bundle_verify.py image-digests ARCHIVE(.tar|.tar.zst)
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

try:
    from appliance.distribution import minisign, release_keys
except ImportError:  # run from a bundle's tools/ folder, beside copies of those two modules
    sys.dont_write_bytecode = True  # a __pycache__ folder would be an unlisted file in the bundle
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import minisign  # type: ignore[no-redef,import-not-found]
    import release_keys  # type: ignore[no-redef,import-not-found]

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.minisig"
MANIFEST = "bundle.json"
SCHEMA = "sotto.bundle/v1"
# Model names become directory names in models/: keep them plain.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SMALL_JSON = 1 << 20  # manifests and image configs are kilobytes; a larger one is not what it claims


class BundleError(ValueError):
    """The bundle cannot be trusted or used; the message says exactly which file and why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(functools.partial(fh.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_relative(path: str) -> bool:
    """A plain relative POSIX path inside its root: no absolute path, no '..', no backslash."""
    pure = PurePosixPath(path)
    return bool(path) and "\\" not in path and not pure.is_absolute() and ".." not in pure.parts and str(pure) == path


def parse_sums(text: str) -> dict[str, str]:
    """SHA256SUMS as `sha256sum` writes it: '<64 hex>  <relative path>' per line."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not match:
            raise BundleError(f"{SUMS} line {number} is malformed")
        digest, path = match.groups()
        if not safe_relative(path) or path in (SUMS, SIGNATURE):
            raise BundleError(f"{SUMS} line {number} names an unsafe path: {path!r}")
        if path in entries:
            raise BundleError(f"{SUMS} lists {path} twice")
        entries[path] = digest
    return entries


def format_sums(entries: dict[str, str]) -> str:
    return "".join(f"{entries[path]}  {path}\n" for path in sorted(entries))


def bundle_files(root: Path) -> list[str]:
    """Every file under root, as relative POSIX paths; a link or special file is refused outright."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            mode = os.lstat(path).st_mode
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                raise BundleError(f"{relative} is a symbolic link; a bundle holds plain files only")
            if name in files:
                if not stat.S_ISREG(mode):
                    raise BundleError(f"{relative} is not a regular file")
                found.append(relative)
    return sorted(found)


def trusted_keys(public_key_files: list[Path] | None = None) -> list[minisign.PublicKey]:
    """Sotto's release keys, or only the given key files (`--public-key`, for your own builds and tests)."""
    if public_key_files:
        return [minisign.PublicKey.from_text(Path(p).read_text(encoding="utf-8")) for p in public_key_files]
    return [minisign.PublicKey.from_text(key) for key in release_keys.RELEASE_KEYS]


def signed_sums(root: Path, keys: list[minisign.PublicKey]) -> tuple[dict[str, str], minisign.Signature]:
    """SHA256SUMS, once its signature is checked against the trusted keys."""
    for name in (SUMS, SIGNATURE):
        if not (root / name).is_file():
            raise BundleError(f"{name} is missing from {root}")
    sums_bytes = (root / SUMS).read_bytes()
    try:
        signature = minisign.verify(sums_bytes, (root / SIGNATURE).read_text(encoding="utf-8"), keys)
    except minisign.SignatureError as exc:
        raise BundleError(f"{SIGNATURE}: {exc}") from None
    return parse_sums(sums_bytes.decode("utf-8")), signature


def signed_manifest(root: Path, keys: list[minisign.PublicKey]) -> dict[str, Any]:
    """bundle.json, checked against the signed SHA256SUMS only (the full check is verify_bundle)."""
    entries, _ = signed_sums(root, keys)
    if MANIFEST not in entries or sha256_file(root / MANIFEST) != entries[MANIFEST]:
        raise BundleError(f"{MANIFEST} does not match {SUMS}")
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    check_manifest(manifest, entries)
    return manifest


def verify_bundle(root: Path, keys: list[minisign.PublicKey]) -> dict[str, Any]:
    """Check signature, hashes, completeness and bundle.json; return bundle.json plus the signer's key id."""
    root = Path(root)
    entries, signature = signed_sums(root, keys)
    present = [p for p in bundle_files(root) if p not in (SUMS, SIGNATURE)]
    unlisted = sorted(set(present) - set(entries))
    if unlisted:
        raise BundleError(f"file(s) not listed in {SUMS} (refused): {', '.join(unlisted)}")
    missing = sorted(set(entries) - set(present))
    if missing:
        raise BundleError(f"file(s) listed in {SUMS} but missing: {', '.join(missing)}")
    for path in sorted(entries):
        if sha256_file(root / path) != entries[path]:
            raise BundleError(f"{path} does not match its SHA-256 in {SUMS} (damaged or altered)")
    if MANIFEST not in entries:
        raise BundleError(f"{MANIFEST} is not listed in {SUMS}")
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    check_manifest(manifest, entries)
    manifest["signed_by"] = signature.key_id[::-1].hex().upper()
    manifest["trusted_comment"] = signature.trusted_comment
    return manifest


def check_manifest(manifest: dict[str, Any], entries: dict[str, str]) -> None:
    """bundle.json agrees with SHA256SUMS: the image archive and every model file, and nothing more."""
    if manifest.get("schema") != SCHEMA:
        raise BundleError(f"{MANIFEST} has schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    image = manifest.get("image") or {}
    archive = image.get("archive")
    if archive not in entries or entries[archive] != image.get("archive_sha256"):
        raise BundleError(f"{MANIFEST}: the image archive {archive!r} is not the one in {SUMS}")
    model_files = set()
    for model in manifest.get("models", []):
        name, revision, path = model.get("name", ""), model.get("revision", ""), model.get("path", "")
        if not NAME.match(name) or not REVISION.match(revision) or path != f"models/{name}@{revision}":
            raise BundleError(f"{MANIFEST}: bad model entry {name!r}@{revision!r} at {path!r}")
        for item in model.get("files", []):
            full = f"{path}/{item.get('path')}"
            if not safe_relative(full) or entries.get(full) != item.get("sha256"):
                raise BundleError(f"{MANIFEST}: model file {full} does not match {SUMS}")
            model_files.add(full)
    strays = sorted(p for p in entries if p.startswith("models/") and p not in model_files)
    if strays:
        raise BundleError(f"file(s) under models/ that no model in {MANIFEST} lists: {', '.join(strays)}")


# --------------------------------------------------------------------------- the image archive


@contextmanager
def open_archive(path: Path) -> Iterator[IO[bytes]]:
    """The tar stream of an archive: as it is (tarfile reads gzip/xz itself), or through the zstd tool."""
    with open(path, "rb") as fh:
        zstd_magic = fh.read(4) == b"\x28\xb5\x2f\xfd"
    if not zstd_magic:
        with open(path, "rb") as fh:
            yield fh
        return
    tool = shutil.which("zstd")
    if tool is None:
        raise BundleError(f"the zstd tool is needed to read {path.name} (apt install zstd / dnf install zstd)")
    process = subprocess.Popen([tool, "-dcq", str(path)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    try:
        yield process.stdout
        while process.stdout.read(1 << 20):
            pass  # let zstd finish (tar's end padding may be left unread), so its exit status means something
    except BaseException:
        process.kill()
        raise
    finally:
        process.stdout.close()
        code = process.wait()
    if code != 0:
        raise BundleError(f"zstd could not decompress {path} (damaged or truncated)")


def image_digests(stream: IO[bytes]) -> dict[str, Any]:
    """Read a `docker save` archive once: check every blob against its name, return the digests.

    config_digest is what the classic image store reports as the image id; manifest_digest is what
    the containerd store reports (docker 25+ archives are OCI layouts with an index.json).
    """
    hashes: dict[str, str] = {}
    small: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                fh = archive.extractfile(member)
                assert fh is not None
                digest, head = hashlib.sha256(), io.BytesIO()
                for block in iter(functools.partial(fh.read, 1 << 20), b""):
                    digest.update(block)
                    if head.tell() < SMALL_JSON:
                        head.write(block)
                hashes[member.name] = digest.hexdigest()
                if member.size <= SMALL_JSON:
                    small[member.name] = head.getvalue()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"the image archive is not a readable tar: {exc}") from None
    for name, hexdigest in hashes.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256" and parts[2] != hexdigest:
            raise BundleError(f"the image archive's blob {name} does not match its name (damaged)")
    if "manifest.json" not in small:
        raise BundleError("the image archive has no manifest.json (not a `docker save` archive)")
    try:
        entries = json.loads(small["manifest.json"])
        config_name = entries[0]["Config"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BundleError("the image archive's manifest.json is malformed") from None
    if config_name not in hashes:
        raise BundleError(f"the image archive lacks its config {config_name}")
    result: dict[str, Any] = {
        "config_digest": f"sha256:{hashes[config_name]}",
        "manifest_digest": None,
        "repo_tags": entries[0].get("RepoTags") or [],
    }
    if "index.json" in small:
        try:
            manifest_digest = json.loads(small["index.json"])["manifests"][0]["digest"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BundleError("the image archive's index.json is malformed") from None
        blob = f"blobs/sha256/{manifest_digest.split(':', 1)[-1]}"
        manifest = json.loads(small.get(blob, b"{}") or b"{}")
        # index.json may point at a nested index (multi-platform) rather than the manifest itself.
        if manifest.get("config", {}).get("digest") not in (None, result["config_digest"]):
            raise BundleError("the image archive's manifest does not name its config")
        result["manifest_digest"] = manifest_digest
    return result


def check_image_archive(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The archive's own digests are the ones bundle.json recorded (no Docker needed)."""
    image = manifest["image"]
    with open_archive(Path(root) / image["archive"]) as stream:
        found = image_digests(stream)
    for key in ("config_digest", "manifest_digest"):
        if found[key] != image.get(key):
            raise BundleError(f"the image archive's {key} is {found[key]}, but {MANIFEST} says {image.get(key)}")
    return found


def place_models(root: Path, models_dir: Path, keys: list[minisign.PublicKey]) -> int:
    """install.sh's last step: every model of the bundle becomes a version under models_dir/.packs."""
    try:
        from appliance.distribution.model_packs import PackError, install_from_bundle
    except ImportError:  # from a bundle's tools/ folder
        from model_packs import PackError, install_from_bundle  # type: ignore[no-redef,import-not-found]

    manifest = signed_manifest(root, keys)
    models_dir.mkdir(parents=True, exist_ok=True)
    for entry in manifest.get("models", []):
        try:
            version, previous = install_from_bundle(models_dir, root, entry)
        except PackError as exc:
            raise BundleError(str(exc)) from None
        change = "unchanged" if previous == version else f"was {previous}" if previous else "new"
        print(f"  {entry['name']:<44} -> .packs/{version} ({change})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bundle_verify.py", description="Verify a Sotto offline bundle.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="signature, hashes, unlisted files, bundle.json, image archive digests")
    check.add_argument("bundle", type=Path)
    check.add_argument("--public-key", type=Path, action="append", help="trust this minisign public key instead of Sotto's")
    check.add_argument("--skip-image", action="store_true", help="do not read the image archive (it is checked by hash anyway)")
    check.add_argument("--json", action="store_true", help="print bundle.json as verified")
    digests = sub.add_parser("image-digests", help="print an image archive's config and manifest digests")
    digests.add_argument("archive", type=Path)
    place = sub.add_parser("place-models", help="copy a verified bundle's models into MODELS_DIR/.packs and switch to them")
    place.add_argument("bundle", type=Path)
    place.add_argument("models_dir", type=Path)
    place.add_argument("--public-key", type=Path, action="append")
    args = parser.parse_args(argv)
    try:
        if args.command == "image-digests":
            with open_archive(args.archive) as stream:
                print(json.dumps(image_digests(stream), indent=2))
            return 0
        if args.command == "place-models":
            return place_models(args.bundle, args.models_dir, trusted_keys(args.public_key))
        manifest = verify_bundle(args.bundle, trusted_keys(args.public_key))
        if not args.skip_image:
            check_image_archive(args.bundle, manifest)
    except (BundleError, minisign.SignatureError, OSError, ValueError) as exc:
        print(f"VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print(
            f"bundle {manifest.get('version')} verified: signed by key {manifest['signed_by']}, "
            f"{len(manifest.get('models', []))} model(s), every file listed and intact"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
