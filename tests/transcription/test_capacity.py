import pytest

from appliance.core.config import ModelSettings, WorkerSettings
from appliance.transcription.capacity import Plan, cpu_cores, plan


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(1, Plan(1, 1)), (2, Plan(2, 1)), (3, Plan(3, 1)), (4, Plan(2, 2)), (8, Plan(2, 4)), (16, Plan(4, 4)), (64, Plan(8, 4))],
)
def test_cpu_auto_plan_fills_the_cores_with_small_jobs(cores: int, expected: Plan) -> None:
    assert plan(ModelSettings(), WorkerSettings(), "cpu", cores) == expected


def test_explicit_settings_are_kept_and_the_other_half_is_derived() -> None:
    assert plan(ModelSettings(cpu_threads=3), WorkerSettings(workers_per_device=2), "cpu", 16) == Plan(2, 3)
    assert plan(ModelSettings(), WorkerSettings(workers_per_device=1), "cpu", 2) == Plan(1, 2)
    assert plan(ModelSettings(), WorkerSettings(workers_per_device=4), "cpu", 2) == Plan(4, 1)
    assert plan(ModelSettings(cpu_threads=2), WorkerSettings(), "cpu", 8) == Plan(4, 2)


def test_gpu_runs_two_jobs_per_device_unless_told() -> None:
    assert plan(ModelSettings(), WorkerSettings(), "cuda", 32) == Plan(2, 0)
    assert plan(ModelSettings(), WorkerSettings(workers_per_device=3), "cuda", 32) == Plan(3, 0)


def test_cores_are_the_ones_this_process_may_use() -> None:
    import os

    assert cpu_cores() == len(os.sched_getaffinity(0)) >= 1
