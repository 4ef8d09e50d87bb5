"""Device settings and the placement of jobs on GPUs, on a machine without one: the GPUs are pretended."""

import threading

import pytest

from appliance.core.devices import DeviceError, DevicePicker, DeviceSpec, gpu_index, parse_device


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("auto", DeviceSpec("auto")),
        ("cpu", DeviceSpec("cpu")),
        ("CUDA", DeviceSpec("cuda")),
        ("cuda:1", DeviceSpec("cuda", (1,))),
        ("cuda:2,0", DeviceSpec("cuda", (2, 0))),
        ("cuda:0, cuda:3", DeviceSpec("cuda", (0, 3))),
    ],
)
def test_device_settings_parse(value: str, spec: DeviceSpec) -> None:
    assert parse_device(value) == spec


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "cuda:1,1", "", "cuda:0,,1"])
def test_malformed_device_settings_are_refused(value: str) -> None:
    with pytest.raises(DeviceError):
        parse_device(value)


def test_one_device_only_where_a_list_makes_no_sense() -> None:
    assert parse_device("cuda:3", many=False) == DeviceSpec("cuda", (3,))
    with pytest.raises(DeviceError, match="one device"):
        parse_device("cuda:0,1", many=False)


def test_specs_resolve_against_the_gpus_visible() -> None:
    assert parse_device("auto").devices(0) == ("cpu",)
    assert parse_device("auto").devices(2) == ("cuda:0", "cuda:1")
    assert parse_device("cpu").devices(4) == ("cpu",)
    assert parse_device("cuda").devices(3) == ("cuda:0", "cuda:1", "cuda:2")
    assert parse_device("cuda:2,1").devices(3) == ("cuda:2", "cuda:1")
    with pytest.raises(DeviceError, match="none is visible"):
        parse_device("cuda").devices(0)
    with pytest.raises(DeviceError, match=r"cuda:2 was asked for, but only 2 GPU"):
        parse_device("cuda:0,2").devices(2)


def test_gpu_index() -> None:
    assert [gpu_index(d) for d in ("cuda:3", "cuda", "cpu")] == [3, 0, 0]


def test_jobs_one_after_another_stay_on_the_first_device() -> None:
    picker = DevicePicker(("cuda:0", "cuda:1", "cuda:2"))
    used = []
    for _ in range(5):
        with picker.use() as device:
            used.append(device)
    assert used == ["cuda:0"] * 5
    assert picker.busy() == {"cuda:0": 0, "cuda:1": 0, "cuda:2": 0}


def test_jobs_at_once_go_to_the_least_busy_device() -> None:
    picker = DevicePicker(("cuda:0", "cuda:1", "cuda:2"))
    held = [picker.acquire() for _ in range(4)]
    assert held == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    picker.release("cuda:1")
    assert picker.acquire() == "cuda:1"  # the one freed, not the next in turn
    picker.release("cuda:2")
    picker.release("cuda:0")
    assert picker.busy() == {"cuda:0": 1, "cuda:1": 1, "cuda:2": 0}
    assert picker.acquire() == "cuda:2"
    with pytest.raises(DeviceError, match="released more often"):
        DevicePicker(("cpu",)).release("cpu")


def test_concurrent_jobs_spread_evenly_over_pretend_gpus() -> None:
    gpus = 4
    picker = DevicePicker(parse_device("cuda").devices(gpus))
    jobs = 12
    everyone_in = threading.Barrier(jobs)
    seen: list[str] = []
    lock = threading.Lock()

    def job() -> None:
        with picker.use() as device:
            with lock:
                seen.append(device)
            everyone_in.wait(timeout=10)  # all jobs hold their device at the same moment

    threads = [threading.Thread(target=job) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted([f"cuda:{i}" for i in range(gpus)] * (jobs // gpus))
    assert set(picker.busy().values()) == {0}


def test_the_cpu_path_is_one_device() -> None:
    picker = DevicePicker(parse_device("auto").devices(0))
    held = [picker.acquire() for _ in range(3)]
    assert held == ["cpu", "cpu", "cpu"]
    with pytest.raises(DeviceError):
        DevicePicker(())
