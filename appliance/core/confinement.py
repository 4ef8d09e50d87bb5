"""Writes only under the data dir: every home, cache and config path a library might use points inside
it (or at a RAM-only filesystem the operator chose), and start-up refuses to serve if a known
telemetry store or cache would be written anywhere else.

Libraries find their caches through environment variables read in native code as well as Python
(onnxruntime's telemetry store under `$HOME/.cache/Microsoft`, CUDA's kernel cache under `$HOME/.nv`,
torch, Hugging Face, matplotlib, numba), so the variables are set before any of them is imported.
An operator's own value is kept when it points inside the data dir or at a RAM filesystem; anything
else stops start-up with a message naming the variable and the path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

# variable -> where it points, relative to the data dir, unless the operator set it to a safe place.
CACHE_VARIABLES: dict[str, str] = {
    "HOME": "home",
    "XDG_CACHE_HOME": "cache",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_DATA_HOME": "home/.local/share",
    "XDG_STATE_HOME": "home/.local/state",
    "HF_HOME": "cache/huggingface",
    "TORCH_HOME": "cache/torch",
    "PYANNOTE_CACHE": "cache/pyannote",
    "NUMBA_CACHE_DIR": "cache/numba",
    "MPLCONFIGDIR": "cache/matplotlib",
    "TRITON_CACHE_DIR": "cache/triton",
    "CUDA_CACHE_PATH": "cache/nv-compute",
    # Temporary files (torch writes generated modules at import, tempfile probes writability): RAM
    # when /tmp is a tmpfs, as in the container; otherwise inside the data dir. Never audio.
    "TMPDIR": "tmp",
}
# What a library uses when the variable is unset.
UNSET_DEFAULTS = {"TMPDIR": "/tmp"}
RAM_FILESYSTEMS = {"tmpfs", "ramfs"}


class ConfinementError(RuntimeError):
    """A library would write outside the data dir; the message names the variable and the path."""


@dataclass(frozen=True)
class TelemetryStore:
    """A store a dependency writes usage data to, and when it would."""

    library: str
    path: str  # relative to $HOME
    opt_out: tuple[str, str]  # environment variable and the value that turns it off


TELEMETRY_STORES = (
    # onnxruntime >= 1.29 on Linux: device id and an offline event cache before upload.
    TelemetryStore("onnxruntime", ".cache/Microsoft/DeveloperTools/.onnxruntime", ("ORT_DISABLE_TELEMETRY", "1")),
)


def _mount_type(path: Path, mounts: str) -> str | None:
    """The filesystem type of the mount that holds `path` (longest matching mount point)."""
    best, kind = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (str(path) == point or str(path).startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def _read_mounts() -> str:
    try:
        return Path("/proc/self/mounts").read_text(encoding="utf-8")
    except OSError:
        return ""


def _safe(path: Path, data_dir: Path, mounts: str) -> bool:
    resolved = path.resolve()
    return resolved == data_dir or data_dir in resolved.parents or _mount_type(resolved, mounts) in RAM_FILESYSTEMS


def confine(data_dir: Path, environ: MutableMapping[str, str] | None = None, *, mounts: str | None = None) -> dict[str, str]:
    """Point every cache variable inside `data_dir`, keeping an operator's value only where it is already
    inside the data dir or on a RAM filesystem; then run `check`. Returns the variables that were moved."""
    environ = os.environ if environ is None else environ
    mounts = _read_mounts() if mounts is None else mounts
    data_dir = data_dir.resolve()
    moved: dict[str, str] = {}
    for name, default in CACHE_VARIABLES.items():
        current = environ.get(name) or UNSET_DEFAULTS.get(name)
        if current and _safe(Path(current), data_dir, mounts):
            environ[name] = current
            continue
        environ[name] = moved[name] = str(data_dir / default)
    Path(environ["TMPDIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)  # tempfile skips a missing one
    if environ is os.environ:
        import tempfile

        tempfile.tempdir = None  # forget a directory chosen before this
    check(data_dir, environ, mounts=mounts)
    return moved


def check(
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    mounts: str | None = None,
    telemetry_builds: Mapping[str, bool] | None = None,
) -> None:
    """Refuse (ConfinementError) if a cache path is outside the data dir and RAM, or if a dependency's
    telemetry store would be written (a telemetry build without its opt-out set)."""
    environ = os.environ if environ is None else environ
    mounts = _read_mounts() if mounts is None else mounts
    data_dir = data_dir.resolve()
    for name in CACHE_VARIABLES:
        value = environ.get(name)
        if not value or not _safe(Path(value), data_dir, mounts):
            raise ConfinementError(
                f"{name}={value or '(unset)'} is outside the data dir ({data_dir}): a library would write there"
            )
    for store in TELEMETRY_STORES:
        variable, off = store.opt_out
        if environ.get(variable) == off:
            continue  # opted out: no need to read the library (50 MB for onnxruntime) at every start
        builds = telemetry_builds if telemetry_builds is not None else installed_telemetry_builds()
        if builds.get(store.library):
            path = Path(environ["HOME"]) / store.path
            raise ConfinementError(
                f"{store.library} would write its telemetry store to {path} and send it out: "
                f"this build carries a telemetry client and {variable} is not {off}"
            )


COLLECTOR_MARKERS = (b"events.data.microsoft.com",)


def installed_telemetry_builds() -> dict[str, bool]:
    """Which installed native libraries carry a telemetry uploader (found by its collector address)."""
    return {"onnxruntime": any(_contains(lib, COLLECTOR_MARKERS) for lib in onnxruntime_libraries())}


def onnxruntime_libraries() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p for p in (root / "capi").glob("*.so*") if p.is_file())


def _contains(path: Path, needles: tuple[bytes, ...]) -> bool:
    overlap = max(len(n) for n in needles)
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            window = tail + chunk
            if any(n in window for n in needles):
                return True
            tail = window[-overlap:]
    return False
