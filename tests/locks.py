"""The hash-locked requirement files, read as pip reads them (shared by the packaging and SBOM tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO


@dataclass
class Locked:
    version: str
    marker: str | None
    hashes: list[str]


def parse_lock(name: str) -> tuple[str, list[tuple[str, Locked]]]:
    """(header, [(canonical name, entry)]) of a lock as scripts/lock writes it: one requirement per
    logical line, continued with backslashes, each with its --hash options."""
    text = (REPO / name).read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    entries = []
    for logical in text.replace("\\\n", " ").splitlines():
        if not logical.strip() or logical.startswith("#"):
            continue
        spec, *options = logical.split(" --hash=")
        requirement = Requirement(spec.strip())
        assert str(requirement.specifier).startswith("=="), f"{name}: not an exact pin: {spec}"
        hashes = [o.strip() for o in options]
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{name}: {spec} has no SHA-256 hashes"
        entries.append(
            (
                canonicalize_name(requirement.name),
                Locked(str(requirement.specifier)[2:], str(requirement.marker) if requirement.marker else None, hashes),
            )
        )
    return header, entries


def lock_pins(name: str = "requirements.lock") -> dict[str, str]:
    """name → version, for this platform (Linux x86_64, CPython 3.11: what CI and the image run)."""
    env = {
        **default_environment(),
        "python_version": "3.11",
        "python_full_version": "3.11.7",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "extra": "",
    }
    pins: dict[str, str] = {}
    for key, entry in parse_lock(name)[1]:
        if entry.marker is None or Marker(entry.marker).evaluate(env):
            assert key not in pins, f"{name}: {key} pinned twice for one platform"
            pins[key] = entry.version
    return pins
