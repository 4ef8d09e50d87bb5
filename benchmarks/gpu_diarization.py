"""Speaker detection on a GPU through the appliance's own pyannote engine (random community-1-shaped weights).

Builds the random pipeline directory (tests.pyannote_random), synthesises speech-like 16 kHz audio
(several "voices": glottal pulse trains through formant resonators, syllable-rate envelopes, pauses,
turn-taking), then runs appliance.transcription.diarization.pyannote_engine.PyannoteDiarizer on each
device asked for: one warm-up run on a short clip, then timed runs on the whole clip. Prints real-time
factors, the CPU/GPU ratio, CUDA memory, and where the models' parameters live.

    python benchmarks/gpu_diarization.py --devices cuda:0,cpu --minutes 5 --cpu-minutes 1.5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", message=".*torchcodec.*")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SR = 16_000


def log(*a: object) -> None:
    print(*a, flush=True)


def synth_speech(seconds: float, n_speakers: int = 3, seed: int = 0) -> np.ndarray:
    """Speech-like audio: alternating turns of n_speakers voices (distinct F0 and formants), each turn a
    run of 'syllables' (voiced, formant-filtered pulse trains with jittered pitch and a raised-cosine
    envelope) and short pauses, plus a little noise. float32 in [-1, 1]."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float64)
    voices = [
        {"f0": f0, "formants": fm}
        for f0, fm in zip(
            (110.0, 210.0, 150.0, 250.0, 95.0),
            ((700, 1220, 2600), (850, 1700, 2900), (500, 1500, 2500), (900, 2000, 3100), (600, 1000, 2400)),
            strict=False,
        )
    ][:n_speakers]

    def resonator(x: np.ndarray, f: float, bw: float) -> np.ndarray:
        r = np.exp(-np.pi * bw / SR)
        theta = 2 * np.pi * f / SR
        return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)

    pos = 0
    spk = 0
    while pos < n:
        turn = int(rng.uniform(2.0, 9.0) * SR)
        end = min(n, pos + turn)
        v = voices[spk]
        t = pos
        while t < end:
            syl = int(rng.uniform(0.12, 0.3) * SR)
            s_end = min(end, t + syl)
            m = s_end - t
            if m <= 16:
                break
            # pitch contour with jitter -> phase -> pulse train
            f0 = v["f0"] * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * np.arange(m) / SR)) * rng.uniform(0.9, 1.1)
            phase = np.cumsum(f0 / SR)
            pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])).astype(np.float64)
            exc = pulses + 0.02 * rng.standard_normal(m)
            y = np.zeros(m)
            vowel_shift = rng.uniform(0.85, 1.15)
            for f, bw in zip(v["formants"], (80, 120, 160), strict=False):
                y += resonator(exc, f * vowel_shift, bw)
            env = np.sin(np.pi * np.arange(m) / m) ** 2
            out[t:s_end] += y * env
            t = s_end + int(rng.uniform(0.02, 0.15) * SR)  # gap between syllables
        pos = end + int(rng.uniform(0.2, 1.0) * SR)  # pause between turns
        spk = (spk + int(rng.integers(1, n_speakers))) % n_speakers if n_speakers > 1 else 0
    out += 0.003 * rng.standard_normal(n)
    out /= np.max(np.abs(out)) + 1e-9
    return (0.8 * out).astype(np.float32)


def param_devices(pipeline: object) -> dict[str, set[str]]:
    """Devices of every torch.nn.Module's parameters reachable from the pipeline's attributes (one level
    into Inference-like wrappers: .model, .model_)."""
    import torch

    found: dict[str, set[str]] = {}
    seen: set[int] = set()

    def visit(name: str, obj: object, depth: int) -> None:
        if id(obj) in seen or depth > 2:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            devs = {str(p.device) for p in obj.parameters()}
            if devs:
                found[f"{name} ({type(obj).__name__}, {sum(p.numel() for p in obj.parameters()):,} params)"] = devs
            return
        for attr in ("model", "model_", "_segmentation", "_embedding", "segmentation", "embedding"):
            sub = getattr(obj, attr, None) if not isinstance(obj, (str, int, float)) else None
            if sub is not None:
                visit(f"{name}.{attr}", sub, depth + 1)

    visit("pipeline", pipeline, 0)
    return found


def stage_times(pipeline: object, clip: np.ndarray, dev: str) -> None:
    """One more run straight through the pipeline with a hook: when each step (segmentation,
    speaker_counting, embeddings, discrete_diarization...) last reported, so the time per stage."""
    import torch

    marks: list[tuple[str, float]] = []

    def hook(step_name, step_artefact, file=None, total=None, completed=None):
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        now = time.perf_counter()
        if marks and marks[-1][0] == step_name:
            marks[-1] = (step_name, now)
        else:
            marks.append((step_name, now))

    t = time.perf_counter()
    waveform = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))[None, :]
    pipeline({"waveform": waveform, "sample_rate": SR}, hook=hook)
    end = time.perf_counter()
    prev = t
    parts = []
    for name, when in marks:
        parts.append(f"{name} {when - prev:.2f}s")
        prev = when
    parts.append(f"(after last hook) {end - prev:.2f}s")
    log(f"[{dev}] stages (total {end - t:.2f}s): " + ", ".join(parts))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default="cuda:0,cpu", help="comma list (in run order): cpu, cuda, cuda:N")
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the timed clip")
    ap.add_argument("--cpu-minutes", type=float, default=None, help="shorter clip for the CPU (RTF is per second of audio)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per device (the best is reported)")
    ap.add_argument("--warmup-seconds", type=float, default=30.0)
    ap.add_argument("--speakers", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/gpu_diarize")
    ap.add_argument("--stages-cpu", action="store_true", help="also time the stages on the CPU (one more CPU run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    log(
        f"python {platform.python_version()} torch {torch.__version__} cuda_build {torch.version.cuda} "
        f"cudnn {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None} "
        f"cpu_threads {torch.get_num_threads()}"
    )
    log(
        f"cuda available {torch.cuda.is_available()} devices {torch.cuda.device_count()}"
        + (f" name {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "")
    )
    import pyannote.audio

    log(f"pyannote.audio {pyannote.audio.__version__} from {Path(pyannote.audio.__file__).parent}")
    for mod in ("av", "ctranslate2", "faster_whisper", "torchcodec"):
        log(f"  module {mod}: {'present' if mod in sys.modules else 'not imported'}")

    from appliance.transcription.diarization.base import DiarizationOptions
    from appliance.transcription.diarization.pyannote_engine import PyannoteDiarizer
    from tests.pyannote_random import build_random_pipeline_dir

    pdir = build_random_pipeline_dir(Path(args.workdir) / "pyannote-speaker-diarization-community-1")
    log(f"random pipeline dir {pdir} built in {time.perf_counter() - t0:.1f}s (since start)")

    t = time.perf_counter()
    audio = synth_speech(args.minutes * 60, n_speakers=args.speakers)
    log(
        f"synthetic audio {len(audio) / SR:.1f}s made in {time.perf_counter() - t:.1f}s; rms {float(np.sqrt(np.mean(audio**2))):.3f}"
    )
    warm = audio[: int(args.warmup_seconds * SR)]
    options = DiarizationOptions()

    results: dict[str, float] = {}
    for dev in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if dev.startswith("cuda") and not torch.cuda.is_available():
            log(f"[{dev}] skipped: no CUDA device visible")
            continue
        is_cuda = dev.startswith("cuda")
        clip = audio
        if not is_cuda and args.cpu_minutes is not None:
            clip = audio[: int(args.cpu_minutes * 60 * SR)]
        dur = len(clip) / SR
        try:
            engine = PyannoteDiarizer(pdir, device=dev)
            t = time.perf_counter()
            pipeline = engine.load(engine.picker().devices[0])
            log(f"[{dev}] engine devices {engine.picker().devices}; pipeline loaded+placed in {time.perf_counter() - t:.2f}s")
            for name, devs in param_devices(pipeline).items():
                log(f"[{dev}]   params of {name}: on {sorted(devs)}")
            if is_cuda:
                torch.cuda.synchronize()
                log(f"[{dev}] cuda memory after load: allocated {torch.cuda.memory_allocated() / 2**20:.1f} MiB")
            t = time.perf_counter()
            engine.diarize(warm, options)
            if is_cuda:
                torch.cuda.synchronize()
            log(f"[{dev}] warm-up on {len(warm) / SR:.0f}s: {time.perf_counter() - t:.2f}s")
            if is_cuda:
                torch.cuda.reset_peak_memory_stats()
            best = float("inf")
            for r in range(args.repeats):
                t = time.perf_counter()
                voiced = engine.diarize_voices(clip, options)
                if is_cuda:
                    torch.cuda.synchronize()
                el = time.perf_counter() - t
                best = min(best, el)
                speakers = sorted({turn.speaker for turn in voiced.turns})
                log(
                    f"[{dev}] run {r + 1}: {el:.2f}s for {dur:.0f}s audio -> RTF {el / dur:.4f} "
                    f"({dur / el:.1f}x real time); {len(voiced.turns)} turns, {len(speakers)} speakers, "
                    f"{len(voiced.voices)} voice vectors"
                )
            results[dev] = best / dur
            if is_cuda or args.stages_cpu:
                stage_times(pipeline, clip, dev)
            if is_cuda:
                log(
                    f"[{dev}] cuda memory: peak allocated {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB, "
                    f"now allocated {torch.cuda.memory_allocated() / 2**20:.1f} MiB, "
                    f"reserved {torch.cuda.memory_reserved() / 2**20:.1f} MiB"
                )
                try:
                    free, total = torch.cuda.mem_get_info()
                    log(f"[{dev}] device memory used (all processes) {(total - free) / 2**20:.0f} MiB of {total / 2**30:.1f} GiB")
                except Exception as exc:
                    log(f"[{dev}] mem_get_info failed: {exc}")
                on_cuda = all(all(d.startswith("cuda") for d in devs) for devs in param_devices(pipeline).values())
                log(f"[{dev}] CONFIRM all model parameters on cuda: {on_cuda}")
        except Exception as exc:
            import traceback

            traceback.print_exc()
            log(f"[{dev}] FAILED: {type(exc).__name__}: {exc}")

    log(
        "SUMMARY RTF (seconds of compute per second of audio, best run): " + ", ".join(f"{d}={v:.4f}" for d, v in results.items())
    )
    cpu = results.get("cpu")
    for d, v in results.items():
        if d != "cpu" and cpu:
            log(f"SUMMARY speed-up {d} vs cpu: {cpu / v:.1f}x")
    log(f"total wall {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
