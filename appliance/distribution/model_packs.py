"""Model packs: one model in a signed archive, imported offline beside the current one, smoke-tested,
then switched to atomically; the previous version stays for `appliance models rollback`.

A pack is a tar (plain, gzip, xz or zstd) whose first two members are
    manifest.json          {"schema": "sotto.model-pack/v1", "name", "kind", "revision", "source",
                            "files": [{"path", "size", "sha256"}]}
    manifest.json.minisig  a minisign signature of manifest.json by a release key
followed by exactly the listed files under `model/`. Installed, under models_dir:
    .packs/<name>@<revision>/       each imported version, side by side
    .packs/<name>@<revision>.json   its manifest (to re-check the files before a rollback)
    .packs/state.json               per name, the versions switched to, oldest first
    <name> -> .packs/<name>@<revision>   a relative symlink, replaced in one rename (os.replace)
The symlink is relative so it resolves the same on the host and in the container (/models).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import lzma
import os
import secrets
import shutil
import subprocess
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

try:
    from appliance.distribution import minisign, release_keys
    from appliance.distribution.bundle_verify import NAME, REVISION, BundleError, open_archive, safe_relative, sha256_file
except ImportError:  # install.sh runs this from a bundle's tools/ folder with the host's python3
    import minisign  # type: ignore[no-redef,import-not-found]
    import release_keys  # type: ignore[no-redef,import-not-found]
    from bundle_verify import NAME, REVISION, BundleError, open_archive, safe_relative, sha256_file  # type: ignore[no-redef,import-not-found]

PACKS = ".packs"
SCHEMA = "sotto.model-pack/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"
PREFIX = "model/"
KINDS = ("whisper", "pyannote")
PYANNOTE_FILES = (
    "config.yaml",
    "segmentation/pytorch_model.bin",
    "embedding/pytorch_model.bin",
    "plda/plda.npz",
    "plda/xvec_transform.npz",
)
MAX_MANIFEST = 1 << 20
MAX_SIGNATURE = 4096


class PackError(ValueError):
    """A pack is refused, or a switch cannot be made; the current model is untouched."""


@dataclass(frozen=True)
class PackFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PackManifest:
    name: str
    kind: str
    revision: str
    source: str
    files: tuple[PackFile, ...]

    @property
    def version(self) -> str:
        return f"{self.name}@{self.revision}"

    def to_json(self) -> bytes:
        doc = {"schema": SCHEMA, **asdict(self), "files": [asdict(f) for f in self.files]}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> PackManifest:
        try:
            doc = json.loads(data)
            files = tuple(PackFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in doc["files"])
            manifest = cls(str(doc["name"]), str(doc["kind"]), str(doc["revision"]), str(doc.get("source", "")), files)
        except (ValueError, KeyError, TypeError):
            raise PackError("the pack's manifest.json is malformed") from None
        if doc.get("schema") != SCHEMA:
            raise PackError(f"the pack's schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
        if not NAME.match(manifest.name) or not REVISION.match(manifest.revision):
            raise PackError(f"the pack's name or revision is not a plain identifier: {manifest.version!r}")
        if manifest.kind not in KINDS:
            raise PackError(f"the pack's kind {manifest.kind!r} is not one of {', '.join(KINDS)}")
        paths = [f.path for f in files]
        if not files or len(set(paths)) != len(paths):
            raise PackError("the pack's file list is empty or repeats a file")
        for f in files:
            if not safe_relative(f.path) or f.size < 0 or len(f.sha256) != 64:
                raise PackError(f"the pack's manifest has a bad file entry {f.path!r}")
        return manifest


def check_model_dir(path: Path, kind: str, name: str) -> None:
    """The directory holds a complete model of its kind (before anything loads it)."""
    if kind == "whisper":
        from appliance.transcription.asr import ModelError, inspect_model_dir

        try:
            inspect_model_dir(path, name, "models_dir")
        except ModelError as exc:
            raise PackError(str(exc)) from None
    elif kind == "pyannote":
        missing = [f for f in PYANNOTE_FILES if not (path / f).is_file()]
        if missing:
            raise PackError(f"pyannote pipeline {path} is incomplete: missing {', '.join(missing)}")
    else:
        raise PackError(f"unknown model kind {kind!r}")


def describe_files(directory: Path) -> tuple[PackFile, ...]:
    """Every file under directory (links followed, hidden entries skipped) with its size and SHA-256."""
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue  # e.g. a hub download's .cache/ folder
        if path.is_file():
            files.append(PackFile(relative, path.stat().st_size, sha256_file(path)))
    return tuple(files)


# --------------------------------------------------------------------------- making a pack (Sotto's side)


def build_pack(
    model_dir: Path, out: Path, name: str, kind: str, revision: str, key: minisign.SecretKey, source: str = ""
) -> PackManifest:
    """Write a signed pack of model_dir; zstd-compressed when out ends in .zst and zstd is installed."""
    check_model_dir(model_dir, kind, name)
    manifest = PackManifest(name, kind, revision, source, describe_files(model_dir))
    PackManifest.from_json(manifest.to_json())  # the same checks an import makes
    body = manifest.to_json()
    signature = key.sign(body, f"pack:{manifest.version}").encode()
    plain = out.with_suffix("") if out.suffix == ".zst" else out
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as archive:
        for member_name, data in ((MANIFEST, body), (SIGNATURE, signature)):
            info = tarfile.TarInfo(member_name)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            archive.addfile(info, io.BytesIO(data))
        for f in manifest.files:
            info = tarfile.TarInfo(PREFIX + f.path)
            info.size, info.mtime, info.mode = f.size, int(time.time()), 0o644
            with open(model_dir / f.path, "rb") as fh:  # links are followed: a pack holds plain files
                archive.addfile(info, fh)
    if plain != out:
        zstd = shutil.which("zstd")
        if zstd is None:
            raise PackError("zstd is not installed: write a .tar pack instead")
        subprocess.run([zstd, "-q", "-f", "--rm", "-T0", str(plain), "-o", str(out)], check=True)
    return manifest


# --------------------------------------------------------------------------- importing (the customer's side)


# typing's aliases, not builtins: install.sh imports this module with the host's python3, maybe 3.8.
SmokeTest = Callable[[Path, PackManifest], dict[str, Any]]


@dataclass(frozen=True)
class ImportResult:
    name: str
    revision: str
    path: Path
    previous: str | None
    reused: bool  # this exact version was already unpacked (a re-import)
    smoke_test: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def trusted_keys() -> list[minisign.PublicKey]:
    return [minisign.PublicKey.from_text(k) for k in release_keys.RELEASE_KEYS]


@contextmanager
def _locked(models_dir: Path) -> Iterator[Path]:
    """One import or rollback at a time (the admin container and a second shell must not interleave)."""
    store = models_dir / PACKS
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield store


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo | None, name: str, limit: int) -> bytes:
    if member is None or member.name != name or not member.isfile() or member.size > limit:
        raise PackError(f"not a model pack: it must start with {MANIFEST} and {SIGNATURE}")
    fh = archive.extractfile(member)
    assert fh is not None
    return fh.read()


def _copy_checked(source: IO[bytes], target: Path, expected: PackFile) -> None:
    digest, written = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            written += len(block)
            if written > expected.size:
                break
            digest.update(block)
            out.write(block)
    if written != expected.size or digest.hexdigest() != expected.sha256:
        raise PackError(f"{expected.path} in the pack does not match its manifest (damaged or altered)")


def _unpack(pack: Path, staging: Path, keys: Iterable[minisign.PublicKey]) -> tuple[PackManifest, bytes]:
    """Verify the signed manifest, then stream each file into staging, checking its hash as it goes."""
    with open_archive(pack) as stream, tarfile.open(fileobj=stream, mode="r|*") as archive:
        body = _read_member(archive, archive.next(), MANIFEST, MAX_MANIFEST)
        signature = _read_member(archive, archive.next(), SIGNATURE, MAX_SIGNATURE)
        try:
            minisign.verify(body, signature.decode("utf-8", "replace"), keys)
        except minisign.SignatureError as exc:
            raise PackError(f"the pack's signature is not valid: {exc}") from None
        manifest = PackManifest.from_json(body)
        expected = {f.path: f for f in manifest.files}
        parents = {p.as_posix() for f in manifest.files for p in Path(f.path).parents} - {"."}
        seen: set[str] = set()
        # next(), not iteration: iterating a TarFile starts again at the members already read.
        while (member := archive.next()) is not None:
            inner = member.name[len(PREFIX) :] if member.name.startswith(PREFIX) else None
            if member.isdir() and (member.name.rstrip("/") == PREFIX.rstrip("/") or (inner and inner.rstrip("/") in parents)):
                continue
            # Anything else is refused: links, devices, absolute or '..' paths, files the manifest lacks.
            if not member.isfile() or inner is None or inner not in expected or inner in seen:
                raise PackError(f"the pack holds an unexpected member {member.name!r} (refused)")
            if member.size != expected[inner].size:
                raise PackError(f"{inner} in the pack does not match its manifest (damaged or altered)")
            fh = archive.extractfile(member)
            assert fh is not None
            _copy_checked(fh, staging / inner, expected[inner])
            seen.add(inner)
    missing = sorted(set(expected) - seen)
    if missing:
        raise PackError(f"the pack is incomplete: missing {', '.join(missing)}")
    return manifest, body


def verify_installed(store: Path, version: str) -> None:
    """An unpacked version still matches the manifest it was imported with."""
    record = store / f"{version}.json"
    if not record.is_file():
        raise PackError(f"{version} has no manifest in {store}; re-import its pack")
    manifest = PackManifest.from_json(record.read_bytes())
    directory = store / version
    present = {f.path for f in describe_files(directory)} if directory.is_dir() else set()
    if present != {f.path for f in manifest.files}:
        raise PackError(f"the installed files of {version} differ from its manifest; re-import its pack")
    for f in manifest.files:
        if sha256_file(directory / f.path) != f.sha256:
            raise PackError(f"{version}/{f.path} has changed since it was imported; re-import its pack")


def _history(store: Path) -> dict[str, list[str]]:
    path = store / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _save_history(store: Path, history: dict[str, list[str]]) -> None:
    tmp = store / f".state-{secrets.token_hex(4)}.json"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(history, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, store / "state.json")


def current_version(models_dir: Path, name: str) -> str | None:
    """The version `name` points at, or None when it is not a pack's symlink."""
    link = models_dir / name
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    return target.name if target.parent == Path(PACKS) else None


def switch(models_dir: Path, name: str, version: str) -> None:
    """Point models_dir/name at .packs/version in one rename: readers see the old model or the new."""
    tmp = models_dir / f".{name}.switch-{secrets.token_hex(4)}"
    os.symlink(Path(PACKS) / version, tmp)
    try:
        os.replace(tmp, models_dir / name)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PackError(f"cannot switch {name}: {exc}") from None
    fd = os.open(models_dir, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename survives a power cut
    finally:
        os.close(fd)


def _adopt(models_dir: Path, store: Path, incoming: PackManifest, history: dict[str, list[str]]) -> None:
    """A plain directory already named like the pack becomes a version of its own, to roll back to."""
    name = incoming.name
    plain = models_dir / name
    if plain.is_symlink() and current_version(models_dir, name) is None:
        raise PackError(f"{plain} is a link not made by a model pack import ({os.readlink(plain)}); remove it first")
    if plain.is_symlink() or not plain.exists():
        return
    if not plain.is_dir():
        raise PackError(f"{plain} exists and is not a model directory; move it away first")
    version = f"{name}@local-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    files = describe_files(plain)
    # Not atomic: between these two renames the name is briefly absent (the old model stays loaded).
    os.rename(plain, store / version)
    (store / f"{version}.json").write_bytes(PackManifest(name, incoming.kind, version.split("@")[1], "adopted", files).to_json())
    switch(models_dir, name, version)
    history[name] = [*history.get(name, []), version]


def _install(store: Path, manifest: PackManifest, body: bytes, staging: Path) -> tuple[Path, bool]:
    """Move a checked staging directory to .packs/<version>, or keep the identical copy already there."""
    final = store / manifest.version
    if final.exists():
        record = store / f"{manifest.version}.json"
        if not record.is_file() or PackManifest.from_json(record.read_bytes()).files != manifest.files:
            raise PackError(f"{manifest.version} is already installed with different contents")
        verify_installed(store, manifest.version)
        return final, True
    (store / f"{manifest.version}.json").write_bytes(body)
    os.rename(staging, final)
    return final, False


def _activate(models_dir: Path, store: Path, manifest: PackManifest) -> str | None:
    """Switch the name to this version and record it; return the version it pointed at before."""
    history = _history(store)
    _adopt(models_dir, store, manifest, history)
    previous = current_version(models_dir, manifest.name)
    if previous != manifest.version:
        switch(models_dir, manifest.name, manifest.version)
        history[manifest.name] = [*history.get(manifest.name, []), manifest.version]
    _save_history(store, history)
    return previous


def import_pack(models_dir: Path, pack: Path, keys: Iterable[minisign.PublicKey], smoke_test: SmokeTest) -> ImportResult:
    """Verify, unpack side by side, smoke-test, switch. On any failure the current model is untouched."""
    keys = list(keys)
    if not pack.is_file():
        raise PackError(f"no pack at {pack}")
    with _locked(models_dir) as store:
        staging = store / f".incoming-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            try:
                manifest, body = _unpack(pack, staging, keys)
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, BundleError) as exc:
                raise PackError(f"the pack is not a readable archive (truncated or damaged?): {exc}") from None
            check_model_dir(staging, manifest.kind, manifest.name)
            # The staged copy has its manifest beside it too, so loading it for the smoke test checks its
            # files the same way every later load does (appliance/transcription/weights.py).
            (store / f"{staging.name}.json").write_bytes(body)
            existing = store / manifest.version
            report = smoke_test(existing if existing.exists() else staging, manifest)
            if not report.get("ok"):
                raise PackError(f"the smoke test failed: {report.get('error') or report}")
            final, reused = _install(store, manifest, body, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            (store / f"{staging.name}.json").unlink(missing_ok=True)
        previous = _activate(models_dir, store, manifest)
        return ImportResult(manifest.name, manifest.revision, final, previous, reused, report)


def install_from_bundle(models_dir: Path, bundle: Path, entry: dict[str, Any]) -> tuple[str, str | None]:
    """Place one model of a verified offline bundle as a version and switch to it (install.sh's step).

    Files are copied and re-hashed against bundle.json on the way. Returns (version, previous version).
    """
    files = tuple(PackFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in entry["files"])
    manifest = PackManifest(str(entry["name"]), str(entry["kind"]), str(entry["revision"]), str(entry.get("source", "")), files)
    body = manifest.to_json()
    PackManifest.from_json(body)
    source = bundle / str(entry["path"])
    with _locked(models_dir) as store:
        staging = store / f".incoming-{secrets.token_hex(6)}"
        try:
            if not (store / manifest.version).exists():
                staging.mkdir()
                for f in files:
                    with open(source / f.path, "rb") as fh:
                        _copy_checked(fh, staging / f.path, f)
            _install(store, manifest, body, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest.version, _activate(models_dir, store, manifest)


def rollback(models_dir: Path, name: str) -> str:
    """Switch `name` back to the version before the current one; return it."""
    with _locked(models_dir) as store:
        history = _history(store)
        versions = history.get(name, [])
        if current_version(models_dir, name) is None or len(versions) < 2:
            raise PackError(f"{name} has no previous version to roll back to")
        previous = versions[-2]
        verify_installed(store, previous)
        manifest = PackManifest.from_json((store / f"{previous}.json").read_bytes())
        check_model_dir(store / previous, manifest.kind, name)
        switch(models_dir, name, previous)
        history[name] = versions[:-1]
        _save_history(store, history)
        return previous


def versions(models_dir: Path) -> dict[str, dict[str, Any]]:
    """Per pack name: the current version and the ones kept for rollback (newest first)."""
    store = models_dir / PACKS
    history = _history(store) if store.is_dir() else {}
    return {
        name: {"current": current_version(models_dir, name), "previous": list(reversed(v[:-1]))} for name, v in history.items()
    }
