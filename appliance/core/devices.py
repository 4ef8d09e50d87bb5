"""Where a model runs: the device settings (`auto`, `cpu`, `cuda`, `cuda:N`, `cuda:N,M`) and the placement
of jobs on GPUs.

Nothing here imports torch or CTranslate2: the caller says how many GPUs it sees (each runtime counts
its own), so the settings are checked at start-up without the ML stack and the placement is tested on
a machine without a GPU by pretending there are N of them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

CPU = "cpu"


class DeviceError(ValueError):
    """A device setting is malformed, or names a GPU this machine does not have."""


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device setting. `gpus` is None for "every visible GPU" (`cuda`, or `auto` on a GPU host)."""

    kind: str  # auto | cpu | cuda
    gpus: tuple[int, ...] | None = None

    def devices(self, gpu_count: int) -> tuple[str, ...]:
        """The concrete devices ("cpu", or "cuda:N" each) on a machine with `gpu_count` visible GPUs."""
        if self.kind == CPU or (self.kind == "auto" and gpu_count == 0):
            return (CPU,)
        if gpu_count == 0:
            raise DeviceError("a GPU (cuda) was asked for, but none is visible")
        indices = self.gpus if self.gpus is not None else tuple(range(gpu_count))
        missing = [i for i in indices if i >= gpu_count]
        if missing:
            raise DeviceError(
                f"cuda:{missing[0]} was asked for, but only {gpu_count} GPU(s) are visible (cuda:0 to cuda:{gpu_count - 1})"
            )
        return tuple(f"cuda:{i}" for i in indices)


def parse_device(value: str, *, many: bool = True) -> DeviceSpec:
    """`auto`, `cpu`, `cuda` (every visible GPU), `cuda:N`, or with `many` a list `cuda:N,M` (no repeats).
    Raises DeviceError saying what is accepted."""
    text = value.strip().lower()
    if text in {"auto", CPU, "cuda"}:
        return DeviceSpec(text)
    accepted = "auto, cpu, cuda, cuda:N" + (" or cuda:N,M" if many else "")
    prefix, colon, rest = text.partition(":")
    parts = [p.strip().removeprefix("cuda:") for p in rest.split(",")] if colon else []
    if prefix != "cuda" or not parts or not all(p.isdigit() for p in parts):
        raise DeviceError(f"must be {accepted}, not {value!r}")
    indices = tuple(int(p) for p in parts)
    if len(indices) > 1 and not many:
        raise DeviceError(f"must be one device ({accepted}), not {value!r}")
    if len(set(indices)) != len(indices):
        raise DeviceError(f"names a GPU twice: {value!r}")
    return DeviceSpec("cuda", indices)


def gpu_index(device: str) -> int:
    """3 for "cuda:3"; 0 for "cuda" (a runtime's own default) and the CPU."""
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0


class DevicePicker:
    """Chooses a device for each job among `devices`: the one with the fewest jobs on it now, and among
    equally busy ones the earliest in the list. So jobs one after another all use the first device (one
    model replica loaded, not one per GPU), and jobs at the same time spread over the devices, each
    device's replica then loaded on its first job. Used as `with picker.use() as device: ...`."""

    def __init__(self, devices: Sequence[str]) -> None:
        if not devices:
            raise DeviceError("no device to place jobs on")
        self.devices = tuple(devices)
        self._busy = dict.fromkeys(self.devices, 0)
        self._lock = threading.Lock()

    def acquire(self) -> str:
        with self._lock:
            device = min(self.devices, key=lambda d: self._busy[d])  # min keeps the first of equals
            self._busy[device] += 1
            return device

    def release(self, device: str) -> None:
        with self._lock:
            if self._busy.get(device, 0) <= 0:
                raise DeviceError(f"{device} was released more often than it was acquired")
            self._busy[device] -= 1

    @contextmanager
    def use(self) -> Iterator[str]:
        device = self.acquire()
        try:
            yield device
        finally:
            self.release(device)

    def busy(self) -> dict[str, int]:
        """Jobs on each device now (for status pages and tests)."""
        with self._lock:
            return dict(self._busy)
